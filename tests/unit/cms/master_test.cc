// The CMS master, file transfer agent and replicas end to end, in one process: real PostgreSQL
// (two stores), real HTTPS admin endpoints on 127.$TANDEM_TEST_NET.0.1-6.
#include "cms/master.h"

#include <thread>

#include "cms/client.h"
#include "cms/failover.h"
#include "cms/replica.h"
#include "cms_fixture.h"
#include "rpc/server.h"
#include "topology/loader.h"

namespace tandem::cms {
namespace {

using namespace std::chrono_literals;
using testing::serverAddress;

struct FakeServer {
  std::string fqdn;
  std::unique_ptr<Replica> replica;
  std::unique_ptr<rpc::AdminServer> admin;
  std::unique_ptr<MasterHandle> master;
};

class MasterTest : public testing::CmsTest {
 protected:
  void SetUp() override {
    testing::CmsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto r = topology::checkTopology(yaml_, "t.yaml");
    ASSERT_TRUE(r.problems.empty()) << r.problems[0].toString();
    topo_ = r.topology;
    const std::vector<std::pair<std::string, int>> servers = {
        {"fea1.example.test", 1}, {"fea2.example.test", 2}, {"feb1.example.test", 3},
        {"edgea1.example.test", 4}, {"chata1.example.test", 5}, {"chatb1.example.test", 6}};
    for (const auto& [fqdn, i] : servers) {
      issue(fqdn, serverAddress(i));
      FakeServer s;
      s.fqdn = fqdn;
      auto rep = Replica::open({dir_, fqdn, dir_ + "/topology.yaml"});
      ASSERT_TRUE(rep.has_value()) << rep.error().toString();
      s.replica = std::move(*rep);
      rpc::ServerOptions so;
      so.address = serverAddress(i);
      so.port = 8443;
      so.cert_file = dir_ + "/pki/" + fqdn + ".pem";
      so.key_file = dir_ + "/pki/" + fqdn + ".key";
      so.token = tandem::testing::PgTestCluster::kPassword;
      s.admin = std::make_unique<rpc::AdminServer>(so);
      serveReplica(*s.admin, *s.replica);
      Status st = s.admin->start();
      ASSERT_TRUE(st.isOk()) << st.toString();
      if (fqdn.rfind("fe", 0) == 0) {
        MasterOptions mo;
        mo.state_dir = dir_;
        mo.fqdn = fqdn;
        mo.replica = s.replica.get();
        auto m = startMaster(mo);
        ASSERT_TRUE(m.has_value());
        s.master = std::move(*m);
      }
      servers_.push_back(std::move(s));
    }
  }
  void TearDown() override {
    for (auto& s : servers_) {
      if (s.master) s.master->stop();
      if (s.admin) s.admin->stop();
    }
    servers_.clear();
    testing::CmsTest::TearDown();
  }

  FakeServer* masterServer() {
    for (auto& s : servers_)
      if (s.master && s.master->isMaster()) return &s;
    return nullptr;
  }
  template <typename F>
  bool waitFor(F f, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return f();
  }
  bool allReplicasHold(int64_t number, int64_t epoch) {
    for (auto& s : servers_) {
      const Version& v = s.replica->current()->version();
      if (v.number != number || v.epoch != epoch) return false;
    }
    return true;
  }

  topology::Topology topo_;
  std::vector<FakeServer> servers_;
};

TEST_F(MasterTest, PublishReachesEveryReplicaWithinTwoSeconds) {
  auto c = Client::connect(topo_, dir_, "test");
  ASSERT_TRUE(c.has_value()) << c.error().toString();
  ASSERT_TRUE(waitFor([&] { return masterServer() != nullptr; }, 10s)) << "no master elected";
  std::string master = masterServer()->fqdn;
  EXPECT_TRUE(master == "fea1.example.test" || master == "fea2.example.test") << master;

  auto t0 = std::chrono::steady_clock::now();
  auto v = (*c)->publish(yaml_, "t.yaml");
  ASSERT_TRUE(v.has_value()) << v.error().toString();
  EXPECT_TRUE(waitFor([&] { return allReplicasHold(v->number, v->epoch); }, 2s));
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("publish_to_all_replicas_seconds", std::to_string(took));

  auto s = (*c)->setSetting("chat.chat.example.test.state", "FailedOver");
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(waitFor([&] { return allReplicasHold(s->number, s->epoch); }, 2s));
  EXPECT_EQ(servers_[4].replica->current()->chatState("chat.example.test"), "FailedOver");

  // The replica file on disk holds it too.
  auto reopened = Replica::open({dir_, "chata1.example.test", ""});
  ASSERT_TRUE(reopened.has_value());
  EXPECT_EQ((*reopened)->current()->version().number, s->number);

  // replication-status: every replica up to date, with report times and product version.
  std::vector<ReplicaReport> reps;
  EXPECT_TRUE(waitFor(
      [&] {
        auto r = (*c)->replicationStatus();
        if (!r) return false;
        reps = *r;
        for (const auto& x : reps)
          if (!x.up_to_date) return false;
        return true;
      },
      3s));
  ASSERT_EQ(reps.size(), 6u);
  EXPECT_TRUE(reps[0].last_report.has_value());
  EXPECT_EQ(reps[0].product_version, kProductVersion);

  auto st = (*c)->status();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->master, master);
  EXPECT_EQ(st->current_version, s->number);
  EXPECT_EQ(st->active_store, "sqla");
  EXPECT_TRUE(waitFor([&] { return (*c)->status()->standby_version == s->number; }, 5s));
}

TEST_F(MasterTest, AnotherServerTakesOverWhenTheMasterDies) {
  auto c = Client::connect(topo_, dir_, "test");
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE((*c)->publish(yaml_, "t.yaml").has_value());
  ASSERT_TRUE(waitFor([&] { return masterServer() != nullptr; }, 10s));
  FakeServer* old = masterServer();
  old->master->crashForTest();  // the lease stays until it expires, as after kill -9
  old->admin->stop();
  ASSERT_TRUE(waitFor([&] { return masterServer() != nullptr; }, 9s)) << "nobody took over";
  EXPECT_NE(masterServer()->fqdn, old->fqdn);
  EXPECT_EQ(masterServer()->fqdn.rfind("fea", 0), 0u);  // only the CMS pool's servers
  auto v = (*c)->setSetting("users.bob", {{"pool", "poolb.example.test"}});
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(waitFor(
      [&] {
        for (auto& s : servers_)
          if (&s != old && s.replica->current()->version().number != v->number) return false;
        return true;
      },
      2s));
}

TEST_F(MasterTest, ServersKeepTheirReplicaWhenTheCmsDiesAndFailoverMovesIt) {
  auto c = Client::connect(topo_, dir_, "test");
  ASSERT_TRUE(c.has_value());
  auto v1 = (*c)->publish(yaml_, "t.yaml");
  ASSERT_TRUE(v1.has_value());
  auto v2 = (*c)->setSetting("chat.chat.example.test.state", "FailedOver");
  ASSERT_TRUE(v2.has_value());
  ASSERT_TRUE(waitFor([&] { return allReplicasHold(v2->number, 1); }, 10s));
  ASSERT_TRUE(waitFor([&] { return (*c)->status()->standby_version == v2->number; }, 5s));
  c->reset();

  ASSERT_TRUE(a_->stop("immediate").isOk());  // the CMS store dies
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(allReplicasHold(v2->number, 1));  // servers keep running on their replicas
  auto down = Client::connect(topo_, dir_, "test");
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code(), StatusCode::kUnavailable);

  FailoverOptions fo;
  fo.state_dir = dir_;
  fo.what_if = true;
  auto plan = failover(topo_, fo);
  ASSERT_TRUE(plan.has_value()) << plan.error().toString();
  EXPECT_EQ(plan->to_store, "sqlb");
  EXPECT_FALSE(plan->from_reachable);

  fo.what_if = false;
  auto done = failover(topo_, fo);
  ASSERT_TRUE(done.has_value()) << done.error().toString();
  EXPECT_EQ(done->to_pool, "poolb.example.test");
  EXPECT_EQ(done->master, "feb1.example.test");
  EXPECT_EQ(done->epoch, 2);
  EXPECT_EQ(done->version, v2->number + 1);
  EXPECT_TRUE(waitFor([&] { return allReplicasHold(done->version, 2); }, 3s));
  EXPECT_EQ(servers_[4].replica->current()->chatState("chat.example.test"), "FailedOver");

  // Settings work against the new active CMS.
  auto c2 = Client::connect(topo_, dir_, "test");
  ASSERT_TRUE(c2.has_value()) << c2.error().toString();
  EXPECT_EQ((*c2)->activeStore(), "sqlb");
  auto v4 = (*c2)->setSetting("chat.chat.example.test.state", "Normal");
  ASSERT_TRUE(v4.has_value());
  EXPECT_TRUE(waitFor([&] { return allReplicasHold(v4->number, 2); }, 2s));

  // The old store comes back: it stays the standby (lower epoch) and is brought up to date.
  ASSERT_TRUE(a_->start().isOk());
  auto c3 = Client::connect(topo_, dir_, "test");
  ASSERT_TRUE(c3.has_value());
  EXPECT_EQ((*c3)->activeStore(), "sqlb");
  EXPECT_TRUE(waitFor([&] { return (*c3)->status()->standby_version == v4->number; }, 8s));

  // Rerun: idempotent.
  fo.target_pool = "poolb.example.test";
  auto again = failover(topo_, fo);
  ASSERT_TRUE(again.has_value()) << again.error().toString();
  EXPECT_TRUE(again->already_active);
}

}  // namespace
}  // namespace tandem::cms
