// cms::Replica without a CMS: bootstrap, ordering by (epoch, number), corrupt files, settings.
#include "cms/replica.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "cms/settings.h"
#include "cms_fixture.h"
#include "common/files.h"

namespace tandem::cms {
namespace {

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/tandem-replica-test-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(writeFileAtomic(dir_ + "/topology.yaml",
                                testing::topologyYaml("127.0.1.10", "127.0.2.10"))
                    .isOk());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Version version(int64_t number, int64_t epoch, const Replica& r) {
    Version v;
    v.number = number;
    v.epoch = epoch;
    v.document = r.current()->version().document;
    return v;
  }
  std::string dir_;
};

TEST_F(ReplicaTest, StartsFromTheTopologyFileWithDefaultSettings) {
  auto r = Replica::open({dir_, "chata1.example.test", dir_ + "/topology.yaml"});
  ASSERT_TRUE(r.has_value()) << r.error().toString();
  auto snap = (*r)->current();
  EXPECT_EQ(snap->version().number, 0);
  EXPECT_EQ(snap->chatState("chat.example.test"), "Normal");
  EXPECT_EQ(snap->activeServers("chat.example.test"),
            std::vector<std::string>{"chata1.example.test"});
  EXPECT_EQ(snap->chatFrontendPool("chat.example.test"), "poola.example.test");
  EXPECT_EQ(snap->userPool("alice"), "poola.example.test");
  EXPECT_EQ(snap->userPool("nobody"), "");
}

TEST_F(ReplicaTest, TakesOnlyNewerVersionsAndAHigherEpochWins) {
  auto r = Replica::open({dir_, "fea1.example.test", dir_ + "/topology.yaml"});
  ASSERT_TRUE(r.has_value());
  int changes = 0;
  (*r)->watch([&](const auto&) { ++changes; });
  ASSERT_TRUE((*r)->apply(toJson(version(5, 1, **r))).isOk());
  ASSERT_TRUE((*r)->apply(toJson(version(4, 1, **r))).isOk());  // older: ignored, not an error
  EXPECT_EQ((*r)->current()->version().number, 5);
  ASSERT_TRUE((*r)->apply(toJson(version(3, 2, **r))).isOk());  // after a CMS failover
  EXPECT_EQ((*r)->current()->version().number, 3);
  EXPECT_EQ((*r)->current()->version().epoch, 2);
  EXPECT_EQ(changes, 2);
  // Survives a restart from disk.
  auto again = Replica::open({dir_, "fea1.example.test", ""});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ((*again)->current()->version().epoch, 2);
}

TEST_F(ReplicaTest, CorruptReplicaFileIsSetAsideAndTheBootstrapUsed) {
  ASSERT_TRUE(writeFileAtomic(dir_ + "/servers/fea1.example.test/replica.json", "{half").isOk());
  auto r = Replica::open({dir_, "fea1.example.test", dir_ + "/topology.yaml"});
  ASSERT_TRUE(r.has_value()) << r.error().toString();
  EXPECT_EQ((*r)->current()->version().number, 0);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/servers/fea1.example.test/replica.json.corrupt"));
  auto none = Replica::open({dir_, "feb1.example.test", ""});
  EXPECT_EQ(none.error().code(), StatusCode::kInvalidArgument);
}

TEST_F(ReplicaTest, SettingsAreValidatedAgainstTheTopology) {
  auto r = Replica::open({dir_, "fea1.example.test", dir_ + "/topology.yaml"});
  const auto& t = (*r)->current()->topology();
  EXPECT_TRUE(validateSetting(t, "chat.chat.example.test.active_servers", nlohmann::json::array())
                  .isOk());
  EXPECT_FALSE(validateSetting(t, "chat.chat.example.test.active_servers",
                               {"chata1.example.test", "chata1.example.test"})
                   .isOk());
  EXPECT_FALSE(validateSetting(t, "chat.chat.example.test.frontend_pool", "chat.example.test").isOk());
  EXPECT_TRUE(validateSetting(t, "chat.chat.example.test.default_category", "eng").isOk());
  EXPECT_FALSE(validateSetting(t, "chat.chat.example.test.default_category", "").isOk());
  EXPECT_FALSE(validateSetting(t, "chat.chat.example.test.default_category", 7).isOk());
  EXPECT_FALSE(validateSetting(t, "chat.chat.example.test.default_category", "a\tb").isOk());
  EXPECT_FALSE(validateSetting(t, "chat.chat.example.test.default_category", nullptr).isOk());
  EXPECT_EQ(defaultSettings(t)["chat.chat.example.test.default_category"], "general");
  EXPECT_TRUE(validateSetting(t, "users.bob", nullptr).isOk());
  EXPECT_FALSE(validateSetting(t, "chat.chat.example.test.state", nullptr).isOk());
  EXPECT_FALSE(validateSetting(t, "users.Bad Name", {{"pool", "poola.example.test"}}).isOk());
  auto d = diffSettings({{"a", 1}}, {{"a", 2}, {"b", true}});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "a: 1 -> 2");
}

}  // namespace
}  // namespace tandem::cms
