#include "wire.hpp"

#include <gtest/gtest.h>

namespace usbip {
namespace {

TEST(Wire, RetSubmitIsBigEndianWithStatusAndLengthAfterTheBasicHeader) {
    const HeaderBytes h = encodeRetSubmit({0x01020304, kStatusStall, 0x00000102});
    const HeaderBytes expected = {
        0,    0,    0,    3,    1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // basic
        0xff, 0xff, 0xff, 0xe0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0,              // status, length,
        0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0};                         // ISO fields, pad
    EXPECT_EQ(h, expected);
}

TEST(Wire, RetUnlinkCarriesItsOwnSeqnumAndTheStatus) {
    const HeaderBytes h = encodeRetUnlink({7, kStatusUnlinked});
    EXPECT_EQ(h[3], 4);
    EXPECT_EQ(h[7], 7);
    EXPECT_EQ((std::vector<std::uint8_t>(h.begin() + 20, h.begin() + 24)),
              (std::vector<std::uint8_t>{0xff, 0xff, 0xff, 0x98}));  // -104
}

TEST(Wire, CmdSubmitDecodesEveryField) {
    HeaderBytes h{};
    const std::uint8_t bytes[] = {0, 0, 0, 1, 0, 0, 0, 9, 0,    1, 0,    2, 0, 0, 0, 1,
                                  0, 0, 0, 2, 0, 0, 2, 0, 0,    0, 0x40, 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 0, 4, 0xc0, 0, 4,    0, 0, 0, 4, 0};
    std::copy(std::begin(bytes), std::end(bytes), h.begin());
    const auto c = decodeCommand(h);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->submit);
    const CmdSubmit& s = *c->submit;
    EXPECT_EQ(s.seqnum, 9u);
    EXPECT_EQ(s.devid, 0x00010002u);
    EXPECT_TRUE(s.isIn());
    EXPECT_EQ(s.endpoint, 2u);
    EXPECT_EQ(s.endpointAddress(), 0x82);
    EXPECT_EQ(s.transferFlags, 0x200u);
    EXPECT_EQ(s.transferBufferLength, 0x4000u);
    EXPECT_EQ(s.interval, 4u);
    EXPECT_EQ(s.setup, (std::array<std::uint8_t, 8>{0xc0, 0, 4, 0, 0, 0, 4, 0}));
    EXPECT_EQ(s.outDataLength(), 0u) << "an IN submit carries no data";
}

TEST(Wire, CmdSubmitRoundTripsThroughTheKernelSideEncoder) {
    CmdSubmit s;
    s.seqnum = 42;
    s.direction = kDirectionOut;
    s.endpoint = 3;
    s.transferBufferLength = 16384;
    const auto c = decodeCommand(encodeCmdSubmit(s));
    ASSERT_TRUE(c && c->submit);
    EXPECT_EQ(c->submit->endpointAddress(), 0x03);
    EXPECT_EQ(c->submit->outDataLength(), 16384u);
}

TEST(Wire, CmdUnlinkNamesTheUrbToUnlink) {
    const auto c = decodeCommand(encodeCmdUnlink({5, 0, 0, 0, 3}));
    ASSERT_TRUE(c && c->unlink);
    EXPECT_EQ(c->unlink->seqnum, 5u);
    EXPECT_EQ(c->unlink->unlinkSeqnum, 3u);
}

TEST(Wire, UnknownCommandWordIsRejected) {
    HeaderBytes h{};
    h[3] = 0x03;  // a RET_SUBMIT is not something the kernel sends
    EXPECT_FALSE(decodeCommand(h));
    h[3] = 0x99;
    EXPECT_FALSE(decodeCommand(h));
}

TEST(Wire, EndpointZeroHasAddressZeroInBothDirections) {
    CmdSubmit s;
    s.direction = kDirectionIn;
    EXPECT_EQ(s.endpointAddress(), 0);
}

}  // namespace
}  // namespace usbip
