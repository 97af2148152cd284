// Per-user digest comparison (src/backup/digest.cc) and module names (link.cc).
#include "backup/digest.h"

#include <gtest/gtest.h>

#include "backup/link.h"

namespace tandem::backup {
namespace {

TEST(BackupDigestTest, EqualTablesHaveNoDifference) {
  TableDigests a = {{"alice", {3, "x"}}, {"bob", {1, "y"}}};
  EXPECT_TRUE(compareDigests("roster", a, a).empty());
}

TEST(BackupDigestTest, ListsMissingExtraAndChangedUsersInUserOrder) {
  TableDigests pool = {{"alice", {3, "x"}}, {"bob", {1, "y"}}, {"dave", {2, "d"}}};
  TableDigests copy = {{"alice", {3, "x2"}}, {"carol", {4, "c"}}, {"dave", {2, "d"}}};
  auto d = compareDigests("roster", pool, copy);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].user, "alice");
  EXPECT_EQ(d[0].how, "rows differ");
  EXPECT_EQ(d[1].user, "bob");
  EXPECT_EQ(d[1].how, "missing in the copy");
  EXPECT_EQ(d[1].pool_rows, 1);
  EXPECT_EQ(d[2].user, "carol");
  EXPECT_EQ(d[2].how, "only in the copy");
  EXPECT_EQ(d[2].copy_rows, 4);
  for (const auto& x : d) EXPECT_EQ(x.table, "roster");
}

TEST(BackupDigestTest, SameDigestDifferentCountIsADifference) {
  TableDigests pool = {{"alice", {3, "x"}}};
  TableDigests copy = {{"alice", {2, "x"}}};
  ASSERT_EQ(compareDigests("offline", pool, copy).size(), 1u);
}

TEST(BackupDigestTest, OnlyDifferencesSeenInBothPassesAreConfirmed) {
  std::vector<Difference> first = {{"alice", "roster", "rows differ", 1, 2},
                                   {"bob", "offline", "missing in the copy", 1, 0}};
  std::vector<Difference> second = {{"bob", "offline", "missing in the copy", 1, 0},
                                    {"carol", "users", "only in the copy", 0, 1}};
  auto c = confirmedDifferences(first, second);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].user, "bob");
}

TEST(BackupLinkTest, ModulesParseCaseInsensitivelyAndUnknownOnesAreRefused) {
  EXPECT_EQ(*parseModule("userdata"), Module::kUserData);
  EXPECT_EQ(*parseModule("CMS"), Module::kCms);
  auto bad = parseModule("Voicemail");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("UserData and Cms"), std::string::npos);
}

TEST(BackupLinkTest, SlotNameIsALegalPostgresIdentifier) {
  Link l;
  l.target_store = "Sql-2.b";
  EXPECT_EQ(l.slotName(), "tandem_backup_sql_2_b");
}

}  // namespace
}  // namespace tandem::backup
