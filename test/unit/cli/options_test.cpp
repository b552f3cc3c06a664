#include "options.hpp"

#include <gtest/gtest.h>

namespace rpiboot::cli {
namespace {

ParseResult parse(std::vector<std::string> args) {
    return parseOptions(args);
}

TEST(Options, AcceptsUpstreamFlags) {
    auto r =
        parse({"-d", "msd", "-o", "-l", "-m", "1000", "-vv", "-s", "-i", "af04b2da", "-j", "meta"});
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.options.directory, "msd");
    EXPECT_TRUE(r.options.portOverlays);
    EXPECT_TRUE(r.options.loop);
    EXPECT_EQ(r.options.pollDelayUsec, 1000);
    EXPECT_EQ(r.options.verbosity, 2);
    EXPECT_TRUE(r.options.signedBoot);
    EXPECT_EQ(r.options.serial, "af04b2da");
    EXPECT_TRUE(r.options.metadataToFile);
    EXPECT_EQ(r.options.metadataDir, "meta");
}

TEST(Options, BulkTransfersInFlightIsAHiddenNumberFromOneTo64) {
    EXPECT_FALSE(parse({}).options.bulkTransfersInFlight.has_value());
    EXPECT_EQ(parse({"--bulk-transfers-in-flight", "1"}).options.bulkTransfersInFlight, 1u);
    EXPECT_EQ(parse({"--bulk-transfers-in-flight", "64"}).options.bulkTransfersInFlight, 64u);
    for (const char* bad : {"0", "65", "x"}) {
        EXPECT_EQ(parse({"--bulk-transfers-in-flight", bad}).error,
                  "--bulk-transfers-in-flight needs a number from 1 to 64")
            << bad;
    }
    EXPECT_NE(parse({"--bulk-transfers-in-flight"}).error, "");
}

TEST(Options, LaterVerboseFlagWins) {
    EXPECT_EQ(parse({"-vv", "-v"}).options.verbosity, 1);
}

TEST(Options, MetadataDirIsOptional) {
    auto r = parse({"-j", "-l"});
    ASSERT_EQ(r.error, "");
    EXPECT_FALSE(r.options.metadataToFile);
    EXPECT_TRUE(r.options.loop);
    EXPECT_FALSE(parse({"-j"}).options.metadataToFile);
}

TEST(Options, PortNumbersZeroToNinetyEight) {
    EXPECT_EQ(parse({"-0"}).options.portNumber, 0);
    EXPECT_EQ(parse({"-7"}).options.portNumber, 7);
    EXPECT_EQ(parse({"-98"}).options.portNumber, 98);
    EXPECT_NE(parse({"-99"}).error, "");
    EXPECT_NE(parse({"-1x"}).error, "");
    EXPECT_NE(parse({"-05"}).error, "");
}

TEST(Options, UsageErrorsMatchUpstream) {
    EXPECT_NE(parse({"-o"}).error, "");                 // -o needs -d
    EXPECT_NE(parse({"-m", "0"}).error, "");            // zero delay
    EXPECT_NE(parse({"-m", "abc"}).error, "");          // not a number
    EXPECT_NE(parse({"-3", "-p", "1-1.3"}).error, "");  // both port filters
    EXPECT_NE(parse({"-d"}).error, "");                 // missing argument
    EXPECT_NE(parse({"--bogus"}).error, "");
    EXPECT_TRUE(parse({"-h"}).options.showHelp);
    EXPECT_TRUE(parse({"--help"}).options.showHelp);
    EXPECT_TRUE(parse({"-V"}).options.showVersion);
    EXPECT_TRUE(parse({"--version"}).options.showVersion);
}

}  // namespace
}  // namespace rpiboot::cli
