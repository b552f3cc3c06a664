#include "rpiboot/core/file_server.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "rpiboot/core/error.hpp"
#include "scripted_transport.hpp"

namespace rpiboot {
namespace {

using test::ScriptedTransport;

class MapSource final : public FileSource {
  public:
    void add(const std::string& name, std::vector<std::uint8_t> bytes) {
        auto storage = std::make_shared<std::vector<std::uint8_t>>(std::move(bytes));
        files_[name] = ServedFile{storage, {storage->data(), storage->size()}, "mem:" + name};
    }
    Lookup lookup(std::string_view name) override {
        ++lookups;
        auto it = files_.find(std::string(name));
        if (it == files_.end()) {
            return {};
        }
        return Lookup{it->second, {}};
    }
    int lookups = 0;

  private:
    std::map<std::string, ServedFile> files_;
};

std::vector<std::uint8_t> pattern(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    return v;
}

struct Harness {
    ScriptedTransport transport;
    MapSource source;
    Link link{transport, TransferTimeouts{}};
    FileServerResult run(FileServerOptions options = {}) {
        FileServer server(link, source, nullptr, options);
        return server.run();
    }
};

TEST(FileServer, AnswersGetFileSizeWithTheSizeAndNoData) {
    Harness h;
    h.source.add("config.txt", pattern(238));
    h.transport.request(0, "config.txt");
    h.transport.request(0, "");
    auto result = h.run();
    EXPECT_EQ(h.transport.controlLengths(), (std::vector<std::uint32_t>{238, 0}));
    EXPECT_TRUE(h.transport.bulkBytes().empty());
    EXPECT_EQ(result.end, SessionEnd::EmptyName);
}

// The board waits for each reply; an observer may log or wake other threads,
// so it hears of a request only after its reply went out.
class ReplyCountingObserver final : public BootObserver {
  public:
    explicit ReplyCountingObserver(const ScriptedTransport& transport) : transport_(transport) {}
    void onFileLookup(std::string_view name, bool, std::uint64_t, std::string_view) override {
        seen.emplace_back(std::string(name), transport_.controlLengths().size());
    }
    void onTransferStarted(std::string_view name, std::uint64_t) override {
        seen.emplace_back(std::string(name), transport_.controlLengths().size());
    }
    std::vector<std::pair<std::string, std::size_t>> seen;

  private:
    const ScriptedTransport& transport_;
};

TEST(FileServer, EveryReplyGoesOutBeforeTheObserverHearsOfTheRequest) {
    Harness h;
    h.source.add("config.txt", pattern(238));
    h.transport.request(0, "config.txt");   // reply 1
    h.transport.request(0, "missing.bin");  // reply 2
    h.transport.request(1, "config.txt");   // reply 3
    h.transport.request(0, "");
    ReplyCountingObserver observer(h.transport);
    FileServer server(h.link, h.source, &observer, {});
    server.run();
    const std::vector<std::pair<std::string, std::size_t>> expected{
        {"config.txt", 1}, {"missing.bin", 2}, {"config.txt", 3}};
    EXPECT_EQ(observer.seen, expected);
}

TEST(FileServer, ReadFileSendsTheBytesInSixteenKibChunks) {
    Harness h;
    const auto bytes = pattern(536536);
    h.source.add("start4.elf", bytes);
    h.transport.request(0, "start4.elf");
    h.transport.request(1, "start4.elf");
    h.transport.request(2, "done");
    auto result = h.run();
    EXPECT_EQ(h.transport.controlLengths(), (std::vector<std::uint32_t>{536536, 536536}));
    EXPECT_EQ(h.transport.bulkBytes(), bytes);
    EXPECT_EQ(h.transport.bulkCalls(), 33U);  // 32 x 16384 + 12248
    EXPECT_EQ(result.end, SessionEnd::DoneCommand);
    EXPECT_EQ(result.filesServed, 1U);
    EXPECT_EQ(result.bytesSent, 536536U);
}

TEST(FileServer, ReadFileSendsWhatItsGetFileSizeAnnouncedWithoutASecondLookup) {
    Harness h;
    h.source.add("boot.img", pattern(100));
    h.transport.request(0, "boot.img");
    h.transport.request(1, "boot.img");
    h.transport.request(0, "");
    h.run();
    EXPECT_EQ(h.source.lookups, 1);
    EXPECT_EQ(h.transport.bulkBytes().size(), 100U);
}

TEST(FileServer, ReadFileOfAnotherNameIsLookedUpByItsOwnName) {
    Harness h;
    h.source.add("a.bin", pattern(10));
    h.source.add("b.bin", pattern(20));
    h.transport.request(0, "a.bin");
    h.transport.request(1, "b.bin");
    h.transport.request(0, "");
    h.run();
    EXPECT_EQ(h.transport.controlLengths(), (std::vector<std::uint32_t>{10, 20, 0}));
    EXPECT_EQ(h.transport.bulkBytes(), pattern(20));
}

TEST(FileServer, MissingFilesAreAnsweredWithLengthZero) {
    Harness h;
    h.transport.request(0, "fixup4.dat");
    h.transport.request(1, "fixup4.dat");
    h.transport.request(0, "");
    auto result = h.run();
    EXPECT_EQ(h.transport.controlLengths(), (std::vector<std::uint32_t>{0, 0, 0}));
    EXPECT_EQ(result.filesServed, 0U);
}

TEST(FileServer, CollectsMetadataAndDecodesFactoryUuid) {
    Harness h;
    h.transport.request(1, "*MAC_ADDR*2c:cf:67:70:76:f3");
    h.transport.request(1, "*FACTORY_UUID*19a519a6_19ab520e_1ac0212b");
    h.transport.request(0, "*EEPROM_UPDATE*success");
    h.transport.request(1, "*FACTORY_UUID*ffff_ffff");
    h.transport.request(1, "*NOVALUE");
    h.transport.request(0, "");
    auto result = h.run();
    EXPECT_EQ(result.metadata.at("MAC_ADDR"), "2c:cf:67:70:76:f3");
    EXPECT_EQ(result.metadata.at("FACTORY_UUID"), "001000911006186073");
    EXPECT_EQ(result.metadata.at("EEPROM_UPDATE"), "success");
    EXPECT_EQ(result.metadataErrors.size(), 2U);
    // Every metadata message is acked with a zero-length control OUT.
    EXPECT_EQ(h.transport.controlLengths(), (std::vector<std::uint32_t>{0, 0, 0, 0, 0, 0}));
}

TEST(FileServer, UnknownCommandIsAProtocolError) {
    Harness h;
    h.transport.request(7, "x");
    try {
        h.run();
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::Protocol);
        EXPECT_NE(std::string(e.what()).find("unknown command 7"), std::string::npos);
    }
}

TEST(FileServer, UnknownCommandIsNamedAsTheBoardSentIt) {
    Harness h;
    h.transport.request(-1, "x");
    try {
        h.run();
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::Protocol);
        EXPECT_NE(std::string(e.what()).find("unknown command 4294967295"), std::string::npos)
            << e.what();
    }
}

TEST(FileServer, NameWithoutNulIsRefusedNotServed) {
    Harness h;
    h.source.add(std::string(256, 'a'), pattern(5));
    std::vector<std::uint8_t> message(260, 'a');
    message[0] = 0;
    message[1] = message[2] = message[3] = 0;
    h.transport.answer(message);
    h.transport.request(0, "");
    auto result = h.run();
    EXPECT_EQ(h.source.lookups, 0);
    EXPECT_EQ(h.transport.controlLengths(), (std::vector<std::uint32_t>{0, 0}));
    EXPECT_EQ(result.end, SessionEnd::EmptyName);
}

TEST(FileServer, BoardLeavingBetweenRequestsEndsTheSession) {
    Harness h;
    h.source.add("bootmain", pattern(64));
    h.transport.request(0, "bootmain");
    h.transport.request(1, "bootmain");
    h.transport.answerError(Errc::DeviceGone);
    auto result = h.run();
    EXPECT_EQ(result.end, SessionEnd::DeviceGone);
    EXPECT_EQ(result.filesServed, 1U);
}

TEST(FileServer, BoardLeavingMidFileIsAnError) {
    Harness h;
    h.source.add("boot.img", pattern(100000));
    h.transport.request(0, "boot.img");
    h.transport.request(1, "boot.img");
    h.transport.failBulkAt(3, Errc::DeviceGone);
    try {
        h.run();
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::DeviceGone);
    }
    EXPECT_EQ(h.transport.bulkBytes().size(), 3U * 16384U);
}

TEST(FileServer, ShortRequestIsAProtocolError) {
    Harness h;
    h.transport.answer(std::vector<std::uint8_t>(100, 0x41));
    EXPECT_THROW(h.run(), Error);
}

TEST(FileServer, QuietBoardIsToleratedForALimitedNumberOfTimeouts) {
    Harness h;
    h.transport.answerError(Errc::Timeout);
    h.transport.answerError(Errc::Timeout);
    h.transport.request(0, "");
    EXPECT_EQ(h.run().end, SessionEnd::EmptyName);

    Harness hung;
    for (int i = 0; i < 3; ++i) {
        hung.transport.answerError(Errc::Timeout);
    }
    try {
        hung.run();
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::Timeout);
    }
}

TEST(FileServer, EndlessRequestsAreCutOff) {
    Harness h;
    for (int i = 0; i < 6; ++i) {
        h.transport.request(0, "config.txt");
    }
    FileServerOptions options;
    options.maxRequests = 5;
    EXPECT_THROW(h.run(options), Error);
}

TEST(FileServer, ParsesRequestsWithoutReadingPastTheField) {
    std::array<std::uint8_t, 260> message{};
    message[0] = 1;
    std::memcpy(message.data() + 4, "memsys00.bin", 12);
    auto request = parseFileRequest(message);
    EXPECT_EQ(request.command, 1);
    EXPECT_EQ(request.name, "memsys00.bin");
    EXPECT_TRUE(request.terminated);
    message.fill(0xff);
    auto garbage = parseFileRequest(message);
    EXPECT_EQ(garbage.command, -1);
    EXPECT_FALSE(garbage.terminated);
    EXPECT_EQ(garbage.name.size(), 256U);
}

}  // namespace
}  // namespace rpiboot
