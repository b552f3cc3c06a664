#include "wire.hpp"

#include <algorithm>

namespace usbip {
namespace {

// Offsets inside the 48-byte header: five words of usbip_header_basic, then
// the 28-byte union of the command-specific fields.
constexpr std::size_t kCommandAt = 0;
constexpr std::size_t kSeqnumAt = 4;
constexpr std::size_t kDevidAt = 8;
constexpr std::size_t kDirectionAt = 12;
constexpr std::size_t kEndpointAt = 16;
constexpr std::size_t kFieldsAt = 20;
constexpr std::size_t kSetupAt = 40;

std::uint32_t be32(std::span<const std::uint8_t, kHeaderSize> b, std::size_t at) {
    return (static_cast<std::uint32_t>(b[at]) << 24) |
           (static_cast<std::uint32_t>(b[at + 1]) << 16) |
           (static_cast<std::uint32_t>(b[at + 2]) << 8) | static_cast<std::uint32_t>(b[at + 3]);
}

void putBe32(HeaderBytes& b, std::size_t at, std::uint32_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 24);
    b[at + 1] = static_cast<std::uint8_t>(v >> 16);
    b[at + 2] = static_cast<std::uint8_t>(v >> 8);
    b[at + 3] = static_cast<std::uint8_t>(v);
}

HeaderBytes basic(std::uint32_t command, std::uint32_t seqnum, std::uint32_t devid,
                  std::uint32_t direction, std::uint32_t endpoint) {
    HeaderBytes b{};
    putBe32(b, kCommandAt, command);
    putBe32(b, kSeqnumAt, seqnum);
    putBe32(b, kDevidAt, devid);
    putBe32(b, kDirectionAt, direction);
    putBe32(b, kEndpointAt, endpoint);
    return b;
}

}  // namespace

std::uint8_t CmdSubmit::endpointAddress() const noexcept {
    const auto number = static_cast<std::uint8_t>(endpoint & 0x0f);
    if (number == 0) {
        return 0;
    }
    return static_cast<std::uint8_t>(number | (isIn() ? 0x80 : 0x00));
}

std::optional<Command> decodeCommand(std::span<const std::uint8_t, kHeaderSize> b) {
    Command c;
    c.command = be32(b, kCommandAt);
    if (c.command == kCmdSubmit) {
        CmdSubmit s;
        s.seqnum = be32(b, kSeqnumAt);
        s.devid = be32(b, kDevidAt);
        s.direction = be32(b, kDirectionAt);
        s.endpoint = be32(b, kEndpointAt);
        s.transferFlags = be32(b, kFieldsAt);
        s.transferBufferLength = be32(b, kFieldsAt + 4);
        s.startFrame = be32(b, kFieldsAt + 8);
        s.numberOfPackets = be32(b, kFieldsAt + 12);
        s.interval = be32(b, kFieldsAt + 16);
        std::copy_n(b.begin() + kSetupAt, 8, s.setup.begin());
        c.submit = s;
        return c;
    }
    if (c.command == kCmdUnlink) {
        CmdUnlink u;
        u.seqnum = be32(b, kSeqnumAt);
        u.devid = be32(b, kDevidAt);
        u.direction = be32(b, kDirectionAt);
        u.endpoint = be32(b, kEndpointAt);
        u.unlinkSeqnum = be32(b, kFieldsAt);
        c.unlink = u;
        return c;
    }
    return std::nullopt;
}

HeaderBytes encodeRetSubmit(const RetSubmit& ret) {
    // devid, direction and endpoint are 0 in answers; start_frame,
    // number_of_packets and error_count are 0 for non-ISO transfers.
    HeaderBytes b = basic(kRetSubmit, ret.seqnum, 0, 0, 0);
    putBe32(b, kFieldsAt, static_cast<std::uint32_t>(ret.status));
    putBe32(b, kFieldsAt + 4, ret.actualLength);
    return b;
}

HeaderBytes encodeRetUnlink(const RetUnlink& ret) {
    HeaderBytes b = basic(kRetUnlink, ret.seqnum, 0, 0, 0);
    putBe32(b, kFieldsAt, static_cast<std::uint32_t>(ret.status));
    return b;
}

HeaderBytes encodeCmdSubmit(const CmdSubmit& s) {
    HeaderBytes b = basic(kCmdSubmit, s.seqnum, s.devid, s.direction, s.endpoint);
    putBe32(b, kFieldsAt, s.transferFlags);
    putBe32(b, kFieldsAt + 4, s.transferBufferLength);
    putBe32(b, kFieldsAt + 8, s.startFrame);
    putBe32(b, kFieldsAt + 12, s.numberOfPackets);
    putBe32(b, kFieldsAt + 16, s.interval);
    std::copy(s.setup.begin(), s.setup.end(), b.begin() + kSetupAt);
    return b;
}

HeaderBytes encodeCmdUnlink(const CmdUnlink& u) {
    HeaderBytes b = basic(kCmdUnlink, u.seqnum, u.devid, u.direction, u.endpoint);
    putBe32(b, kFieldsAt, u.unlinkSeqnum);
    return b;
}

std::optional<Reply> decodeReply(std::span<const std::uint8_t, kHeaderSize> b) {
    Reply r;
    r.command = be32(b, kCommandAt);
    if (r.command == kRetSubmit) {
        r.submit = RetSubmit{be32(b, kSeqnumAt), static_cast<std::int32_t>(be32(b, kFieldsAt)),
                             be32(b, kFieldsAt + 4)};
        return r;
    }
    if (r.command == kRetUnlink) {
        r.unlink = RetUnlink{be32(b, kSeqnumAt), static_cast<std::int32_t>(be32(b, kFieldsAt))};
        return r;
    }
    return std::nullopt;
}

}  // namespace usbip
