#include "rpiboot/core/rom_stage.hpp"

#include <gtest/gtest.h>

#include "rpiboot/core/error.hpp"
#include "scripted_transport.hpp"

namespace rpiboot {
namespace {

using test::ScriptedTransport;

TEST(RomStage, SendsBootMessageThenLoaderThenReadsStatus) {
    ScriptedTransport transport;
    transport.answer({0, 0, 0, 0});
    Link link(transport, {});
    std::vector<std::uint8_t> loader(73120, 0x5a);
    BootSignature signature{};
    signature[0] = 0xaa;
    signature[19] = 0xbb;
    uploadBootcode(link, loader, signature);
    // 24-byte message: length 73120 (0x11DA0) LE, then the signature.
    EXPECT_EQ(transport.controlLengths(), (std::vector<std::uint32_t>{24, 73120}));
    const auto bytes = transport.bulkBytes();
    ASSERT_EQ(bytes.size(), 24U + 73120U);
    EXPECT_EQ(bytes[0], 0xA0);
    EXPECT_EQ(bytes[1], 0x1D);
    EXPECT_EQ(bytes[2], 0x01);
    EXPECT_EQ(bytes[3], 0x00);
    EXPECT_EQ(bytes[4], 0xaa);
    EXPECT_EQ(bytes[23], 0xbb);
    EXPECT_EQ(bytes[24], 0x5a);
    EXPECT_EQ(transport.bulkCalls(), 1U + 5U);  // message + 4 x 16384 + 7584
}

TEST(RomStage, NonZeroReturnCodeIsReportedWithTheCode) {
    ScriptedTransport transport;
    transport.answer({0x0d, 0xf0, 0, 0});
    Link link(transport, {});
    std::vector<std::uint8_t> loader(100, 1);
    try {
        uploadBootcode(link, loader, {});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::Protocol);
        EXPECT_NE(std::string(e.what()).find("0xf00d"), std::string::npos);
    }
}

TEST(RomStage, ShortStatusIsAnError) {
    ScriptedTransport transport;
    transport.answer({0, 0});
    Link link(transport, {});
    std::vector<std::uint8_t> loader(100, 1);
    EXPECT_THROW(uploadBootcode(link, loader, {}), Error);
}

TEST(RomStage, EmptyLoaderIsRefusedBeforeAnyTransfer) {
    ScriptedTransport transport;
    Link link(transport, {});
    EXPECT_THROW(uploadBootcode(link, {}, {}), Error);
    EXPECT_TRUE(transport.actions.empty());
}

TEST(RomStage, DeviceGoneDuringUploadPropagates) {
    ScriptedTransport transport;
    transport.failBulkAt(2, Errc::DeviceGone);
    Link link(transport, {});
    std::vector<std::uint8_t> loader(50000, 1);
    try {
        uploadBootcode(link, loader, {});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::DeviceGone);
    }
}

}  // namespace
}  // namespace rpiboot
