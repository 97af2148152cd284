// admin::Endpoint: the common paths every process serves, over real HTTPS.
#include "admin/endpoint.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "cms/client.h"
#include "common/files.h"
#include "rpc/certs.h"
#include "rpc/client.h"

namespace tandem::admin {
namespace {

std::string net() {
  const char* n = std::getenv("TANDEM_TEST_NET");
  return n ? n : "12";
}

class EndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/tandem-admin-test-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    address_ = "127." + net() + ".0.8";
    ASSERT_TRUE(makeDirs(dir_ + "/pki").isOk());
    ASSERT_TRUE(rpc::generateCa(dir_ + "/pki/ca.pem", dir_ + "/pki/ca.key", "CA").isOk());
    ASSERT_TRUE(rpc::issueCertificate(dir_ + "/pki/ca.pem", dir_ + "/pki/ca.key",
                                      "fe1a.example.test", {"fe1a.example.test"}, {address_},
                                      dir_ + "/pki/fe1a.example.test.pem",
                                      dir_ + "/pki/fe1a.example.test.key")
                    .isOk());
    ASSERT_TRUE(writeFileAtomic(dir_ + "/secret/token", rpc::generateToken() + "\n", 0600).isOk());
    ASSERT_TRUE(writeFileAtomic(dir_ + "/topology.yaml",
                                "domain: example.test\nsites:\n  - name: Site1\nstores:\n"
                                "  - {name: sql1, site: Site1, address: 127.0.1.10}\npools:\n"
                                "  - fqdn: pool1.example.test\n    role: frontend\n    site: Site1\n"
                                "    store: sql1\n    cms: true\n    servers:\n"
                                "      - {fqdn: fe1a.example.test, address: 127.0.1.1}\n")
                    .isOk());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  rpc::AdminClient client(int port) {
    return rpc::AdminClient(address_, port, *rpc::clientOptionsFromStateDir(dir_));
  }
  std::string dir_, address_;
};

TEST_F(EndpointTest, ServesHealthStatusMetricsAndReplica) {
  auto replica = cms::Replica::open({dir_, "fe1a.example.test", dir_ + "/topology.yaml"});
  ASSERT_TRUE(replica.has_value()) << replica.error().toString();
  auto ep = Endpoint::create({"fe1a.example.test", "frontend", "Site1", address_, 0, dir_, 4},
                             replica->get());
  ASSERT_TRUE(ep.has_value()) << ep.error().toString();
  (*ep)->setStatusProvider([] { return nlohmann::json{{"sessions", 3}}; });
  (*ep)->metrics().addCounter("tandem_signins_total", 2);
  ASSERT_TRUE((*ep)->start().isOk());
  auto c = client((*ep)->port());

  auto health = c.get("/health");
  ASSERT_TRUE(health.has_value()) << health.error().toString();
  EXPECT_EQ((*health)["ok"], true);
  EXPECT_EQ((*health)["role"], "frontend");
  EXPECT_EQ((*health)["cms_version"], 0);

  auto status = c.get("/status");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ((*status)["sessions"], 3);
  EXPECT_EQ((*status)["cms_replica"]["version"], 0);

  // A pushed version lands on disk and in the metrics.
  cms::Version v;
  v.number = 4;
  v.epoch = 1;
  v.kind = "topology";
  v.document = (*replica)->current()->version().document;
  auto pushed = c.put("/cms/replica", cms::toJson(v));
  ASSERT_TRUE(pushed.has_value()) << pushed.error().toString();
  EXPECT_EQ((*pushed)["version"], 4);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/servers/fe1a.example.test/replica.json"));
  auto metrics = c.getText("/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->find("tandem_cms_replica_version 4\n"), std::string::npos) << *metrics;
  EXPECT_NE(metrics->find("tandem_cms_replica_age_seconds "), std::string::npos);
  EXPECT_NE(metrics->find("tandem_signins_total 2\n"), std::string::npos);

  // An older version changes nothing; a broken one is refused with the replica unchanged.
  v.number = 3;
  EXPECT_EQ((*c.put("/cms/replica", cms::toJson(v)))["version"], 4);
  auto bad = c.put("/cms/replica", {{"version", 9}, {"epoch", 1}, {"document", {{"topology_yaml", "{x"}}}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*replica)->current()->version().number, 4);
}

TEST_F(EndpointTest, UnhealthyRoleAnswers503WithTheSentence) {
  auto ep = Endpoint::create({"fe1a.example.test", "frontend", "Site1", address_, 0, dir_, 2},
                             nullptr);
  ASSERT_TRUE(ep.has_value());
  (*ep)->setHealthCheck([] { return unavailable("store `sql1` does not answer"); });
  ASSERT_TRUE((*ep)->start().isOk());
  auto h = client((*ep)->port()).get("/health");
  ASSERT_FALSE(h.has_value());
}

TEST_F(EndpointTest, FollowerSeesTheOwnersNewVersions) {
  auto owner = cms::Replica::open({dir_, "fe1a.example.test", dir_ + "/topology.yaml"});
  ASSERT_TRUE(owner.has_value());
  cms::ReplicaOptions fo{dir_, "fe1a.example.test", dir_ + "/topology.yaml", true,
                         std::chrono::milliseconds(50)};
  auto follower = cms::Replica::open(fo);
  ASSERT_TRUE(follower.has_value());
  std::atomic<int64_t> seen{-1};
  (*follower)->watch([&](const auto& snap) { seen = snap->version().number; });
  cms::Version v;
  v.number = 7;
  v.document = (*owner)->current()->version().document;
  ASSERT_TRUE((*owner)->apply(cms::toJson(v)).isOk());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (seen != 7 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(seen, 7);
  EXPECT_EQ((*follower)->apply(cms::toJson(v)).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tandem::admin
