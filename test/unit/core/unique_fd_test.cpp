#include "rpiboot/core/unique_fd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace rpiboot {
namespace {

// True when `fd` names no open file in this process.
bool isClosed(int fd) {
    errno = 0;
    return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

int openDevNull() {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    return fd;
}

TEST(UniqueFd, DefaultHoldsNothing) {
    UniqueFd fd;
    EXPECT_EQ(fd.get(), -1);
    EXPECT_FALSE(fd.valid());
    EXPECT_FALSE(fd);
}

TEST(UniqueFd, ClosesOnDestruction) {
    const int raw = openDevNull();
    {
        UniqueFd fd(raw);
        EXPECT_TRUE(fd);
        EXPECT_EQ(fd.get(), raw);
        EXPECT_FALSE(isClosed(raw));
    }
    EXPECT_TRUE(isClosed(raw));
}

TEST(UniqueFd, MoveLeavesTheSourceEmptyAndKeepsTheFdOpen) {
    const int raw = openDevNull();
    UniqueFd first(raw);
    UniqueFd second(std::move(first));
    EXPECT_FALSE(first);  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(first.get(), -1);
    EXPECT_EQ(second.get(), raw);
    EXPECT_FALSE(isClosed(raw));

    UniqueFd third;
    third = std::move(second);
    EXPECT_FALSE(second);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(third.get(), raw);
    EXPECT_FALSE(isClosed(raw));
}

TEST(UniqueFd, MoveAssignmentClosesWhatTheTargetHeld) {
    const int a = openDevNull();
    const int b = openDevNull();
    UniqueFd target(a);
    UniqueFd source(b);
    target = std::move(source);
    EXPECT_TRUE(isClosed(a));
    EXPECT_EQ(target.get(), b);
    EXPECT_FALSE(isClosed(b));
}

TEST(UniqueFd, ReleaseHandsTheFdOverWithoutClosingIt) {
    const int raw = openDevNull();
    int released = -1;
    {
        UniqueFd fd(raw);
        released = fd.release();
        EXPECT_FALSE(fd);
        EXPECT_EQ(fd.get(), -1);
    }
    EXPECT_EQ(released, raw);
    EXPECT_FALSE(isClosed(raw));
    ::close(raw);
}

TEST(UniqueFd, ResetClosesTheOldFdAndTakesTheNewOne) {
    const int a = openDevNull();
    const int b = openDevNull();
    UniqueFd fd(a);
    fd.reset(b);
    EXPECT_TRUE(isClosed(a));
    EXPECT_EQ(fd.get(), b);
    fd.reset();
    EXPECT_TRUE(isClosed(b));
    EXPECT_FALSE(fd);
}

}  // namespace
}  // namespace rpiboot
