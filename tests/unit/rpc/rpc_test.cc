// The admin transport end to end: a real HTTPS server on 127.12.0.x with a generated CA.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/files.h"
#include "rpc/rpc.h"

namespace tandem::rpc {
namespace {

std::string net() {
  const char* n = std::getenv("TANDEM_TEST_NET");
  return n ? n : "12";
}

class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/tandem-rpc-test-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(makeDirs(dir_ + "/pki").isOk());
    ASSERT_TRUE(generateCa(dir_ + "/pki/ca.pem", dir_ + "/pki/ca.key", "Tandem test CA").isOk());
    address_ = "127." + net() + ".0.7";
    Status st = issueCertificate(dir_ + "/pki/ca.pem", dir_ + "/pki/ca.key", "fe1a.example.test",
                                 {"fe1a.example.test"}, {address_}, dir_ + "/pki/fe1a.pem",
                                 dir_ + "/pki/fe1a.key");
    ASSERT_TRUE(st.isOk()) << st.toString();
    token_ = generateToken();
    ASSERT_TRUE(writeFileAtomic(dir_ + "/secret/token", token_ + "\n", 0600).isOk());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  ServerOptions serverOptions() {
    ServerOptions o;
    o.address = address_;
    o.port = 0;
    o.cert_file = dir_ + "/pki/fe1a.pem";
    o.key_file = dir_ + "/pki/fe1a.key";
    o.token = token_;
    o.threads = 4;
    return o;
  }
  ClientOptions clientOptions() {
    auto o = clientOptionsFromStateDir(dir_);
    EXPECT_TRUE(o.has_value());
    return *o;
  }

  std::string dir_, address_, token_;
};

TEST_F(RpcTest, TokenIsSixtyFourHexCharactersAndFresh) {
  std::string a = generateToken(), b = generateToken();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST_F(RpcTest, KeyFilesAreOwnerOnly) {
  struct stat st{};
  ASSERT_EQ(::stat((dir_ + "/pki/fe1a.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/pki/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(RpcTest, ServesJsonOverVerifiedTlsWithToken) {
  AdminServer server(serverOptions());
  server.route("GET", "/health", [](const Request& r) {
    return Response::json({{"ok", true}, {"q", r.params.count("x") ? r.params.at("x") : ""}});
  });
  server.route("POST", "/echo", [](const Request& r) {
    auto doc = r.json();
    if (!doc) return Response::error(doc.error());
    return Response::json({{"got", *doc}});
  });
  ASSERT_TRUE(server.start().isOk());
  AdminClient client(address_, server.port(), clientOptions());
  auto health = client.get("/health?x=1");
  ASSERT_TRUE(health.has_value()) << health.error().toString();
  EXPECT_EQ((*health)["ok"], true);
  EXPECT_EQ((*health)["q"], "1");
  auto echo = client.post("/echo", {{"a", 5}});
  ASSERT_TRUE(echo.has_value()) << echo.error().toString();
  EXPECT_EQ((*echo)["got"]["a"], 5);
}

TEST_F(RpcTest, RefusesWrongOrMissingToken) {
  AdminServer server(serverOptions());
  bool called = false;
  server.route("GET", "/health", [&](const Request&) {
    called = true;
    return Response::json({{"ok", true}});
  });
  ASSERT_TRUE(server.start().isOk());
  ClientOptions bad = clientOptions();
  bad.token = generateToken();
  auto r = AdminClient(address_, server.port(), bad).get("/health");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("token"), std::string::npos);
  bad.token = "";
  EXPECT_FALSE(AdminClient(address_, server.port(), bad).get("/health").has_value());
  EXPECT_FALSE(called);
}

TEST_F(RpcTest, ErrorStatusRoundTrips) {
  AdminServer server(serverOptions());
  server.route("POST", "/fail", [](const Request&) {
    return Response::error(conflict("version 7 was published meanwhile; retry"));
  });
  ASSERT_TRUE(server.start().isOk());
  AdminClient client(address_, server.port(), clientOptions());
  auto r = client.post("/fail");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kConflict);
  EXPECT_EQ(r.error().message(), "version 7 was published meanwhile; retry");
  auto missing = client.get("/nowhere");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  auto method = client.get("/fail");
  ASSERT_FALSE(method.has_value());
  EXPECT_EQ(method.error().code(), StatusCode::kInvalidArgument);
}

TEST_F(RpcTest, HandlerExceptionBecomesInternalError) {
  AdminServer server(serverOptions());
  server.route("GET", "/boom", [](const Request&) -> Response {
    throw std::runtime_error("kaboom");
  });
  ASSERT_TRUE(server.start().isOk());
  auto r = AdminClient(address_, server.port(), clientOptions()).get("/boom");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInternal);
}

TEST_F(RpcTest, ClientRejectsServerNotSignedByDeploymentCa) {
  AdminServer server(serverOptions());
  server.route("GET", "/health", [](const Request&) { return Response::json({{"ok", true}}); });
  ASSERT_TRUE(server.start().isOk());
  ASSERT_TRUE(generateCa(dir_ + "/other.pem", dir_ + "/other.key", "other").isOk());
  ClientOptions o = clientOptions();
  o.ca_file = dir_ + "/other.pem";
  auto r = AdminClient(address_, server.port(), o).get("/health");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kUnavailable);
}

TEST_F(RpcTest, UnreachableServerIsUnavailableNamingAddress) {
  ClientOptions o = clientOptions();
  o.timeout = std::chrono::milliseconds(1000);
  auto r = AdminClient("127." + net() + ".0.9", 1, o).get("/health");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.error().message().find("cannot reach 127." + net() + ".0.9:1"), std::string::npos);
}

TEST_F(RpcTest, BindConflictIsUnavailableNamingAddress) {
  AdminServer a(serverOptions());
  ASSERT_TRUE(a.start().isOk());
  ServerOptions o = serverOptions();
  o.port = a.port();
  AdminServer b(o);
  Status st = b.start();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find(address_ + ":" + std::to_string(a.port())), std::string::npos);
}

TEST_F(RpcTest, MetricsRenderPrometheusTextBehindToken) {
  Metrics metrics;
  metrics.setGauge("tandem_cms_replica_version", 7, {}, "CMS version held by the replica");
  metrics.addCounter("tandem_requests_total", 2, {{"path", "/health"}});
  metrics.addCounter("tandem_requests_total", 1, {{"path", "/health"}});
  EXPECT_EQ(metrics.value("tandem_requests_total", {{"path", "/health"}}), 3);
  AdminServer server(serverOptions());
  server.route("GET", "/metrics", [&](const Request&) { return Response::text(metrics.render()); });
  ASSERT_TRUE(server.start().isOk());
  auto text = AdminClient(address_, server.port(), clientOptions()).getText("/metrics");
  ASSERT_TRUE(text.has_value()) << text.error().toString();
  EXPECT_NE(text->find("# HELP tandem_cms_replica_version CMS version held by the replica\n"),
            std::string::npos);
  EXPECT_NE(text->find("# TYPE tandem_cms_replica_version gauge\ntandem_cms_replica_version 7\n"),
            std::string::npos);
  EXPECT_NE(text->find("tandem_requests_total{path=\"/health\"} 3\n"), std::string::npos);
}

TEST_F(RpcTest, StopIsIdempotentAndServerCanRestartOnSamePort) {
  auto s = std::make_unique<AdminServer>(serverOptions());
  ASSERT_TRUE(s->start().isOk());
  int port = s->port();
  s->stop();
  s->stop();
  s.reset();
  ServerOptions o = serverOptions();
  o.port = port;
  AdminServer again(o);
  EXPECT_TRUE(again.start().isOk());
}

}  // namespace
}  // namespace tandem::rpc
