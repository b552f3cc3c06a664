// The USB/IP wire format between vhci-hcd (the kernel's virtual host
// controller) and a device server: 48-byte big-endian headers for
// USBIP_CMD_SUBMIT / USBIP_RET_SUBMIT / USBIP_CMD_UNLINK / USBIP_RET_UNLINK,
// followed by the transfer data (OUT data after a submit, IN data after its
// answer). Pure encoding and decoding; no I/O, no policy, never ISO data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace usbip {

inline constexpr std::uint32_t kCmdSubmit = 0x0001;
inline constexpr std::uint32_t kCmdUnlink = 0x0002;
inline constexpr std::uint32_t kRetSubmit = 0x0003;
inline constexpr std::uint32_t kRetUnlink = 0x0004;

inline constexpr std::size_t kHeaderSize = 48;
inline constexpr std::uint32_t kDirectionOut = 0;
inline constexpr std::uint32_t kDirectionIn = 1;

// vhci-hcd's speed numbers (enum usb_device_speed) for the attach file.
inline constexpr unsigned kSpeedHigh = 3;

// Linux errno values as vhci-hcd hands them to the URB's owner.
inline constexpr std::int32_t kStatusOk = 0;
inline constexpr std::int32_t kStatusStall = -32;       // -EPIPE
inline constexpr std::int32_t kStatusNoDevice = -108;   // -ESHUTDOWN
inline constexpr std::int32_t kStatusTimedOut = -110;   // -ETIMEDOUT
inline constexpr std::int32_t kStatusUnlinked = -104;   // -ECONNRESET
inline constexpr std::int32_t kStatusBadRequest = -22;  // -EINVAL

using HeaderBytes = std::array<std::uint8_t, kHeaderSize>;

struct CmdSubmit {
    std::uint32_t seqnum = 0;
    std::uint32_t devid = 0;
    std::uint32_t direction = kDirectionOut;
    std::uint32_t endpoint = 0;  // number only, 0..15
    std::uint32_t transferFlags = 0;
    std::uint32_t transferBufferLength = 0;
    std::uint32_t startFrame = 0;
    std::uint32_t numberOfPackets = 0;
    std::uint32_t interval = 0;
    std::array<std::uint8_t, 8> setup{};

    bool isIn() const noexcept { return direction == kDirectionIn; }
    // Endpoint address with the direction bit (0x82); 0 for endpoint 0.
    std::uint8_t endpointAddress() const noexcept;
    // Bytes of OUT data that follow the header on the wire.
    std::size_t outDataLength() const noexcept { return isIn() ? 0 : transferBufferLength; }
};

struct CmdUnlink {
    std::uint32_t seqnum = 0;
    std::uint32_t devid = 0;
    std::uint32_t direction = 0;
    std::uint32_t endpoint = 0;
    std::uint32_t unlinkSeqnum = 0;
};

struct RetSubmit {
    std::uint32_t seqnum = 0;
    std::int32_t status = 0;
    std::uint32_t actualLength = 0;
};

struct RetUnlink {
    std::uint32_t seqnum = 0;
    std::int32_t status = 0;
};

// What came from the kernel: its command word, then the decoded form.
struct Command {
    std::uint32_t command = 0;
    std::optional<CmdSubmit> submit;
    std::optional<CmdUnlink> unlink;
};

// nullopt for a command word other than CMD_SUBMIT/CMD_UNLINK.
std::optional<Command> decodeCommand(std::span<const std::uint8_t, kHeaderSize> header);
HeaderBytes encodeRetSubmit(const RetSubmit& ret);
HeaderBytes encodeRetUnlink(const RetUnlink& ret);

// The kernel's side, for tests that play vhci-hcd.
HeaderBytes encodeCmdSubmit(const CmdSubmit& cmd);
HeaderBytes encodeCmdUnlink(const CmdUnlink& cmd);
struct Reply {
    std::uint32_t command = 0;
    std::optional<RetSubmit> submit;
    std::optional<RetUnlink> unlink;
};
std::optional<Reply> decodeReply(std::span<const std::uint8_t, kHeaderSize> header);

}  // namespace usbip
