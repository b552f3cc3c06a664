// UrbServer against a real virtual board, with the test playing vhci-hcd on
// the other end of a socket pair.
#include "urb_server.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <atomic>
#include <future>
#include <thread>

#include "fake_kernel.hpp"
#include "virtualpi/scenario_builder.hpp"
#include "virtualpi/sim_board.hpp"

namespace usbip {
namespace {

using namespace std::chrono_literals;
using rpiboot::test::FakeKernel;
using virtualpi::SetupPacket;

constexpr std::uint8_t kIn = 0x80;

std::string sha256Hex(const std::vector<std::uint8_t>& bytes) {
    unsigned char digest[32];
    unsigned int length = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < length; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 15]);
    }
    return out;
}

SetupPacket getDescriptor(std::uint8_t type, std::uint8_t index, std::uint16_t length) {
    return {kIn, 6, static_cast<std::uint16_t>((type << 8) | index), 0, length};
}

SetupPacket vendorOut(std::uint32_t length) {
    return {virtualpi::kVendorOut, 0, static_cast<std::uint16_t>(length & 0xffff),
            static_cast<std::uint16_t>(length >> 16), 0};
}

SetupPacket vendorIn(std::uint16_t length) {
    return {virtualpi::kVendorIn, 0, length, 0, length};
}

std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> b(size);
    std::uint32_t x = 0x12345678;
    for (auto& v : b) {
        x = x * 1664525 + 1013904223;
        v = static_cast<std::uint8_t>(x >> 24);
    }
    return b;
}

// A board whose first enumeration is served by an UrbServer on a socket
// pair; the test holds the kernel's end.
class ServedBoard {
  public:
    explicit ServedBoard(virtualpi::Scenario scenario) {
        virtualpi::BoardOptions options;
        options.listener = [this](const virtualpi::AttachEvent& e) {
            if (e.kind == virtualpi::AttachEventKind::Attached && !attached_.exchange(true)) {
                promise_.set_value(e.device);
            }
        };
        first_ = promise_.get_future();
        board = std::make_unique<virtualpi::SimBoard>(std::move(scenario), std::move(options));
        board->start();
        if (first_.wait_for(10s) != std::future_status::ready) {
            throw std::runtime_error("the virtual board never attached");
        }
        device = first_.get();
        auto [ours, theirs] = streamSocketPair();
        UrbServerOptions so;
        so.name = "test board";
        so.onPeerClosed = [this] { peerClosedCalls.fetch_add(1); };
        server = std::make_unique<UrbServer>(std::move(ours), device, so);
        kernel = std::make_unique<FakeKernel>(std::move(theirs));
    }
    ~ServedBoard() {
        server->stop();
        board->stop();
    }

    std::unique_ptr<virtualpi::SimBoard> board;
    std::shared_ptr<virtualpi::UsbDevice> device;
    std::unique_ptr<UrbServer> server;
    std::unique_ptr<FakeKernel> kernel;
    std::atomic<int> peerClosedCalls{0};

  private:
    std::promise<std::shared_ptr<virtualpi::UsbDevice>> promise_;
    std::shared_future<std::shared_ptr<virtualpi::UsbDevice>> first_;
    std::atomic<bool> attached_{false};
};

virtualpi::Scenario romOnly2711(const std::string& bootcodeSha256 = {}) {
    virtualpi::ScenarioBuilder b(rpiboot::Chip::Bcm2711);
    b.serial("1a2b3c4d");
    if (!bootcodeSha256.empty()) {
        b.bootcode("bootcode4.bin", bootcodeSha256);
    }
    return b.endWithEmptyName().build();
}

// A second stage that stays busy (for an hour) before its first request, so
// the host's control IN is held.
virtualpi::Scenario busySecondStage() {
    return virtualpi::ScenarioBuilder(rpiboot::Chip::Bcm2711)
        .startInSecondStage()
        .pause(std::chrono::hours(1))
        .endWithEmptyName()
        .build();
}

TEST(UrbServer, AnswersGetDescriptorWithTheBoardsDeviceDescriptorBytes) {
    ServedBoard b(romOnly2711());
    const auto seq = b.kernel->control(getDescriptor(virtualpi::kDescriptorDevice, 0, 18));
    const auto a = b.kernel->answerTo(seq);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->command, kRetSubmit);
    EXPECT_EQ(a->status, kStatusOk);
    EXPECT_EQ(a->data, b.device->descriptors().device);
}

TEST(UrbServer, PartialDescriptorReadReturnsOnlyWLengthBytes) {
    ServedBoard b(romOnly2711());
    const auto seq = b.kernel->control(getDescriptor(virtualpi::kDescriptorDevice, 0, 8));
    const auto a = b.kernel->answerTo(seq);
    ASSERT_TRUE(a);
    const auto& d = b.device->descriptors().device;
    EXPECT_EQ(a->data, std::vector<std::uint8_t>(d.begin(), d.begin() + 8));
}

TEST(UrbServer, UnknownStringDescriptorIsStalledWithEpipe) {
    ServedBoard b(romOnly2711());
    const auto seq = b.kernel->control(getDescriptor(virtualpi::kDescriptorString, 77, 255));
    const auto a = b.kernel->answerTo(seq);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, kStatusStall);
    EXPECT_EQ(a->actualLength, 0u);
}

TEST(UrbServer, RomStageUploadArrivesByteForByteThroughQueuedBulkUrbs) {
    const auto bootcode = pattern(100 * 1024 + 123);
    ServedBoard b(romOnly2711(sha256Hex(bootcode)));
    FakeKernel& k = *b.kernel;

    std::vector<std::uint8_t> message(24, 0);
    const auto n = static_cast<std::uint32_t>(bootcode.size());
    for (int i = 0; i < 4; ++i) {
        message[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
    }
    EXPECT_EQ(k.answerTo(k.control(vendorOut(24)))->status, kStatusOk);
    const auto msgAnswer = k.answerTo(k.bulkOut(0x01, message));
    EXPECT_EQ(msgAnswer->status, kStatusOk);
    EXPECT_EQ(msgAnswer->actualLength, 24u);

    EXPECT_EQ(k.answerTo(k.control(vendorOut(n)))->status, kStatusOk);
    // All chunks submitted before any is answered, as usbfs queues them.
    std::vector<std::uint32_t> seqs;
    for (std::size_t at = 0; at < bootcode.size(); at += 16384) {
        const auto end = std::min(bootcode.size(), at + 16384);
        const std::span<const std::uint8_t> chunk(bootcode.data() + at, end - at);
        seqs.push_back(k.bulkOut(0x01, std::vector<std::uint8_t>(chunk.begin(), chunk.end())));
    }
    std::uint64_t accepted = 0;
    for (auto seq : seqs) {
        const auto a = k.answerTo(seq);
        ASSERT_TRUE(a);
        EXPECT_EQ(a->status, kStatusOk);
        accepted += a->actualLength;
    }
    EXPECT_EQ(accepted, bootcode.size());

    const auto status = k.answerTo(k.control(vendorIn(4)));
    ASSERT_TRUE(status);
    EXPECT_EQ(status->data, std::vector<std::uint8_t>(4, 0));
    const auto record = b.board->record();
    ASSERT_EQ(record.romAttempts.size(), 1u);
    EXPECT_TRUE(record.romAttempts[0].accepted) << record.romAttempts[0].reason;
    EXPECT_EQ(record.romAttempts[0].bootcodeSha256, sha256Hex(bootcode));
}

TEST(UrbServer, HeldControlInDoesNotHoldUpDescriptorReads) {
    ServedBoard b(busySecondStage());
    FakeKernel& k = *b.kernel;
    const auto held = k.control(vendorIn(260));
    const auto seq = k.control(getDescriptor(virtualpi::kDescriptorConfiguration, 0, 9));
    const auto a = k.next();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->seqnum, seq) << "the held vendor IN was answered first";
    EXPECT_EQ(a->status, kStatusOk);
    EXPECT_EQ(a->data.size(), 9u);
    EXPECT_TRUE(k.silentFor(100ms)) << "the held vendor IN " << held << " got an answer";
}

TEST(UrbServer, UnlinkOfHeldUrbAnswersEconnresetAndNeverTheSubmit) {
    ServedBoard b(busySecondStage());
    FakeKernel& k = *b.kernel;
    const auto held = k.control(vendorIn(260));
    const auto unlinkSeq = k.unlink(held);
    const auto a = k.next();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->command, kRetUnlink);
    EXPECT_EQ(a->seqnum, unlinkSeq);
    EXPECT_EQ(a->status, kStatusUnlinked);
    // The next answer belongs to the next request, not to the unlinked one.
    const auto seq = k.control(getDescriptor(virtualpi::kDescriptorDevice, 0, 18));
    const auto after = k.next();
    ASSERT_TRUE(after);
    EXPECT_EQ(after->seqnum, seq);
    EXPECT_EQ(b.server->counters().unlinkedPending, 1u);
}

TEST(UrbServer, UnlinkOfAnsweredUrbAnswersZeroAfterItsSubmit) {
    ServedBoard b(romOnly2711());
    FakeKernel& k = *b.kernel;
    const auto seq = k.control(getDescriptor(virtualpi::kDescriptorDevice, 0, 18));
    const auto first = k.next();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->seqnum, seq);
    k.unlink(seq);
    const auto second = k.next();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->command, kRetUnlink);
    EXPECT_EQ(second->status, kStatusOk);
}

TEST(UrbServer, HaltSetAndClearedThroughStandardRequestsReachesTheBoard) {
    ServedBoard b(busySecondStage());
    FakeKernel& k = *b.kernel;
    const SetupPacket setHalt{0x02, 3, 0, 0x01, 0};
    const SetupPacket clearHalt{0x02, 1, 0, 0x01, 0};
    const SetupPacket getStatus{0x82, 0, 0, 0x01, 2};
    EXPECT_EQ(k.answerTo(k.control(setHalt))->status, kStatusOk);
    EXPECT_EQ(k.answerTo(k.control(getStatus))->data, (std::vector<std::uint8_t>{1, 0}));
    EXPECT_EQ(k.answerTo(k.bulkOut(0x01, {1, 2, 3}))->status, kStatusStall);
    EXPECT_EQ(k.answerTo(k.control(clearHalt))->status, kStatusOk);
    EXPECT_EQ(k.answerTo(k.control(getStatus))->data, (std::vector<std::uint8_t>{0, 0}));
}

TEST(UrbServer, PendingUrbsEndWithNoDeviceWhenTheBoardLeavesTheBus) {
    ServedBoard b(busySecondStage());
    FakeKernel& k = *b.kernel;
    const auto held = k.control(vendorIn(260));
    ASSERT_TRUE(k.silentFor(50ms));
    b.board->stop();
    const auto a = k.answerTo(held);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, kStatusNoDevice);
    EXPECT_TRUE(b.server->drain(5s));
}

TEST(UrbServer, KernelClosingTheConnectionIsReportedOnce) {
    ServedBoard b(busySecondStage());
    b.kernel->control(vendorIn(260));
    b.kernel->close();
    ASSERT_TRUE(b.server->waitForPeerClose(10s));
    b.server->stop();
    EXPECT_EQ(b.peerClosedCalls.load(), 1);
}

TEST(UrbServer, ExpectedCloseIsNotReported) {
    ServedBoard b(busySecondStage());
    b.server->expectPeerClose();
    b.kernel->close();
    ASSERT_TRUE(b.server->waitForPeerClose(10s));
    b.server->stop();
    EXPECT_EQ(b.peerClosedCalls.load(), 0);
}

TEST(UrbServer, VendorRequestOtherThanBootProtocolIsStalled) {
    ServedBoard b(romOnly2711());
    const SetupPacket other{virtualpi::kVendorIn, 7, 0, 0, 4};
    const auto a = b.kernel->answerTo(b.kernel->control(other));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, kStatusStall);
}

TEST(UrbServer, RecordsTheHostsReplyTimeOfEachFileRequestInMicroseconds) {
    ServedBoard b(virtualpi::ScenarioBuilder(rpiboot::Chip::Bcm2711)
                      .startInSecondStage()
                      .getFileSize("config.txt")
                      .getFileSize("start4.elf")
                      .endWithEmptyName()
                      .build());
    FakeKernel& k = *b.kernel;
    EXPECT_TRUE(b.server->counters().replyMicros.empty());
    const auto first = k.answerTo(k.control(vendorIn(260)));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->actualLength, 260u);
    std::this_thread::sleep_for(30ms);  // the host "thinks" before it replies
    EXPECT_EQ(k.answerTo(k.control(vendorOut(238)))->status, kStatusOk);
    const auto second = k.answerTo(k.control(vendorIn(260)));
    ASSERT_TRUE(second);
    EXPECT_EQ(k.answerTo(k.control(vendorOut(0)))->status, kStatusOk);  // missing: size 0
    const std::vector<std::uint32_t> us = b.server->counters().replyMicros;
    ASSERT_EQ(us.size(), 2u);
    EXPECT_GE(us[0], 30'000u);
    EXPECT_LT(us[0], 10'000'000u);
}

}  // namespace
}  // namespace usbip
