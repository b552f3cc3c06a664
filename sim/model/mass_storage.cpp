// SCSI disk and Bulk-Only Transport of the virtual boards' mass-storage
// functions (USB Mass Storage Class Bulk-Only Transport 1.0, SPC/SBC command
// formats). Written from the specifications' field layouts; where the
// specifications leave a choice, the choice of the Linux mass-storage gadget
// with `stall=1` (what the mass-storage-gadget image configures) is taken.
#include "virtualpi/mass_storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "rpiboot/core/error.hpp"

namespace virtualpi {
namespace {

using rpiboot::Errc;
using rpiboot::Error;

// Operation codes.
constexpr std::uint8_t kTestUnitReady = 0x00;
constexpr std::uint8_t kRequestSense = 0x03;
constexpr std::uint8_t kInquiry = 0x12;
constexpr std::uint8_t kModeSense6 = 0x1A;
constexpr std::uint8_t kStartStopUnit = 0x1B;
constexpr std::uint8_t kPreventAllowMediumRemoval = 0x1E;
constexpr std::uint8_t kReadCapacity10 = 0x25;
constexpr std::uint8_t kRead10 = 0x28;
constexpr std::uint8_t kWrite10 = 0x2A;
constexpr std::uint8_t kSynchronizeCache10 = 0x35;
constexpr std::uint8_t kModeSense10 = 0x5A;
constexpr std::uint8_t kRead16 = 0x88;
constexpr std::uint8_t kWrite16 = 0x8A;
constexpr std::uint8_t kServiceActionIn16 = 0x9E;
constexpr std::uint8_t kReadCapacity16ServiceAction = 0x10;

constexpr std::uint8_t kPageCaching = 0x08;
constexpr std::uint8_t kPageAll = 0x3F;

constexpr std::uint8_t kCswPassed = 0;
constexpr std::uint8_t kCswFailed = 1;
constexpr std::uint8_t kCswPhaseError = 2;

std::uint16_t be16(std::span<const std::uint8_t> b, std::size_t at) {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}
std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t at) {
    return (static_cast<std::uint32_t>(b[at]) << 24) |
           (static_cast<std::uint32_t>(b[at + 1]) << 16) |
           (static_cast<std::uint32_t>(b[at + 2]) << 8) | b[at + 3];
}
std::uint64_t be64(std::span<const std::uint8_t> b, std::size_t at) {
    return (static_cast<std::uint64_t>(be32(b, at)) << 32) | be32(b, at + 4);
}
std::uint32_t le32(std::span<const std::uint8_t> b, std::size_t at) {
    return static_cast<std::uint32_t>(b[at]) | (static_cast<std::uint32_t>(b[at + 1]) << 8) |
           (static_cast<std::uint32_t>(b[at + 2]) << 16) |
           (static_cast<std::uint32_t>(b[at + 3]) << 24);
}
void putBe32(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
    }
}
void putBe64(std::vector<std::uint8_t>& out, std::size_t at, std::uint64_t v) {
    putBe32(out, at, static_cast<std::uint32_t>(v >> 32));
    putBe32(out, at + 4, static_cast<std::uint32_t>(v));
}
void putLe32(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

std::string padded(std::string_view text, std::size_t width) {
    std::string out(text.substr(0, std::min(text.size(), width)));
    out.resize(width, ' ');
    return out;
}

// CDB length by operation code group (SPC): 6, 10, 10, reserved, 16, 12.
std::size_t cdbLength(std::uint8_t opcode) {
    switch (opcode >> 5) {
        case 0:
            return 6;
        case 1:
        case 2:
            return 10;
        case 4:
            return 16;
        case 5:
            return 12;
        default:
            return 1;
    }
}

std::vector<std::uint8_t> cut(std::vector<std::uint8_t> bytes, std::size_t allocation) {
    if (bytes.size() > allocation) {
        bytes.resize(allocation);
    }
    return bytes;
}

}  // namespace

std::string inquiryIdentification(std::string_view vendor, std::string_view product,
                                  std::string_view revision) {
    return padded(vendor, 8) + padded(product, 16) + padded(revision, 4);
}

// ---------------------------------------------------------------- ScsiDisk

ScsiDisk::ScsiDisk(DiskOptions options) : options_(std::move(options)) {
    if (options_.sizeBytes == 0 || options_.sizeBytes % kDiskBlockSize != 0) {
        throw Error(Errc::InvalidArgument, "virtual disk: size " +
                                               std::to_string(options_.sizeBytes) +
                                               " is not a positive multiple of 512 bytes");
    }
    options_.identification = padded(options_.identification, 28);
    if (options_.serial.empty()) {
        options_.serial = "0";
    }
    fd_ = ::open(options_.file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw Error(Errc::Io, "virtual disk: cannot open " + options_.file.string() + ": " +
                                  std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || (static_cast<std::uint64_t>(st.st_size) != options_.sizeBytes &&
                                   ::ftruncate(fd_, static_cast<off_t>(options_.sizeBytes)) != 0)) {
        const int err = errno;
        ::close(fd_);
        throw Error(Errc::Io, "virtual disk: cannot size " + options_.file.string() + ": " +
                                  std::strerror(err));
    }
}

ScsiDisk::~ScsiDisk() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

SenseData ScsiDisk::sense() const {
    std::lock_guard lock(mutex_);
    return sense_;
}

DiskStats ScsiDisk::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

std::vector<std::uint8_t> ScsiDisk::fixedSense(const SenseData& s) {
    std::vector<std::uint8_t> out(18, 0);
    out[0] = static_cast<std::uint8_t>(0x70 | (s.informationValid ? 0x80 : 0));  // current
    out[2] = s.key & 0x0f;
    putBe32(out, 3, s.information);
    out[7] = 10;  // additional sense length
    out[12] = static_cast<std::uint8_t>(s.code >> 8);
    out[13] = static_cast<std::uint8_t>(s.code & 0xff);
    return out;
}

ScsiPlan ScsiDisk::fail(std::uint8_t key, std::uint16_t code) {
    // Caller holds mutex_.
    sense_ = SenseData{key, code, 0, false};
    ++stats_.failedCommands;
    ScsiPlan plan;
    plan.good = false;
    return plan;
}

ScsiPlan ScsiDisk::decode(std::span<const std::uint8_t> cdbIn, std::uint8_t lun) {
    std::lock_guard lock(mutex_);
    ++stats_.commands;
    if (cdbIn.empty()) {
        return fail(sense::kIllegalRequest, sense::kInvalidOpcode);
    }
    const std::uint8_t op = cdbIn[0];
    // Sense data describes the last command; REQUEST SENSE reports it.
    SenseData last = sense_;
    sense_ = {};
    if (lun != 0) {
        if (op == kRequestSense) {
            ScsiPlan plan;
            plan.direction = DataDirection::In;
            plan.in = cut(fixedSense({sense::kIllegalRequest, sense::kLunNotSupported, 0, false}),
                          cdbIn.size() > 4 ? cdbIn[4] : 0);
            plan.length = plan.in.size();
            return plan;
        }
        return fail(sense::kIllegalRequest, sense::kLunNotSupported);
    }
    if (cdbIn.size() < cdbLength(op)) {
        return fail(sense::kIllegalRequest, sense::kInvalidFieldInCdb);
    }
    std::array<std::uint8_t, 16> bytes{};
    std::copy_n(cdbIn.begin(), std::min<std::size_t>(cdbIn.size(), 16), bytes.begin());
    const std::span<const std::uint8_t> cdb(bytes);
    ScsiPlan plan;
    const auto reply = [&](std::vector<std::uint8_t> data, std::size_t allocation) {
        plan.in = cut(std::move(data), allocation);
        plan.length = plan.in.size();
        plan.direction = plan.length != 0 ? DataDirection::In : DataDirection::None;
        return plan;
    };
    switch (op) {
        case kTestUnitReady:
        case kPreventAllowMediumRemoval:
        case kStartStopUnit:
            return plan;
        case kRequestSense:
            if ((cdb[1] & 0x01) != 0) {  // descriptor format: not supported
                return fail(sense::kIllegalRequest, sense::kInvalidFieldInCdb);
            }
            return reply(fixedSense(last), cdb[4]);
        case kInquiry:
            return inquiry(cdb);
        case kReadCapacity10: {
            if ((cdb[8] & 0x01) == 0 && be32(cdb, 2) != 0) {
                return fail(sense::kIllegalRequest, sense::kInvalidFieldInCdb);
            }
            std::vector<std::uint8_t> out(8, 0);
            const std::uint64_t lastLba = blocks() - 1;
            putBe32(out, 0,
                    lastLba > 0xffffffffULL ? 0xffffffffU : static_cast<std::uint32_t>(lastLba));
            putBe32(out, 4, kDiskBlockSize);
            return reply(std::move(out), 8);
        }
        case kServiceActionIn16: {
            if ((cdb[1] & 0x1f) != kReadCapacity16ServiceAction) {
                return fail(sense::kIllegalRequest, sense::kInvalidFieldInCdb);
            }
            std::vector<std::uint8_t> out(32, 0);
            putBe64(out, 0, blocks() - 1);
            putBe32(out, 8, kDiskBlockSize);
            return reply(std::move(out), be32(cdb, 10));
        }
        case kModeSense6:
            return modeSense(cdb, false);
        case kModeSense10:
            return modeSense(cdb, true);
        case kRead10:
            return readWrite(be32(cdb, 2), be16(cdb, 7), false);
        case kWrite10:
            return readWrite(be32(cdb, 2), be16(cdb, 7), true);
        case kRead16:
            return readWrite(be64(cdb, 2), be32(cdb, 10), false);
        case kWrite16:
            return readWrite(be64(cdb, 2), be32(cdb, 10), true);
        case kSynchronizeCache10:
            ++stats_.syncs;
            if (::fdatasync(fd_) != 0) {
                return fail(sense::kMediumError, sense::kWriteError);
            }
            return plan;
        default:
            return fail(sense::kIllegalRequest, sense::kInvalidOpcode);
    }
}

ScsiPlan ScsiDisk::inquiry(std::span<const std::uint8_t> cdb) {
    const bool evpd = (cdb[1] & 0x01) != 0;
    const std::uint8_t page = cdb[2];
    const std::size_t allocation = be16(cdb, 3);
    std::vector<std::uint8_t> out;
    if (!evpd) {
        if (page != 0) {
            return fail(sense::kIllegalRequest, sense::kInvalidFieldInCdb);
        }
        out.assign(36, 0);
        out[0] = 0x00;  // connected direct-access block device
        out[1] = options_.removable ? 0x80 : 0x00;
        out[2] = 0x02;  // version: SCSI-2, as the Linux gadget reports
        out[3] = 0x02;  // response data format
        out[4] = 31;    // additional length
        std::copy(options_.identification.begin(), options_.identification.end(), out.begin() + 8);
    } else if (page == 0x00) {  // supported VPD pages
        out = {0x00, 0x00, 0x00, 0x02, 0x00, 0x80};
    } else if (page == 0x80) {  // unit serial number
        const std::string serial = options_.serial.substr(0, 251);
        out = {0x00, 0x80, 0x00, static_cast<std::uint8_t>(serial.size())};
        out.insert(out.end(), serial.begin(), serial.end());
    } else {
        return fail(sense::kIllegalRequest, sense::kInvalidFieldInCdb);
    }
    ScsiPlan plan;
    plan.in = cut(std::move(out), allocation);
    plan.length = plan.in.size();
    plan.direction = plan.length != 0 ? DataDirection::In : DataDirection::None;
    return plan;
}

ScsiPlan ScsiDisk::modeSense(std::span<const std::uint8_t> cdb, bool ten) {
    const std::uint8_t pageControl = cdb[2] >> 6;
    const std::uint8_t page = cdb[2] & 0x3f;
    const std::uint8_t subpage = cdb[3];
    const std::size_t allocation = ten ? be16(cdb, 7) : cdb[4];
    if (pageControl == 3) {
        return fail(sense::kIllegalRequest, sense::kSavingNotSupported);
    }
    if ((page != kPageCaching && page != kPageAll) ||
        (subpage != 0 && !(page == kPageAll && subpage == 0xff))) {
        return fail(sense::kIllegalRequest, sense::kInvalidFieldInCdb);
    }
    // The caching page (SBC): write cache enabled, nothing changeable.
    std::vector<std::uint8_t> caching(20, 0);
    caching[0] = kPageCaching;
    caching[1] = 0x12;
    if (pageControl != 1) {
        caching[2] = 0x04;  // WCE
    }
    // Header without block descriptors; device-specific byte 0: no write protect.
    std::vector<std::uint8_t> out(ten ? 8 : 4, 0);
    out.insert(out.end(), caching.begin(), caching.end());
    if (ten) {
        const auto length = static_cast<std::uint16_t>(out.size() - 2);
        out[0] = static_cast<std::uint8_t>(length >> 8);
        out[1] = static_cast<std::uint8_t>(length & 0xff);
    } else {
        out[0] = static_cast<std::uint8_t>(out.size() - 1);
    }
    ScsiPlan plan;
    plan.in = cut(std::move(out), allocation);
    plan.length = plan.in.size();
    plan.direction = plan.length != 0 ? DataDirection::In : DataDirection::None;
    return plan;
}

ScsiPlan ScsiDisk::readWrite(std::uint64_t lba, std::uint64_t count, bool write) {
    if (lba > blocks() || count > blocks() - lba) {
        ScsiPlan plan = fail(sense::kIllegalRequest, sense::kLbaOutOfRange);
        sense_.information = static_cast<std::uint32_t>(std::min<std::uint64_t>(lba, 0xffffffff));
        sense_.informationValid = true;
        return plan;
    }
    ScsiPlan plan;
    plan.medium = count != 0;
    plan.offset = lba * kDiskBlockSize;
    plan.length = count * kDiskBlockSize;
    plan.direction = count == 0 ? DataDirection::None
                     : write    ? DataDirection::Out
                                : DataDirection::In;
    return plan;
}

bool ScsiDisk::read(std::uint64_t offset, std::span<std::uint8_t> out) {
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n =
            ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            std::lock_guard lock(mutex_);
            sense_ = {sense::kMediumError, sense::kReadError, 0, false};
            ++stats_.failedCommands;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    std::lock_guard lock(mutex_);
    stats_.bytesRead += out.size();
    return true;
}

bool ScsiDisk::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done,
                                   static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            std::lock_guard lock(mutex_);
            stats_.bytesWritten += done;
            sense_ = {sense::kMediumError, sense::kWriteError, 0, false};
            ++stats_.failedCommands;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    std::lock_guard lock(mutex_);
    stats_.bytesWritten += data.size();
    return true;
}

// ---------------------------------------------------------------- Bulk-Only Transport

BulkOnlyStorage::BulkOnlyStorage(std::shared_ptr<ScsiDisk> disk, std::uint8_t interfaceNumber,
                                 std::uint8_t inEndpoint, std::uint8_t outEndpoint)
    : disk_(std::move(disk)), interface_(interfaceNumber), in_(inEndpoint), out_(outEndpoint) {}

template <typename Pred>
UsbStatus BulkOnlyStorage::waitFor(std::unique_lock<std::mutex>& lock, Deadline deadline,
                                   const std::stop_token& cancel, Pred pred) {
    const auto done = [&] { return gone_ || pred(); };
    if (deadline == Deadline::max()) {
        changed_.wait(lock, cancel, done);
    } else {
        changed_.wait_until(lock, cancel, deadline, done);
    }
    if (gone_) {
        return UsbStatus::Disconnected;
    }
    if (pred()) {
        return UsbStatus::Ok;
    }
    return cancel.stop_requested() ? UsbStatus::Cancelled : UsbStatus::Timeout;
}

TransferResult BulkOnlyStorage::classRequest(const SetupPacket& setup,
                                             std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (gone_) {
        return {UsbStatus::Disconnected, 0};
    }
    if (setup.requestType == 0x21 && setup.request == kRequestMassStorageReset &&
        setup.value == 0 && setup.length == 0) {
        // Ready for the next CBW; halts stay until the host clears them (BOT 3.1).
        ++stats_.resets;
        wedged_ = false;
        phase_ = Phase::Command;
        csw_.clear();
        changed_.notify_all();
        return {UsbStatus::Ok, 0};
    }
    if (setup.requestType == 0xA1 && setup.request == kRequestGetMaxLun && setup.value == 0 &&
        setup.length == 1 && !data.empty()) {
        data[0] = 0;  // one logical unit per function
        return {UsbStatus::Ok, 1};
    }
    return {UsbStatus::Stall, 0};
}

bool BulkOnlyStorage::halted(std::uint8_t endpoint) const {
    std::lock_guard lock(mutex_);
    return endpoint == in_ ? haltIn_ : haltOut_;
}

void BulkOnlyStorage::setHalt(std::uint8_t endpoint) {
    std::lock_guard lock(mutex_);
    (endpoint == in_ ? haltIn_ : haltOut_) = true;
    changed_.notify_all();
}

void BulkOnlyStorage::clearHalt(std::uint8_t endpoint) {
    std::lock_guard lock(mutex_);
    if (wedged_) {
        return;
    }
    (endpoint == in_ ? haltIn_ : haltOut_) = false;
    changed_.notify_all();
}

void BulkOnlyStorage::disconnect() {
    std::lock_guard lock(mutex_);
    gone_ = true;
    changed_.notify_all();
}

void BulkOnlyStorage::unplugAfterWritten(std::uint64_t bytes, std::function<void()> onLimit) {
    std::lock_guard lock(mutex_);
    writeLimit_ = bytes;
    onLimit_ = std::move(onLimit);
}

bool BulkOnlyStorage::unplugged() const {
    std::lock_guard lock(mutex_);
    return unplugged_;
}

BotStats BulkOnlyStorage::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void BulkOnlyStorage::startCommand(std::span<const std::uint8_t> cbw) {
    // Caller holds mutex_. A CBW is exactly 31 bytes with the signature and
    // a CDB of 1 to 16 bytes; anything else is invalid: both endpoints stall
    // until a Reset Recovery (BOT 6.6.1).
    if (cbw.size() != kCbwLength || le32(cbw, 0) != kCbwSignature || (cbw[14] & 0x1f) == 0 ||
        (cbw[14] & 0x1f) > 16) {
        ++stats_.invalidCbws;
        wedged_ = true;
        haltIn_ = haltOut_ = true;
        changed_.notify_all();
        return;
    }
    ++stats_.commands;
    tag_ = le32(cbw, 4);
    hostLength_ = le32(cbw, 8);
    hostDirection_ = hostLength_ == 0        ? DataDirection::None
                     : (cbw[12] & 0x80) != 0 ? DataDirection::In
                                             : DataDirection::Out;
    const std::uint8_t lun = cbw[13] & 0x0f;
    plan_ = disk_->decode(cbw.subspan(15, cbw[14] & 0x1f), lun);
    status_ = plan_.good ? kCswPassed : kCswFailed;
    moved_ = 0;
    haltAfterData_ = false;
    const DataDirection device = plan_.direction;
    const std::uint64_t deviceLength = plan_.length;

    // The thirteen cases (BOT 6.7): host expectation Hn/Hi/Ho against device intent Dn/Di/Do.
    const auto phaseError = [&] {
        ++stats_.phaseErrors;
        status_ = kCswPhaseError;
    };
    if (hostDirection_ == DataDirection::None) {
        if (device != DataDirection::None) {
            phaseError();  // cases 2, 3
        }
        deviceLength_ = 0;
        endData();
        return;
    }
    if (device != DataDirection::None && device != hostDirection_) {
        phaseError();  // cases 8, 10: stall the pipe the host uses
        deviceLength_ = 0;
        haltAfterData_ = true;
        phase_ = hostDirection_ == DataDirection::In ? Phase::DataIn : Phase::DataOut;
        endData();
        return;
    }
    deviceLength_ = std::min<std::uint64_t>(deviceLength, hostLength_);
    if (deviceLength > hostLength_) {
        phaseError();  // cases 7, 13: move what the host allows
    }
    haltAfterData_ = deviceLength_ < hostLength_;  // cases 4, 5, 9, 11
    phase_ = hostDirection_ == DataDirection::In ? Phase::DataIn : Phase::DataOut;
    if (deviceLength_ == 0) {
        endData();
    }
    changed_.notify_all();
}

void BulkOnlyStorage::endData() {
    // Caller holds mutex_.
    if (haltAfterData_) {
        (hostDirection_ == DataDirection::Out ? haltOut_ : haltIn_) = true;
    }
    csw_.assign(kCswLength, 0);
    putLe32(csw_, 0, kCswSignature);
    putLe32(csw_, 4, tag_);
    const std::uint64_t residue = status_ == kCswPhaseError ? 0 : hostLength_ - moved_;
    putLe32(csw_, 8, static_cast<std::uint32_t>(residue));
    csw_[12] = status_;
    phase_ = Phase::Status;
    changed_.notify_all();
}

TransferResult BulkOnlyStorage::bulkOut(std::span<const std::uint8_t> data, Deadline deadline,
                                        const std::stop_token& cancel) {
    std::unique_lock lock(mutex_);
    const UsbStatus status = waitFor(lock, deadline, cancel, [&] {
        return haltOut_ || phase_ == Phase::Command || phase_ == Phase::DataOut;
    });
    if (status != UsbStatus::Ok) {
        return {status, 0};
    }
    if (haltOut_) {
        return {UsbStatus::Stall, 0};
    }
    if (phase_ == Phase::Command) {
        startCommand(data);
        return {UsbStatus::Ok, data.size()};
    }
    // Data OUT: take what the command wants.
    std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), deviceLength_ - moved_));
    bool unplugNow = false;
    if (plan_.medium && writeLimit_) {
        const std::uint64_t room = *writeLimit_ > written_ ? *writeLimit_ - written_ : 0;
        if (n >= room) {
            n = static_cast<std::size_t>(room);
            unplugNow = true;
        }
    }
    if (plan_.medium && n != 0) {
        if (!disk_->write(plan_.offset + moved_, data.first(n))) {
            status_ = kCswFailed;
            haltAfterData_ = true;
            endData();
            return {UsbStatus::Stall, 0};
        }
        written_ += n;
    }
    moved_ += n;
    if (unplugNow) {
        unplugged_ = true;
        gone_ = true;
        changed_.notify_all();
        auto onLimit = onLimit_;
        lock.unlock();
        if (onLimit) {
            onLimit();
        }
        return {UsbStatus::Disconnected, n};
    }
    if (moved_ == deviceLength_) {
        endData();
    }
    if (n < data.size()) {
        return {UsbStatus::Stall, n};  // more than the command wanted (case 11)
    }
    return {UsbStatus::Ok, n};
}

TransferResult BulkOnlyStorage::bulkIn(std::span<std::uint8_t> buffer, Deadline deadline,
                                       const std::stop_token& cancel) {
    std::unique_lock lock(mutex_);
    const UsbStatus status = waitFor(lock, deadline, cancel, [&] {
        return haltIn_ || phase_ == Phase::DataIn || phase_ == Phase::Status;
    });
    if (status != UsbStatus::Ok) {
        return {status, 0};
    }
    if (haltIn_) {
        return {UsbStatus::Stall, 0};
    }
    if (phase_ == Phase::Status) {
        const std::size_t n = std::min(buffer.size(), csw_.size());
        std::copy_n(csw_.begin(), n, buffer.begin());
        csw_.clear();
        phase_ = Phase::Command;
        changed_.notify_all();
        return {UsbStatus::Ok, n};
    }
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), deviceLength_ - moved_));
    if (plan_.medium) {
        if (!disk_->read(plan_.offset + moved_, buffer.first(n))) {
            status_ = kCswFailed;
            haltAfterData_ = true;
            endData();
            return {UsbStatus::Stall, 0};
        }
    } else {
        std::copy_n(plan_.in.begin() + static_cast<std::ptrdiff_t>(moved_), n, buffer.begin());
    }
    moved_ += n;
    if (moved_ == deviceLength_) {
        endData();
    }
    return {UsbStatus::Ok, n};
}

}  // namespace virtualpi
