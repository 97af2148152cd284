// The model's helpers: lookups on a hand-built topology, share paths, sites of servers, JSON.
#include "topology/topology.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "topology/loader.h"

namespace tandem::topology {
namespace {

Topology twoSite() {
  auto t = loadValidTopology(std::string(TANDEM_SOURCE_DIR) + "/examples/two-site.yaml");
  EXPECT_TRUE(t.has_value());
  return t.value_or(Topology{});
}

TEST(Topology, LookupsReturnNullWhenAbsent) {
  Topology t;
  EXPECT_EQ(t.findSite("x"), nullptr);
  EXPECT_EQ(t.findStore("x"), nullptr);
  EXPECT_EQ(t.findPool("x"), nullptr);
  const Pool* pool = reinterpret_cast<const Pool*>(&t);
  EXPECT_EQ(t.findServer("x", &pool), nullptr);
  EXPECT_EQ(pool, nullptr);
  EXPECT_EQ(t.cmsPool(), nullptr);
  EXPECT_EQ(t.principalOf(""), nullptr);
}

TEST(Topology, PoolRolesRoundTrip) {
  for (PoolRole r : {PoolRole::kFrontend, PoolRole::kChat, PoolRole::kEdge}) {
    EXPECT_EQ(parsePoolRole(poolRoleName(r)), r);
  }
  EXPECT_EQ(parsePoolRole("Frontend"), std::nullopt);
}

TEST(Topology, SiteOfServer) {
  Topology t = twoSite();
  ASSERT_NE(siteOfServer(t, "chat2a.example.test"), nullptr);
  EXPECT_EQ(siteOfServer(t, "chat2a.example.test")->name, "Site2");
  EXPECT_EQ(siteOfServer(t, "fe1b.example.test")->name, "Site1");
  EXPECT_EQ(siteOfServer(t, "nope.example.test"), nullptr);
}

TEST(Topology, ResolveSharePath) {
  LogShipping ls;
  ls.share = "share/pc1";
  EXPECT_EQ(resolveSharePath(ls, "/var/lib/tandem"), "/var/lib/tandem/share/pc1");
  EXPECT_EQ(resolveSharePath(ls, "/var/lib/tandem/"), "/var/lib/tandem/share/pc1");
  EXPECT_EQ(resolveSharePath(ls, "/"), "/share/pc1");
  ls.share = "./share/pc1";
  EXPECT_EQ(resolveSharePath(ls, "/srv/t"), "/srv/t/share/pc1");
  ls.share = "/mnt/backup/pc1";
  EXPECT_EQ(resolveSharePath(ls, "/var/lib/tandem"), "/mnt/backup/pc1");
}

TEST(Topology, JsonHasTheDocumentedShape) {
  nlohmann::json j = toJson(twoSite());
  EXPECT_EQ(j["domain"], "example.test");
  EXPECT_EQ(j["sites"].size(), 2u);
  EXPECT_EQ(j["stores"].size(), 9u);
  EXPECT_EQ(j["stores"][0]["name"], "sql1");
  EXPECT_EQ(j["stores"][0]["mirror"], "sql1m");
  EXPECT_TRUE(j["stores"][1]["mirror"].is_null());
  EXPECT_TRUE(j["stores"][0]["log_shipping"].is_null());
  EXPECT_EQ(j["stores"][5]["log_shipping"]["interval_s"], 5);
  const auto& pool1 = j["pools"][0];
  EXPECT_EQ(pool1["role"], "frontend");
  EXPECT_EQ(pool1["cms"], true);
  EXPECT_EQ(pool1["servers"][1]["fqdn"], "fe1b.example.test");
  EXPECT_FALSE(pool1.contains("next_hop"));
  const auto& edge1 = j["pools"][3];
  EXPECT_EQ(edge1["next_hop"], "pool1.example.test");
  EXPECT_EQ(edge1["federation"], true);
  EXPECT_FALSE(edge1.contains("store"));
  EXPECT_EQ(j["users"][0]["name"], "alice");
  EXPECT_FALSE(j["users"][0].contains("password"));
  EXPECT_EQ(j["rooms"][0]["category"], "general");
}

}  // namespace
}  // namespace tandem::topology
