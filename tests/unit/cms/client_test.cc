// cms::Client against real PostgreSQL: publish, settings, conflicts, history, journal.
#include "cms/client.h"

#include <thread>

#include "cms/settings.h"
#include "cms_fixture.h"
#include "topology/loader.h"

namespace tandem::cms {
namespace {

using testing::CmsTest;

topology::Topology load(const std::string& yaml) {
  auto r = topology::checkTopology(yaml, "t.yaml");
  EXPECT_TRUE(r.problems.empty()) << (r.problems.empty() ? "" : r.problems[0].toString());
  return r.topology;
}

TEST_F(CmsTest, FirstPublishCreatesXdsAndVersionOne) {
  auto c = Client::connect(load(yaml_), dir_, "test");
  ASSERT_TRUE(c.has_value()) << c.error().toString();
  EXPECT_EQ((*c)->activeStore(), "sqla");
  EXPECT_EQ((*c)->current().error().code(), StatusCode::kNotFound);
  auto v = (*c)->publish(yaml_, "t.yaml");
  ASSERT_TRUE(v.has_value()) << v.error().toString();
  EXPECT_EQ(v->number, 1);
  EXPECT_EQ(v->epoch, 1);
  auto state = (*c)->getSetting("chat.chat.example.test.state");
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(*state, "Normal");
  EXPECT_EQ(*(*c)->getSetting("users.alice"), (nlohmann::json{{"pool", "poola.example.test"}}));
}

TEST_F(CmsTest, SettingChangeIsANewVersionAndValidated) {
  auto c = Client::connect(load(yaml_), dir_, "runbook");
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE((*c)->publish(yaml_, "t.yaml").has_value());
  auto v = (*c)->setSetting("chat.chat.example.test.state", "FailedOver");
  ASSERT_TRUE(v.has_value()) << v.error().toString();
  EXPECT_EQ(v->number, 2);
  EXPECT_EQ(v->kind, "setting");
  EXPECT_EQ(v->summary, "chat.chat.example.test.state: \"Normal\" -> \"FailedOver\"");
  // Same value again: nothing written.
  EXPECT_EQ((*c)->setSetting("chat.chat.example.test.state", "FailedOver")->number, 2);
  // What-if: planned, not written.
  auto w = (*c)->setSetting("chat.chat.example.test.active_servers",
                            nlohmann::json::array({"chatb1.example.test"}), true);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->number, 3);
  EXPECT_EQ((*c)->current()->number, 2);
  // Refusals.
  EXPECT_EQ((*c)->setSetting("chat.chat.example.test.state", "Broken").error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*c)->setSetting("chat.chat.example.test.active_servers",
                             nlohmann::json::array({"fea1.example.test"}))
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*c)->setSetting("chat.nochat.example.test.state", "Normal").error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*c)->setSetting("colour", "blue").error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*c)->setSetting("users.bob", {{"pool", "chat.example.test"}}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*c)->current()->number, 2);
  auto h = (*c)->history(10);
  ASSERT_TRUE(h.has_value());
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].number, 2);
  EXPECT_EQ((*h)[0].author, "runbook");
}

TEST_F(CmsTest, InvalidPublishWritesNothing) {
  auto c = Client::connect(load(yaml_), dir_, "test");
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE((*c)->publish(yaml_, "t.yaml").has_value());
  std::string bad = yaml_;
  bad.replace(bad.find("cms: true"), 9, "cms: false");
  auto r = (*c)->publish(bad, "bad.yaml");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("bad.yaml"), std::string::npos);
  EXPECT_EQ((*c)->current()->number, 1);
  EXPECT_EQ((*c)->publish("{not yaml", "x.yaml").error().code(), StatusCode::kInvalidArgument);
}

TEST_F(CmsTest, ConcurrentPublishesOneWinsOthersAreToldToRetry) {
  auto topo = load(yaml_);
  { ASSERT_TRUE((*Client::connect(topo, dir_, "seed"))->publish(yaml_, "t.yaml").has_value()); }
  constexpr int kWriters = 6;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kWriters; ++i) clients.push_back(std::move(*Client::connect(topo, dir_, "w")));
  std::vector<Result<Version>> results(kWriters, fail(internalError("not run")));
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i)
    threads.emplace_back([&, i] { results[i] = clients[i]->publish(yaml_, "t.yaml"); });
  for (auto& t : threads) t.join();
  int ok = 0, conflicts = 0;
  std::set<int64_t> numbers;
  for (const auto& r : results) {
    if (r) {
      ++ok;
      EXPECT_TRUE(numbers.insert(r->number).second);
    } else {
      EXPECT_EQ(r.error().code(), StatusCode::kConflict) << r.error().toString();
      EXPECT_NE(r.error().message().find("retry"), std::string::npos);
      ++conflicts;
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_EQ(ok + conflicts, kWriters);
  EXPECT_EQ(clients[0]->current()->number, 1 + ok);
}

TEST_F(CmsTest, ConcurrentSettingChangesAllLand) {
  auto topo = load(yaml_);
  { ASSERT_TRUE((*Client::connect(topo, dir_, "seed"))->publish(yaml_, "t.yaml").has_value()); }
  constexpr int kWriters = 4;
  std::vector<std::thread> threads;
  std::vector<Status> st(kWriters);
  for (int i = 0; i < kWriters; ++i)
    threads.emplace_back([&, i] {
      auto c = Client::connect(topo, dir_, "w");
      auto r = (*c)->setSetting("users.u" + std::to_string(i), {{"pool", "poolb.example.test"}});
      st[i] = r ? Status::ok() : r.error();
    });
  for (auto& t : threads) t.join();
  auto c = Client::connect(topo, dir_, "check");
  for (int i = 0; i < kWriters; ++i) {
    EXPECT_TRUE(st[i].isOk()) << st[i].toString();
    EXPECT_EQ((*(*c)->getSetting("users.u" + std::to_string(i)))["pool"], "poolb.example.test");
  }
}

TEST_F(CmsTest, JournalKeepsRunEntriesInOrder) {
  auto c = Client::connect(load(yaml_), dir_, "test");
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE((*c)->appendJournal({{"run", "r1"}, {"step", 1}, {"state", "done"}}).isOk());
  ASSERT_TRUE((*c)->appendJournal({{"run", "r1"}, {"step", 2}, {"state", "started"}}).isOk());
  ASSERT_TRUE((*c)->appendJournal({{"run", "r2"}, {"step", 1}}).isOk());
  auto j = (*c)->journal("r1");
  ASSERT_TRUE(j.has_value());
  ASSERT_EQ(j->size(), 2u);
  EXPECT_EQ((*j)[1]["step"], 2);
  EXPECT_TRUE((*j)[0].contains("at"));
}

TEST_F(CmsTest, UnreachableCmsIsUnavailableNamingBothStores) {
  auto topo = load(yaml_);
  { ASSERT_TRUE((*Client::connect(topo, dir_, "seed"))->publish(yaml_, "t.yaml").has_value()); }
  ASSERT_TRUE(a_->stop("immediate").isOk());
  ASSERT_TRUE(b_->stop("immediate").isOk());
  auto c = Client::connect(topo, dir_, "test");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.error().message().find("CMS unreachable"), std::string::npos);
  EXPECT_NE(c.error().message().find("sqla"), std::string::npos);
  EXPECT_NE(c.error().message().find("sqlb"), std::string::npos);
}

}  // namespace
}  // namespace tandem::cms
