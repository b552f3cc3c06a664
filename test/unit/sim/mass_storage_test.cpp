// The virtual boards' USB mass-storage function: Bulk-Only Transport framing
// and error recovery, the SCSI commands Linux issues, byte for byte, and the
// backing file behind READ/WRITE.
#include "virtualpi/mass_storage.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <thread>

#include "board_spec.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "virtualpi/descriptors.hpp"
#include "virtualpi/scenario.hpp"
#include "virtualpi/sim_board.hpp"

namespace virtualpi {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint64_t kSize = 64ULL << 20;  // 131072 blocks
constexpr std::uint8_t kIn = 0x81;
constexpr std::uint8_t kOut = 0x01;

std::uint32_t le32(const Bytes& b, std::size_t at) {
    return static_cast<std::uint32_t>(b[at]) | (static_cast<std::uint32_t>(b[at + 1]) << 8) |
           (static_cast<std::uint32_t>(b[at + 2]) << 16) |
           (static_cast<std::uint32_t>(b[at + 3]) << 24);
}

Bytes cbw(std::uint32_t tag, std::uint32_t length, bool in, const Bytes& cdb,
          std::uint8_t lun = 0) {
    Bytes b(31, 0);
    b[0] = 'U';
    b[1] = 'S';
    b[2] = 'B';
    b[3] = 'C';
    for (int i = 0; i < 4; ++i) {
        b[4 + i] = static_cast<std::uint8_t>(tag >> (8 * i));
        b[8 + i] = static_cast<std::uint8_t>(length >> (8 * i));
    }
    b[12] = in ? 0x80 : 0x00;
    b[13] = lun;
    b[14] = static_cast<std::uint8_t>(cdb.size());
    std::copy(cdb.begin(), cdb.end(), b.begin() + 15);
    return b;
}

Bytes read10(std::uint32_t lba, std::uint16_t blocks, std::uint8_t op = 0x28) {
    return {op,
            0,
            static_cast<std::uint8_t>(lba >> 24),
            static_cast<std::uint8_t>(lba >> 16),
            static_cast<std::uint8_t>(lba >> 8),
            static_cast<std::uint8_t>(lba),
            0,
            static_cast<std::uint8_t>(blocks >> 8),
            static_cast<std::uint8_t>(blocks),
            0};
}

Bytes rw16(std::uint64_t lba, std::uint32_t blocks, std::uint8_t op) {
    Bytes c(16, 0);
    c[0] = op;
    for (int i = 0; i < 8; ++i) {
        c[2 + i] = static_cast<std::uint8_t>(lba >> (56 - 8 * i));
    }
    for (int i = 0; i < 4; ++i) {
        c[10 + i] = static_cast<std::uint8_t>(blocks >> (24 - 8 * i));
    }
    return c;
}

struct Csw {
    std::uint32_t signature = 0;
    std::uint32_t tag = 0;
    std::uint32_t residue = 0;
    std::uint8_t status = 0xff;
};

// Plays the host's side of Bulk-Only Transport.
class Host {
  public:
    explicit Host(BulkOnlyStorage& f) : f_(f) {}

    TransferResult out(const Bytes& data) { return f_.bulkOut(data, soon(), {}); }
    TransferResult in(Bytes& buffer) { return f_.bulkIn(buffer, soon(), {}); }

    Csw csw() {
        Bytes b(13);
        const auto r = in(b);
        EXPECT_EQ(r.status, UsbStatus::Ok);
        EXPECT_EQ(r.length, 13u);
        return {le32(b, 0), le32(b, 4), le32(b, 8), b[12]};
    }

    // A whole IN command: CBW, data (one transfer of `length`), CSW. A STALL
    // in the data stage is cleared as usb-storage does.
    Bytes command(const Bytes& cdb, std::uint32_t length, Csw& status, bool* stalled = nullptr) {
        const std::uint32_t tag = ++tag_;
        EXPECT_EQ(out(cbw(tag, length, true, cdb)).status, UsbStatus::Ok);
        Bytes data(length);
        if (length != 0) {
            const auto r = in(data);
            data.resize(r.length);
            if (stalled != nullptr) {
                *stalled = r.status == UsbStatus::Stall;
            }
            if (r.status == UsbStatus::Ok && r.length == length) {
                // Full transfer; the device may still halt (residue).
            }
            if (r.status == UsbStatus::Stall || f_.halted(kIn)) {
                if (f_.halted(kIn)) {
                    Bytes probe(13);
                    EXPECT_EQ(in(probe).status, UsbStatus::Stall);
                    f_.clearHalt(kIn);
                }
            }
        }
        status = csw();
        EXPECT_EQ(status.signature, kCswSignature);
        EXPECT_EQ(status.tag, tag);
        return data;
    }

    Csw write(const Bytes& cdb, const Bytes& data) {
        const std::uint32_t tag = ++tag_;
        EXPECT_EQ(out(cbw(tag, static_cast<std::uint32_t>(data.size()), false, cdb)).status,
                  UsbStatus::Ok);
        if (!data.empty()) {
            const auto r = out(data);
            if (r.status == UsbStatus::Stall) {
                f_.clearHalt(kOut);
            }
        }
        Csw status = csw();
        EXPECT_EQ(status.tag, tag);
        return status;
    }

    SenseData requestSense() {
        Csw status;
        const Bytes s = command({0x03, 0, 0, 0, 18, 0}, 18, status);
        EXPECT_EQ(status.status, 0);
        EXPECT_EQ(s.size(), 18u);
        SenseData d;
        d.key = s[2] & 0x0f;
        d.code = static_cast<std::uint16_t>((s[12] << 8) | s[13]);
        return d;
    }

    static Deadline soon() { return Clock::now() + std::chrono::milliseconds(200); }

  private:
    BulkOnlyStorage& f_;
    std::uint32_t tag_ = 0x1000;
};

class MassStorage : public ::testing::Test {
  protected:
    void SetUp() override {
        DiskOptions o;
        o.file = dir_ / "disk.img";
        o.sizeBytes = kSize;
        o.identification = "mmcblk0";
        o.serial = "10000000abcdef01";
        disk_ = std::make_shared<ScsiDisk>(o);
        function_ = std::make_unique<BulkOnlyStorage>(disk_, 0, kIn, kOut);
        host_ = std::make_unique<Host>(*function_);
    }

    Bytes fileBytes(std::uint64_t offset, std::size_t n) const {
        Bytes b(n);
        const int fd = ::open((dir_ / "disk.img").c_str(), O_RDONLY);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(::pread(fd, b.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
        ::close(fd);
        return b;
    }

    rpiboot::test::ScratchDir dir_;
    std::shared_ptr<ScsiDisk> disk_;
    std::unique_ptr<BulkOnlyStorage> function_;
    std::unique_ptr<Host> host_;
};

Bytes random(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    Bytes b(n);
    for (auto& x : b) {
        x = static_cast<std::uint8_t>(gen());
    }
    return b;
}

TEST_F(MassStorage, BackingFileIsSparseOfTheDiskSize) {
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "disk.img").c_str(), &st), 0);
    EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), kSize);
    EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, kSize / 4);
    EXPECT_EQ(disk_->blocks(), 131072u);
}

TEST_F(MassStorage, SizeMustBeAWholeNumberOfBlocks) {
    DiskOptions o;
    o.file = dir_ / "odd.img";
    o.sizeBytes = 1000;
    EXPECT_THROW(ScsiDisk{o}, rpiboot::Error);
    o.sizeBytes = 0;
    EXPECT_THROW(ScsiDisk{o}, rpiboot::Error);
}

TEST_F(MassStorage, InquiryReportsTheGadgetsPaddedIdentification) {
    Csw status;
    const Bytes r = host_->command({0x12, 0, 0, 0, 36, 0}, 36, status);
    EXPECT_EQ(status.status, 0);
    EXPECT_EQ(status.residue, 0u);
    ASSERT_EQ(r.size(), 36u);
    EXPECT_EQ(r[0], 0x00);  // direct-access device
    EXPECT_EQ(r[1], 0x80);  // removable
    EXPECT_EQ(r[2], 0x02);
    EXPECT_EQ(r[3], 0x02);
    EXPECT_EQ(r[4], 31);
    // The gadget's inquiry_string is the device name padded to 28: it fills
    // the vendor field first.
    EXPECT_EQ(std::string(r.begin() + 8, r.begin() + 16), "mmcblk0 ");
    EXPECT_EQ(std::string(r.begin() + 16, r.begin() + 32), std::string(16, ' '));
    EXPECT_EQ(std::string(r.begin() + 32, r.begin() + 36), "    ");
}

TEST(MassStorageIdentification, SeparateFieldsArePaddedAndCut) {
    EXPECT_EQ(inquiryIdentification("Virtual", "Decoy USB Disk", "1.00"),
              "Virtual Decoy USB Disk  1.00");
    EXPECT_EQ(inquiryIdentification("ABCDEFGHIJ", "P", "12345"), "ABCDEFGHP               1234");
}

TEST_F(MassStorage, ShortReplyToALongerHostTransferHaltsInAndReportsTheResidue) {
    const std::uint32_t tag = 77;
    ASSERT_EQ(host_->out(cbw(tag, 96, true, {0x12, 0, 0, 0, 96, 0})).status, UsbStatus::Ok);
    Bytes data(96);
    const auto r = host_->in(data);
    EXPECT_EQ(r.status, UsbStatus::Ok);
    EXPECT_EQ(r.length, 36u);  // short: the end of the data
    EXPECT_TRUE(function_->halted(kIn));
    Bytes b(13);
    EXPECT_EQ(host_->in(b).status, UsbStatus::Stall);
    function_->clearHalt(kIn);
    const Csw c = host_->csw();
    EXPECT_EQ(c.tag, tag);
    EXPECT_EQ(c.residue, 60u);
    EXPECT_EQ(c.status, 0);
}

TEST_F(MassStorage, VpdPagesListAndSerial) {
    Csw status;
    const Bytes pages = host_->command({0x12, 1, 0x00, 0, 255, 0}, 255, status);
    EXPECT_EQ(status.status, 0);
    EXPECT_EQ(pages, (Bytes{0x00, 0x00, 0x00, 0x02, 0x00, 0x80}));
    EXPECT_EQ(status.residue, 255u - 6u);
    const Bytes serial = host_->command({0x12, 1, 0x80, 0, 255, 0}, 255, status);
    EXPECT_EQ(status.status, 0);
    ASSERT_EQ(serial.size(), 20u);
    EXPECT_EQ(serial[1], 0x80);
    EXPECT_EQ(serial[3], 16);
    EXPECT_EQ(std::string(serial.begin() + 4, serial.end()), "10000000abcdef01");
}

TEST_F(MassStorage, UnsupportedVpdPageIsACheckConditionWithInvalidFieldSense) {
    Csw status;
    bool stalled = false;
    const Bytes r = host_->command({0x12, 1, 0x83, 0, 255, 0}, 255, status, &stalled);
    EXPECT_TRUE(r.empty());
    EXPECT_TRUE(stalled);
    EXPECT_EQ(status.status, 1);
    EXPECT_EQ(status.residue, 255u);
    const SenseData s = host_->requestSense();
    EXPECT_EQ(s.key, sense::kIllegalRequest);
    EXPECT_EQ(s.code, sense::kInvalidFieldInCdb);
}

TEST_F(MassStorage, TestUnitReadyPreventAllowStartStopAndSyncAreGood) {
    for (const Bytes& cdb : {Bytes{0x00, 0, 0, 0, 0, 0}, Bytes{0x1E, 0, 0, 0, 1, 0},
                             Bytes{0x1B, 0, 0, 0, 1, 0}, Bytes{0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}}) {
        Csw status;
        host_->command(cdb, 0, status);
        EXPECT_EQ(status.status, 0) << "opcode " << int(cdb[0]);
        EXPECT_EQ(status.residue, 0u);
    }
    EXPECT_EQ(disk_->stats().syncs, 1u);
}

TEST_F(MassStorage, ReadCapacity10And16) {
    Csw status;
    const Bytes c10 = host_->command({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8, status);
    EXPECT_EQ(status.status, 0);
    EXPECT_EQ(c10, (Bytes{0x00, 0x01, 0xff, 0xff, 0x00, 0x00, 0x02, 0x00}));
    Bytes cdb16(16, 0);
    cdb16[0] = 0x9E;
    cdb16[1] = 0x10;
    cdb16[13] = 32;
    const Bytes c16 = host_->command(cdb16, 32, status);
    EXPECT_EQ(status.status, 0);
    Bytes want(32, 0);
    want[5] = 0x01;
    want[6] = 0xff;
    want[7] = 0xff;
    want[10] = 0x02;
    EXPECT_EQ(c16, want);
    // Another service action of SERVICE ACTION IN(16) is refused.
    cdb16[1] = 0x11;
    host_->command(cdb16, 32, status);
    EXPECT_EQ(status.status, 1);
    EXPECT_EQ(host_->requestSense().code, sense::kInvalidFieldInCdb);
}

TEST_F(MassStorage, ModeSenseSaysNotWriteProtectedWithACachingPage) {
    Csw status;
    // What sd asks through usb-storage: all pages, 192 bytes.
    const Bytes m6 = host_->command({0x1A, 0, 0x3F, 0, 192, 0}, 192, status);
    EXPECT_EQ(status.status, 0);
    EXPECT_EQ(status.residue, 192u - 24u);
    ASSERT_EQ(m6.size(), 24u);
    EXPECT_EQ(m6[0], 23);        // mode data length
    EXPECT_EQ(m6[2] & 0x80, 0);  // WP clear
    EXPECT_EQ(m6[3], 0);         // no block descriptor
    EXPECT_EQ(m6[4], 0x08);
    EXPECT_EQ(m6[5], 0x12);
    EXPECT_EQ(m6[6], 0x04);  // write cache enabled
    const Bytes head = host_->command({0x1A, 0, 0x3F, 0, 4, 0}, 4, status);
    EXPECT_EQ(head, (Bytes{23, 0, 0, 0}));
    const Bytes m10 = host_->command({0x5A, 0, 0x08, 0, 0, 0, 0, 0, 255, 0}, 255, status);
    EXPECT_EQ(status.status, 0);
    ASSERT_EQ(m10.size(), 28u);
    EXPECT_EQ(m10[0], 0);
    EXPECT_EQ(m10[1], 26);
    EXPECT_EQ(m10[3] & 0x80, 0);
    EXPECT_EQ(m10[8], 0x08);
    // Saved values are not kept.
    host_->command({0x1A, 0, 0xFF, 0, 192, 0}, 192, status);
    EXPECT_EQ(status.status, 1);
    EXPECT_EQ(host_->requestSense().code, sense::kSavingNotSupported);
    host_->command({0x1A, 0, 0x1C, 0, 192, 0}, 192, status);
    EXPECT_EQ(status.status, 1);
    EXPECT_EQ(host_->requestSense().code, sense::kInvalidFieldInCdb);
}

TEST_F(MassStorage, WriteThenReadRoundTripsAtOffsetsAndLandsInTheFile) {
    struct Case {
        std::uint64_t lba;
        std::uint32_t blocks;
        bool sixteen;
    };
    unsigned seed = 1;
    for (const Case c : {Case{0, 1, false}, Case{1000, 240, false}, Case{131071, 1, true},
                         Case{70000, 17, true}}) {
        const Bytes data = random(c.blocks * 512ULL, seed++);
        const Bytes wcdb = c.sixteen ? rw16(c.lba, c.blocks, 0x8A)
                                     : read10(static_cast<std::uint32_t>(c.lba),
                                              static_cast<std::uint16_t>(c.blocks), 0x2A);
        const Csw w = host_->write(wcdb, data);
        EXPECT_EQ(w.status, 0);
        EXPECT_EQ(w.residue, 0u);
        EXPECT_EQ(fileBytes(c.lba * 512, data.size()), data);
        // Read back the other way round (10 <-> 16).
        const Bytes rcdb = c.sixteen ? read10(static_cast<std::uint32_t>(c.lba),
                                              static_cast<std::uint16_t>(c.blocks))
                                     : rw16(c.lba, c.blocks, 0x88);
        Csw r;
        EXPECT_EQ(host_->command(rcdb, static_cast<std::uint32_t>(data.size()), r), data);
        EXPECT_EQ(r.status, 0);
        EXPECT_EQ(r.residue, 0u);
    }
    EXPECT_EQ(disk_->stats().bytesWritten, (1 + 240 + 1 + 17) * 512u);
}

TEST_F(MassStorage, DataMayComeInAnyNumberOfTransfers) {
    const Bytes data = random(8 * 512, 9);
    ASSERT_EQ(host_->out(cbw(5, 4096, false, read10(8, 8, 0x2A))).status, UsbStatus::Ok);
    for (std::size_t at = 0; at < data.size(); at += 1000) {
        const Bytes part(data.begin() + static_cast<std::ptrdiff_t>(at),
                         data.begin() + static_cast<std::ptrdiff_t>(
                                            std::min<std::size_t>(at + 1000, data.size())));
        EXPECT_EQ(host_->out(part).status, UsbStatus::Ok);
    }
    EXPECT_EQ(host_->csw().status, 0);
    ASSERT_EQ(host_->out(cbw(6, 4096, true, read10(8, 8))).status, UsbStatus::Ok);
    Bytes back;
    for (int i = 0; i < 4; ++i) {
        Bytes part(1024);
        ASSERT_EQ(host_->in(part).status, UsbStatus::Ok);
        back.insert(back.end(), part.begin(), part.end());
    }
    EXPECT_EQ(back, data);
    EXPECT_EQ(host_->csw().tag, 6u);
}

TEST_F(MassStorage, OutOfRangeLbaIsACheckConditionWithLbaOutOfRangeSense) {
    Csw status;
    bool stalled = false;
    const Bytes r = host_->command(read10(131072, 1), 512, status, &stalled);
    EXPECT_TRUE(r.empty());
    EXPECT_TRUE(stalled);
    EXPECT_EQ(status.status, 1);
    EXPECT_EQ(status.residue, 512u);
    SenseData s = host_->requestSense();
    EXPECT_EQ(s.key, sense::kIllegalRequest);
    EXPECT_EQ(s.code, sense::kLbaOutOfRange);
    // Sense is reported once: the next REQUEST SENSE says no sense.
    s = host_->requestSense();
    EXPECT_EQ(s.key, sense::kNoSense);
    EXPECT_EQ(s.code, 0);
    // A write running past the end: the OUT pipe stalls, nothing is written.
    const Csw w = host_->write(read10(131070, 4, 0x2A), random(2048, 3));
    EXPECT_EQ(w.status, 1);
    EXPECT_EQ(w.residue, 2048u);
    EXPECT_EQ(host_->requestSense().code, sense::kLbaOutOfRange);
    EXPECT_EQ(disk_->stats().bytesWritten, 0u);
}

TEST_F(MassStorage, FixedSenseBytes) {
    const Bytes s = ScsiDisk::fixedSense({sense::kIllegalRequest, sense::kLbaOutOfRange, 7, true});
    EXPECT_EQ(s, (Bytes{0xF0, 0, 0x05, 0, 0, 0, 7, 10, 0, 0, 0, 0, 0x21, 0x00, 0, 0, 0, 0}));
}

TEST_F(MassStorage, UnknownOpcodeIsInvalidCommandOperationCode) {
    Csw status;
    host_->command({0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0}, 16, status);  // REPORT LUNS
    EXPECT_EQ(status.status, 1);
    const SenseData s = host_->requestSense();
    EXPECT_EQ(s.key, sense::kIllegalRequest);
    EXPECT_EQ(s.code, sense::kInvalidOpcode);
    // Descriptor-format sense is not offered.
    host_->command({0x03, 1, 0, 0, 18, 0}, 18, status);
    EXPECT_EQ(status.status, 1);
}

TEST_F(MassStorage, OtherLunsAreNotSupported) {
    ASSERT_EQ(host_->out(cbw(9, 0, false, {0x00, 0, 0, 0, 0, 0}, 1)).status, UsbStatus::Ok);
    EXPECT_EQ(host_->csw().status, 1);
}

TEST_F(MassStorage, BadSignatureStallsBothPipesUntilResetRecovery) {
    Bytes bad = cbw(1, 0, false, {0x00, 0, 0, 0, 0, 0});
    bad[3] = 'X';
    EXPECT_EQ(host_->out(bad).status, UsbStatus::Ok);
    Bytes b(13);
    EXPECT_EQ(host_->in(b).status, UsbStatus::Stall);
    EXPECT_EQ(host_->out(cbw(2, 0, false, {0x00, 0, 0, 0, 0, 0})).status, UsbStatus::Stall);
    // CLEAR_FEATURE alone does not release them (BOT 6.6.1).
    function_->clearHalt(kIn);
    function_->clearHalt(kOut);
    EXPECT_TRUE(function_->halted(kIn));
    EXPECT_TRUE(function_->halted(kOut));
    // Reset Recovery: the class reset, then both halts cleared.
    Bytes none;
    EXPECT_EQ(function_->classRequest({0x21, kRequestMassStorageReset, 0, 0, 0}, none).status,
              UsbStatus::Ok);
    EXPECT_TRUE(function_->halted(kIn));  // a reset keeps the halts
    function_->clearHalt(kIn);
    function_->clearHalt(kOut);
    Csw status;
    host_->command({0x00, 0, 0, 0, 0, 0}, 0, status);
    EXPECT_EQ(status.status, 0);
    EXPECT_EQ(function_->stats().invalidCbws, 1u);
    EXPECT_EQ(function_->stats().resets, 1u);
}

TEST_F(MassStorage, ShortCbwIsInvalidToo) {
    Bytes shortCbw = cbw(1, 0, false, {0x00, 0, 0, 0, 0, 0});
    shortCbw.pop_back();
    EXPECT_EQ(host_->out(shortCbw).status, UsbStatus::Ok);
    EXPECT_TRUE(function_->halted(kIn));
    EXPECT_TRUE(function_->halted(kOut));
    // So is a CDB length of 0 or above 16.
    SetUp();
    Bytes zero = cbw(1, 0, false, {0x00});
    zero[14] = 0;
    host_->out(zero);
    EXPECT_TRUE(function_->halted(kOut));
}

TEST_F(MassStorage, HostExpectingLessThanTheDeviceHasIsAPhaseError) {
    // READ of 8 blocks with room for one (case 7): one block, then phase error.
    ASSERT_EQ(host_->out(cbw(3, 512, true, read10(0, 8))).status, UsbStatus::Ok);
    Bytes data(512);
    EXPECT_EQ(host_->in(data).length, 512u);
    EXPECT_EQ(host_->csw().status, 2);
    // READ with no data stage at all (case 2).
    ASSERT_EQ(host_->out(cbw(4, 0, false, read10(0, 1))).status, UsbStatus::Ok);
    EXPECT_EQ(host_->csw().status, 2);
    // Host sends where the device would send (case 10): OUT pipe halted.
    ASSERT_EQ(host_->out(cbw(5, 36, false, {0x12, 0, 0, 0, 36, 0})).status, UsbStatus::Ok);
    EXPECT_TRUE(function_->halted(kOut));
    EXPECT_EQ(host_->csw().status, 2);
    EXPECT_EQ(function_->stats().phaseErrors, 3u);
}

TEST_F(MassStorage, HostSendingMoreThanTheCommandWantsGetsAStallAfterIt) {
    // WRITE of one block in a 1024-byte transfer (case 11).
    ASSERT_EQ(host_->out(cbw(8, 1024, false, read10(3, 1, 0x2A))).status, UsbStatus::Ok);
    const auto r = host_->out(random(1024, 4));
    EXPECT_EQ(r.status, UsbStatus::Stall);
    EXPECT_EQ(r.length, 512u);
    function_->clearHalt(kOut);
    const Csw c = host_->csw();
    EXPECT_EQ(c.status, 0);
    EXPECT_EQ(c.residue, 512u);
}

TEST_F(MassStorage, GetMaxLunAndUnknownClassRequests) {
    Bytes one(1, 0xff);
    const auto r = function_->classRequest({0xA1, kRequestGetMaxLun, 0, 0, 1}, one);
    EXPECT_EQ(r.status, UsbStatus::Ok);
    EXPECT_EQ(r.length, 1u);
    EXPECT_EQ(one[0], 0);
    Bytes none;
    EXPECT_EQ(function_->classRequest({0xA1, 0x42, 0, 0, 0}, none).status, UsbStatus::Stall);
    EXPECT_EQ(function_->classRequest({0x21, kRequestMassStorageReset, 1, 0, 0}, none).status,
              UsbStatus::Stall);
}

TEST_F(MassStorage, NothingToSendNaksAndACancelEndsTheWait) {
    Bytes b(13);
    EXPECT_EQ(host_->in(b).status, UsbStatus::Timeout);
    std::stop_source cancel;
    cancel.request_stop();
    EXPECT_EQ(function_->bulkIn(b, Deadline::max(), cancel.get_token()).status,
              UsbStatus::Cancelled);
}

TEST_F(MassStorage, DisconnectEndsEveryTransfer) {
    function_->disconnect();
    Bytes b(13);
    EXPECT_EQ(host_->in(b).status, UsbStatus::Disconnected);
    EXPECT_EQ(host_->out(cbw(1, 0, false, {0, 0, 0, 0, 0, 0})).status, UsbStatus::Disconnected);
}

TEST_F(MassStorage, UnplugLimitKeepsExactlyThatManyBytesAndLeaves) {
    std::atomic<int> calls = 0;
    function_->unplugAfterWritten(5000, [&] { ++calls; });
    const Bytes first = random(4096, 5);
    EXPECT_EQ(host_->write(read10(0, 8, 0x2A), first).status, 0);
    ASSERT_EQ(host_->out(cbw(2, 4096, false, read10(8, 8, 0x2A))).status, UsbStatus::Ok);
    const Bytes second = random(4096, 6);
    const auto r = host_->out(second);
    EXPECT_EQ(r.status, UsbStatus::Disconnected);
    EXPECT_EQ(r.length, 5000u - 4096u);
    EXPECT_EQ(calls.load(), 1);
    EXPECT_TRUE(function_->unplugged());
    EXPECT_EQ(disk_->stats().bytesWritten, 5000u);
    EXPECT_EQ(fileBytes(4096, 904), Bytes(second.begin(), second.begin() + 904));
    EXPECT_EQ(fileBytes(5000, 100), Bytes(100, 0));
}

// ------------------------------------------------ through a board's UsbDevice

Scenario gadgetNow() {
    Scenario s;
    s.name = "gadget";
    s.startStage = StartStage::Final;
    s.final.kind = FinalKind::MassStorageGadget;
    s.final.disks = {"mmcblk0", "nvme0n1"};
    return s;
}

TEST(MassStorageBoard, TheGadgetsDisksAnswerThroughTheBoard) {
    rpiboot::test::ScratchDir dir;
    BoardOptions o;
    o.serial = "0badcafe";
    o.disks = {{dir / "a.img", 1 << 20, std::nullopt}, {dir / "b.img", 2 << 20, std::nullopt}};
    SimBoard board(gadgetNow(), o);
    board.start();
    ASSERT_TRUE(board.waitForStage(Stage::Final, std::chrono::seconds(5)));
    const auto device = board.device();
    ASSERT_TRUE(device);
    EXPECT_EQ(device->descriptors().vendorId(), 0x0a5c);
    EXPECT_EQ(device->descriptors().productId(), 0x0104);
    const auto interfaces = device->descriptors().storageInterfaces();
    ASSERT_EQ(interfaces.size(), 2u);
    EXPECT_EQ(interfaces[1].in, 0x82);
    EXPECT_EQ(interfaces[1].out, 0x02);
    const auto soon = [] { return Clock::now() + std::chrono::milliseconds(500); };
    Bytes lun(1, 0xff);
    EXPECT_EQ(device->control({0xA1, kRequestGetMaxLun, 0, 1, 1}, lun, soon()).status,
              UsbStatus::Ok);
    EXPECT_EQ(lun[0], 0);
    // READ CAPACITY on the second disk: 2 MiB = 4096 blocks.
    ASSERT_EQ(
        device->bulkOut(0x02, cbw(1, 8, true, {0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}), soon()).status,
        UsbStatus::Ok);
    Bytes cap(8);
    ASSERT_EQ(device->bulkIn(0x82, cap, soon()).length, 8u);
    EXPECT_EQ(cap, (Bytes{0, 0, 0x0f, 0xff, 0, 0, 2, 0}));
    Bytes csw(13);
    EXPECT_EQ(device->bulkIn(0x82, csw, soon()).length, 13u);
    // A STALL is visible to GET_STATUS and cleared by CLEAR_FEATURE.
    ASSERT_EQ(device->bulkOut(0x01, cbw(2, 64, true, {0x12, 0, 0, 0, 36, 0}), soon()).status,
              UsbStatus::Ok);
    Bytes inq(64);
    EXPECT_EQ(device->bulkIn(0x81, inq, soon()).length, 36u);
    EXPECT_EQ(std::string(inq.begin() + 8, inq.begin() + 15), "mmcblk0");
    Bytes st(2);
    ASSERT_EQ(device->control({0x82, 0, 0, 0x81, 2}, st, soon()).status, UsbStatus::Ok);
    EXPECT_EQ(st[0], 1);
    Bytes none;
    EXPECT_EQ(device->control({0x02, 1, 0, 0x81, 0}, none, soon()).status, UsbStatus::Ok);
    ASSERT_EQ(device->control({0x82, 0, 0, 0x81, 2}, st, soon()).status, UsbStatus::Ok);
    EXPECT_EQ(st[0], 0);
    EXPECT_EQ(device->bulkIn(0x81, csw, soon()).length, 13u);
    EXPECT_EQ(csw[12], 0);
    const auto disks = board.disks();
    ASSERT_EQ(disks.size(), 2u);
    EXPECT_EQ(disks[1].name, "nvme0n1");
    EXPECT_EQ(disks[1].sizeBytes, 2u << 20);
    EXPECT_EQ(board.waitForOutcome(std::chrono::seconds(5)), Outcome::Succeeded);
    board.stop();
    EXPECT_EQ(device->bulkIn(0x81, csw, soon()).status, UsbStatus::Disconnected);
}

TEST(MassStorageBoard, AnUnplugLimitTakesTheBoardOffTheBus) {
    rpiboot::test::ScratchDir dir;
    std::atomic<int> detached = 0;
    BoardOptions o;
    o.disks = {{dir / "a.img", 1 << 20, 1024}};
    o.listener = [&](const AttachEvent& e) {
        if (e.kind == AttachEventKind::Detached) {
            ++detached;
        }
    };
    Scenario s = gadgetNow();
    s.final.disks = {"mmcblk0"};
    SimBoard board(s, o);
    board.start();
    ASSERT_TRUE(board.waitForStage(Stage::Final, std::chrono::seconds(5)));
    const auto device = board.device();
    const auto soon = [] { return Clock::now() + std::chrono::milliseconds(500); };
    ASSERT_EQ(device->bulkOut(0x01, cbw(1, 4096, false, read10(0, 8, 0x2A)), soon()).status,
              UsbStatus::Ok);
    EXPECT_EQ(device->bulkOut(0x01, random(4096, 1), soon()).status, UsbStatus::Disconnected);
    for (int i = 0; i < 100 && board.stage() != Stage::Off; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(board.stage(), Stage::Off);
    EXPECT_EQ(detached.load(), 1);
    ASSERT_EQ(board.disks().size(), 1u);
    EXPECT_TRUE(board.disks()[0].unplugged);
    EXPECT_EQ(board.disks()[0].stats.bytesWritten, 1024u);
}

TEST(MassStorageBoard, MoreBackingFilesThanDisksIsRefused) {
    rpiboot::test::ScratchDir dir;
    BoardOptions o;
    o.disks = {{dir / "a.img", 1 << 20, std::nullopt}};
    Scenario s = gadgetNow();
    s.final.kind = FinalKind::Custom;
    EXPECT_THROW(SimBoard(s, o), rpiboot::Error);
}

TEST(MassStorageScenario, UsbDiskAndStartFinalInJson) {
    const Scenario s = parseScenario(R"({"name": "stick", "chip": "2711", "startStage": "final",
        "final": {"kind": "usb-disk", "vendorId": "0x1209", "productId": 1,
                  "manufacturer": "Virtual", "product": "Stick", "disks": ["stick"]}})");
    EXPECT_EQ(s.startStage, StartStage::Final);
    EXPECT_EQ(s.final.kind, FinalKind::UsbDisk);
    EXPECT_EQ(s.final.vendorId, 0x1209);
    const Scenario again = scenarioFromJson(scenarioToJson(s));
    EXPECT_EQ(again.startStage, StartStage::Final);
    EXPECT_EQ(again.final.kind, FinalKind::UsbDisk);
    EXPECT_EQ(again.final.disks, s.final.disks);
    // A board that starts final needs a final identity; a usb-disk has one disk.
    EXPECT_THROW(parseScenario(R"({"name": "x", "chip": "2711", "startStage": "final"})"),
                 rpiboot::Error);
    EXPECT_THROW(
        parseScenario(
            R"({"name": "x", "chip": "2711", "final": {"kind": "usb-disk", "disks": ["a", "b"]}})"),
        rpiboot::Error);
}

// ------------------------------------------------ board specs

TEST(MassStorageSpec, DiskSizes) {
    EXPECT_EQ(usbip::parseDiskSize("64M"), 64ULL << 20);
    EXPECT_EQ(usbip::parseDiskSize("1g"), 1ULL << 30);
    EXPECT_EQ(usbip::parseDiskSize("4096"), 4096u);
    EXPECT_EQ(usbip::parseDiskSize("2K"), 2048u);
    for (const char* bad : {"", "0", "1000", "M", "-1M", "12Q", "1.5M"}) {
        EXPECT_THROW(usbip::parseDiskSize(bad), rpiboot::Error) << bad;
    }
}

TEST(MassStorageSpec, DiskAndUnplugOnAGadgetBoard) {
    const auto spec = usbip::parseBoardSpec("2712:mass-storage-gadget,disk=64M,unplug=disk@1000");
    ASSERT_EQ(spec.disks.size(), 1u);
    const auto scenario = usbip::boardScenario(spec, "00000001", {});
    for (const auto& step : scenario.steps) {
        EXPECT_FALSE(step.fault.active()) << step.name;
    }
    const auto disks = usbip::boardDisks(spec, scenario, "/r", 3);
    ASSERT_EQ(disks.size(), 1u);
    EXPECT_EQ(disks[0].file, "/r/board-3-disk.img");
    EXPECT_EQ(disks[0].sizeBytes, 64ULL << 20);
    EXPECT_EQ(disks[0].unplugAfterWritten, 1000u);
}

TEST(MassStorageSpec, SeveralNamedDisksAndStartFinal) {
    const auto spec = usbip::parseBoardSpec(
        "2711:mass-storage-gadget,disks=mmcblk0:64M+nvme0n1:32M,start=final,unplug=nvme0n1@5");
    EXPECT_EQ(spec.scenario.startStage, StartStage::Final);
    EXPECT_EQ(spec.scenario.final.disks, (std::vector<std::string>{"mmcblk0", "nvme0n1"}));
    const auto disks = usbip::boardDisks(spec, spec.scenario, "/r", 0);
    ASSERT_EQ(disks.size(), 2u);
    EXPECT_EQ(disks[1].file, "/r/board-0-nvme0n1.img");
    EXPECT_EQ(disks[1].sizeBytes, 32ULL << 20);
    EXPECT_FALSE(disks[0].unplugAfterWritten);
    EXPECT_EQ(disks[1].unplugAfterWritten, 5u);
}

TEST(MassStorageSpec, DecoyDiskIsAPlainUsbDiskThatNeverBoots) {
    const auto spec = usbip::parseBoardSpec("decoy-disk:32M");
    EXPECT_EQ(spec.scenario.startStage, StartStage::Final);
    EXPECT_EQ(spec.scenario.final.kind, FinalKind::UsbDisk);
    ASSERT_EQ(spec.disks.size(), 1u);
    EXPECT_EQ(spec.disks[0].sizeBytes, 32ULL << 20);
    const auto d = usbDiskDescriptors(usbip::kDecoyVendorId, usbip::kDecoyProductId, "Virtual",
                                      "Decoy USB Disk", "7e570001");
    EXPECT_EQ(d.vendorId(), 0x1209);
    EXPECT_EQ(d.productId(), 0x0001);
    ASSERT_EQ(d.storageInterfaces().size(), 1u);
    EXPECT_EQ(d.storageInterfaces()[0].in, 0x81);
    EXPECT_EQ(d.storageInterfaces()[0].out, 0x01);
}

TEST(MassStorageSpec, DisksNeedAFinalIdentityWithDisks) {
    EXPECT_THROW(usbip::parseBoardSpec("2711:msd,disk=64M"), rpiboot::Error);
    EXPECT_THROW(usbip::parseBoardSpec("2711:msd,start=final"), rpiboot::Error);
    EXPECT_THROW(usbip::parseBoardSpec("2712:mass-storage-gadget,unplug=disk@5"), rpiboot::Error);
    EXPECT_THROW(usbip::parseBoardSpec("2712:mass-storage-gadget,disks=mmcblk0"), rpiboot::Error);
    EXPECT_THROW(usbip::parseBoardSpec("decoy-disk:32M,disk=1M"), rpiboot::Error);
    EXPECT_THROW(usbip::parseBoardSpec("2712:mass-storage-gadget,start=rom"), rpiboot::Error);
}

}  // namespace
}  // namespace virtualpi
