// The private no-symlink opener, tested on both of its paths (openat2 and the
// component walk used on kernels without it).
#include "../../../lib/src/firmware/inside_root.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot::firmware_detail {
namespace {

class InsideRoot : public ::testing::TestWithParam<NoSymlinkOpen> {
  protected:
    test::ScratchDir tree;
};

TEST_P(InsideRoot, OpensAFileInsideTheRoot) {
    tree.write("root/a/b.txt", "b");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    const OpenedFile opened = openInsideRoots(tree / "root/a/b.txt", roots, GetParam());
    ASSERT_EQ(opened.status, OpenStatus::Opened) << opened.reason;
    char byte = 0;
    EXPECT_EQ(::read(opened.fd.get(), &byte, 1), 1);
    EXPECT_EQ(byte, 'b');
}

TEST_P(InsideRoot, FollowsASymlinkThatStaysInside) {
    tree.write("root/real.txt", "r");
    tree.symlink("root/link.txt", "real.txt");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    const OpenedFile opened = openInsideRoots(tree / "root/link.txt", roots, GetParam());
    ASSERT_EQ(opened.status, OpenStatus::Opened) << opened.reason;
    EXPECT_EQ(opened.canonical, tree / "root/real.txt");
}

TEST_P(InsideRoot, RefusesASymlinkLeadingOutside) {
    tree.write("other/x.txt", "x");
    tree.symlink("root/x.txt", tree / "other/x.txt");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    EXPECT_EQ(openInsideRoots(tree / "root/x.txt", roots, GetParam()).status, OpenStatus::Refused);
}

TEST_P(InsideRoot, ReportsMissingFiles) {
    tree.mkdir("root");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    EXPECT_EQ(openInsideRoots(tree / "root/none", roots, GetParam()).status, OpenStatus::Missing);
    EXPECT_EQ(openInsideRoots(tree / "root/none/deeper", roots, GetParam()).status,
              OpenStatus::Missing);
}

TEST_P(InsideRoot, RefusesASymlinkLoop) {
    tree.symlink("root/loop", "loop");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    EXPECT_EQ(openInsideRoots(tree / "root/loop", roots, GetParam()).status, OpenStatus::Refused);
}

TEST_P(InsideRoot, APathWithoutSymlinksIsItsOwnCanonicalPath) {
    tree.write("root/2711/start4.elf", "s");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    const OpenedFile opened = openInsideRoots(tree / "root/2711/start4.elf", roots, GetParam());
    ASSERT_EQ(opened.status, OpenStatus::Opened) << opened.reason;
    EXPECT_EQ(opened.canonical, tree / "root/2711/start4.elf");
}

TEST_P(InsideRoot, FollowsASymlinkedDirectoryThatStaysInside) {
    tree.write("root/common/config.txt", "c");
    tree.symlink("root/2711", "common");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    const OpenedFile opened = openInsideRoots(tree / "root/2711/config.txt", roots, GetParam());
    ASSERT_EQ(opened.status, OpenStatus::Opened) << opened.reason;
    EXPECT_EQ(opened.canonical, tree / "root/common/config.txt");
}

TEST_P(InsideRoot, RefusesADotDotPathLeadingOutside) {
    tree.write("other/x.txt", "x");
    tree.mkdir("root");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    const OpenedFile opened = openInsideRoots(tree / "root/../other/x.txt", roots, GetParam());
    EXPECT_EQ(opened.status, OpenStatus::Refused) << opened.reason;
    EXPECT_FALSE(opened.fd.valid());
}

TEST_P(InsideRoot, RefusesAPathOutsideEveryRootEvenWithoutSymlinks) {
    tree.write("other/x.txt", "x");
    tree.mkdir("root");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    EXPECT_EQ(openInsideRoots(tree / "other/x.txt", roots, GetParam()).status, OpenStatus::Refused);
}

TEST_P(InsideRoot, AFileWhereADirectoryShouldBeIsMissing) {
    tree.write("root/file", "f");
    const std::vector<std::filesystem::path> roots = {tree / "root"};
    EXPECT_EQ(openInsideRoots(tree / "root/file/x", roots, GetParam()).status, OpenStatus::Missing);
}

INSTANTIATE_TEST_SUITE_P(BothOpeners, InsideRoot,
                         ::testing::Values(NoSymlinkOpen::Openat2OrWalk, NoSymlinkOpen::WalkOnly));

TEST(IsWithin, ComparesWholeComponents) {
    EXPECT_TRUE(isWithin("/srv/fw", "/srv/fw"));
    EXPECT_TRUE(isWithin("/srv/fw/2711/x", "/srv/fw"));
    EXPECT_FALSE(isWithin("/srv/fw2/x", "/srv/fw"));
    EXPECT_FALSE(isWithin("/srv", "/srv/fw"));
    EXPECT_TRUE(isWithin("/srv/fw/x", "/srv/fw/"));
}

}  // namespace
}  // namespace rpiboot::firmware_detail
