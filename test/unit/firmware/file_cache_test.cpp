#include "rpiboot/firmware/file_cache.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "rpiboot/core/error.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot {
namespace {

std::string text(const std::shared_ptr<const Bytes>& bytes) {
    return std::string(bytes->begin(), bytes->end());
}

Errc errorOf(const std::function<void()>& action) {
    try {
        action();
    } catch (const Error& error) {
        return error.code();
    }
    ADD_FAILURE() << "no error thrown";
    return Errc::InvalidArgument;
}

TEST(FileCache, ReadsAFileOnceAndSharesOneBuffer) {
    test::ScratchDir tree;
    const auto path = tree.write("start.elf", "firmware bytes");
    FileCache cache;
    const auto first = cache.readPath(path, 1024);
    const auto second = cache.readPath(path, 1024);
    EXPECT_EQ(text(first), "firmware bytes");
    EXPECT_EQ(first.get(), second.get());
    EXPECT_EQ(cache.stats().misses, 1u);
    EXPECT_EQ(cache.stats().hits, 1u);
    EXPECT_EQ(cache.stats().entries, 1u);
}

TEST(FileCache, ReadsTheFileBehindAnOpenDescriptor) {
    test::ScratchDir tree;
    const auto path = tree.write("config.txt", "[all]\n");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    FileCache cache;
    EXPECT_EQ(text(cache.read(fd, "config.txt", 1024)), "[all]\n");
    ::close(fd);
}

TEST(FileCache, ReplacedFileGivesNewBytesWhileOldBufferStaysIntact) {
    test::ScratchDir tree;
    const auto path = tree.write("bootmain", "version one");
    FileCache cache;
    const auto old = cache.readPath(path, 1024);
    tree.write("bootmain.new", "version two, longer");
    std::filesystem::rename(tree / "bootmain.new", path);
    const auto fresh = cache.readPath(path, 1024);
    EXPECT_EQ(text(old), "version one");
    EXPECT_EQ(text(fresh), "version two, longer");
}

TEST(FileCache, FileRewrittenInPlaceGivesNewBytes) {
    test::ScratchDir tree;
    const auto path = tree.write("config.txt", "aaaa");
    FileCache cache;
    const auto old = cache.readPath(path, 1024);
    tree.write("config.txt", "bbbbbb");
    EXPECT_EQ(text(cache.readPath(path, 1024)), "bbbbbb");
    EXPECT_EQ(text(old), "aaaa");
}

TEST(FileCache, EmptyFileIsReadAsZeroBytes) {
    test::ScratchDir tree;
    const auto path = tree.write("empty.txt", "");
    FileCache cache;
    EXPECT_TRUE(cache.readPath(path, 1024)->empty());
}

TEST(FileCache, RefusesADirectory) {
    test::ScratchDir tree;
    tree.mkdir("overlays");
    FileCache cache;
    EXPECT_EQ(errorOf([&] { cache.readPath(tree / "overlays", 1024); }), Errc::Refused);
}

TEST(FileCache, RefusesAFifoWithoutBlocking) {
    test::ScratchDir tree;
    ASSERT_EQ(::mkfifo((tree / "pipe").c_str(), 0600), 0);
    FileCache cache;
    EXPECT_EQ(errorOf([&] { cache.readPath(tree / "pipe", 1024); }), Errc::Refused);
}

TEST(FileCache, RefusesAFileOverTheLimit) {
    test::ScratchDir tree;
    const auto path = tree.write("big.bin", std::string(101, 'x'));
    FileCache cache;
    EXPECT_EQ(cache.readPath(path, 101)->size(), 101u);
    try {
        cache.readPath(path, 100);
        FAIL() << "accepted a file over the limit";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), Errc::TooLarge);
        EXPECT_NE(std::string(error.what()).find("101 bytes, over the limit of 100"),
                  std::string::npos)
            << error.what();
    }
}

TEST(FileCache, MissingFileIsNotFound) {
    test::ScratchDir tree;
    FileCache cache;
    EXPECT_EQ(errorOf([&] { cache.readPath(tree / "nothing", 1024); }), Errc::NotFound);
}

TEST(FileCache, EvictsUnusedEntriesBeyondTheBudgetButNeverHeldOnes) {
    test::ScratchDir tree;
    const auto a = tree.write("a", std::string(8, 'a'));
    const auto b = tree.write("b", std::string(8, 'b'));
    const auto c = tree.write("c", std::string(8, 'c'));
    FileCache cache(10);
    auto heldA = cache.readPath(a, 100);
    cache.readPath(b, 100);  // not held: may be evicted
    EXPECT_EQ(cache.stats().entries, 2u) << "the fresh entry was in use while inserted";
    cache.readPath(c, 100);
    // b was the only entry nobody held: it went; a is still being served.
    EXPECT_EQ(cache.stats().evictions, 1u);
    EXPECT_EQ(text(heldA), "aaaaaaaa");
    const auto hitsBefore = cache.stats().hits;
    cache.readPath(a, 100);
    EXPECT_EQ(cache.stats().hits, hitsBefore + 1) << "held entry a must still be cached";
    heldA.reset();
    cache.readPath(b, 100);
    EXPECT_LE(cache.stats().bytes, 10u + 8u);
}

TEST(FileCache, ConcurrentReadersGetTheSameBytes) {
    test::ScratchDir tree;
    const std::string contents(200000, 'z');
    const auto path = tree.write("bootmain", contents);
    FileCache cache;
    std::vector<std::shared_ptr<const Bytes>> results(8);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < results.size(); ++i) {
        threads.emplace_back([&, i] { results[i] = cache.readPath(path, 1 << 20); });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    for (const auto& result : results) {
        EXPECT_EQ(text(result), contents);
    }
    EXPECT_EQ(cache.stats().entries, 1u);
}

}  // namespace
}  // namespace rpiboot
