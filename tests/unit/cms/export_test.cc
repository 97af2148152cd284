// CMS export files (format, checksum, version) and install-db / import / move against real
// PostgreSQL (the fixture's two stores).
#include "cms/export.h"

#include <filesystem>

#include "cms/client.h"
#include "cms/internal/xds.h"
#include "cms/move.h"
#include "cms_fixture.h"
#include "topology/loader.h"

namespace tandem::cms {
namespace {

ExportFile sample() {
  ExportFile f;
  f.store = "sql1";
  f.pool = "pool1.example.test";
  f.epoch = 3;
  f.exported_at = parseUtc("2026-12-07T10:00:00.000Z");
  for (int i = 1; i <= 3; ++i) {
    Version v;
    v.number = i;
    v.epoch = i == 3 ? 3 : 1;
    v.created_at = parseUtc("2026-12-07T09:0" + std::to_string(i) + ":00.000Z");
    v.author = "deploy";
    v.kind = "setting";
    v.summary = "change " + std::to_string(i);
    v.document = {{"settings", {{"users.alice", {{"pool", "pool1.example.test"}}}}}};
    f.versions.push_back(v);
  }
  return f;
}

TEST(CmsExport, RoundTripKeepsEveryVersion) {
  ExportFile f = sample();
  auto back = decodeExport(encodeExport(f), "x.json");
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(back->store, "sql1");
  EXPECT_EQ(back->pool, "pool1.example.test");
  EXPECT_EQ(back->epoch, 3);
  EXPECT_EQ(formatUtc(back->exported_at), "2026-12-07T10:00:00.000Z");
  ASSERT_EQ(back->versions.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(toJson(back->versions[i]), toJson(f.versions[i]));
  EXPECT_EQ(back->latestNumber(), 3);
}

TEST(CmsExport, DamagedFileFailsItsChecksum) {
  std::string text = encodeExport(sample());
  auto at = text.find("change 2");
  ASSERT_NE(at, std::string::npos);
  text[at + 7] = '9';
  auto r = decodeExport(text, "x.json");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.error().message().find("does not match its checksum"), std::string::npos);
  std::string truncated = encodeExport(sample());
  EXPECT_FALSE(decodeExport(truncated.substr(0, truncated.size() / 2), "x.json").has_value());
}

TEST(CmsExport, OtherFormatVersionIsRefusedNamingBoth) {
  auto doc = nlohmann::json::parse(encodeExport(sample()));
  doc.erase("checksum");
  doc["format_version"] = kExportFormatVersion + 1;
  doc["checksum"] = exportChecksum(doc);
  auto r = decodeExport(doc.dump(), "new.json");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "CMS export `new.json` has format version 2; this tandemctl "
                                 "reads version 1");
  EXPECT_EQ(decodeExport("{\"a\": 1}", "other.json").error().code(), StatusCode::kInvalidArgument);
}

TEST(CmsExport, LatestShareExportIsHighestEpochThenVersionAndPruneKeepsNewest) {
  const std::string dir = "/var/tmp/tandem-cms-export-test-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(latestShareExport(dir).error().code(), StatusCode::kNotFound);
  ExportFile f = sample();
  for (auto [epoch, n] : std::vector<std::pair<int64_t, int64_t>>{{1, 9}, {2, 3}, {2, 10}, {1, 12}}) {
    f.epoch = epoch;
    f.versions.back().number = n;
    ASSERT_TRUE(writeExport(shareExportPath(dir, f), f).isOk());
  }
  EXPECT_EQ(*latestShareExport(dir), dir + "/share/cms/cms-export-e2-v10.json");
  pruneShareExports(dir, 2);
  EXPECT_TRUE(std::filesystem::exists(dir + "/share/cms/cms-export-e2-v10.json"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/share/cms/cms-export-e2-v3.json"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/share/cms/cms-export-e1-v12.json"));
  std::filesystem::remove_all(dir);
}

using testing::CmsTest;

TEST_F(CmsTest, MoveFromAnExportMakesTheCleanCopyActiveAndFencesTheOldOne) {
  auto t = topology::checkTopology(yaml_, "t.yaml").topology;
  auto c = Client::connect(t, dir_, "test");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  ASSERT_TRUE((*c)->publish(yaml_, "t.yaml").has_value());
  ASSERT_TRUE((*c)->setSetting("chat.chat.example.test.state", "FailedOver").has_value());
  auto f = exportActive(t, dir_);
  ASSERT_TRUE(f.has_value()) << f.error().message();
  ASSERT_TRUE(writeExport(dir_ + "/cms.json", *f).isOk());

  // install-db refuses the active copy without --force, then cleans the backup pool's store.
  auto refused = installDb(t, {.state_dir = dir_, .store = "sqla", .clean = true});
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find("holds the ACTIVE CMS"), std::string::npos);
  auto installed = installDb(t, {.state_dir = dir_, .store = "sqlb", .clean = true});
  ASSERT_TRUE(installed.has_value()) << installed.error().message();
  EXPECT_EQ(installed->pool, "poolb.example.test");

  // Without --force the move is refused while the old CMS answers; with it, it happens.
  MoveOptions mo{.state_dir = dir_, .pool = "poolb.example.test", .from = dir_ + "/cms.json"};
  mo.master_wait = std::chrono::milliseconds(0);
  auto no = move(t, mo);
  ASSERT_FALSE(no.has_value());
  EXPECT_NE(no.error().message().find("still answers"), std::string::npos);
  mo.force = true;
  auto moved = move(t, mo);
  ASSERT_TRUE(moved.has_value()) << moved.error().message();
  EXPECT_EQ(moved->imported, 2);
  EXPECT_EQ(moved->epoch, 2);
  EXPECT_EQ(moved->version, 3);

  auto secret = internal::readSecret(dir_);
  auto active = internal::findActive(t, *secret, false);
  ASSERT_TRUE(active.has_value());
  EXPECT_EQ(active->xds->location().store, "sqlb");
  auto v = active->xds->latest(true);
  ASSERT_TRUE(v && *v);
  EXPECT_EQ((*v)->kind, "move");
  EXPECT_EQ((*v)->document["settings"]["chat.chat.example.test.state"], "FailedOver");
  // A rerun only re-verifies; importing into the now non-empty store is refused.
  auto again = move(t, mo);
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_TRUE(again->already_moved);
  auto imp = importExportFile(t, dir_, dir_ + "/cms.json", "poolb.example.test");
  ASSERT_FALSE(imp.has_value());
  EXPECT_NE(imp.error().message().find("not an empty CMS store"), std::string::npos);
}

}  // namespace
}  // namespace tandem::cms
