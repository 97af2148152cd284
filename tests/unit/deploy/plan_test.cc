// Which processes deploy starts, in which order, with which command lines.
#include "deploy/plan.h"

#include <gtest/gtest.h>

#include "topology/loader.h"

namespace tandem::deploy {
namespace {

topology::Topology load(const std::string& name) {
  auto t = topology::loadValidTopology(std::string(TANDEM_SOURCE_DIR) + "/examples/" + name);
  EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().message());
  return t ? *t : topology::Topology{};
}

TEST(PlanTest, StartsStoresThenFrontEndsThenChatAndComplianceThenEdges) {
  auto plan = planProcesses(load("two-site.yaml"), "/var/lib/tandem", "/usr/bin/tandemd");
  ASSERT_FALSE(plan.empty());
  for (size_t i = 1; i < plan.size(); ++i) {
    EXPECT_LE(static_cast<int>(plan[i - 1].phase), static_cast<int>(plan[i].phase))
        << plan[i - 1].name << " before " << plan[i].name;
  }
  EXPECT_EQ(plan.front().role, "sqlagent");
  EXPECT_EQ(plan.back().role, "edge");
  int compliance = 0;
  for (const auto& p : plan) compliance += p.role == "compliance";
  EXPECT_EQ(compliance, 1);
}

TEST(PlanTest, CommandLinesFollowTheDaemonContract) {
  auto plan = planProcesses(load("quickstart.yaml"), "/srv/t", "/b/tandemd");
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[0].argv, (std::vector<std::string>{"/b/tandemd", "--role", "sqlagent",
                                                    "--topology", "/srv/t/topology.yaml",
                                                    "--state-dir", "/srv/t", "--store", "sql1"}));
  EXPECT_EQ(plan[0].log, "/srv/t/stores/sql1/agent.log");
  EXPECT_EQ(plan[1].name, "fe1a.example.test");
  EXPECT_EQ(plan[1].log, "/srv/t/servers/fe1a.example.test/server.log");
  const auto& c = plan[3];
  EXPECT_EQ(c.name, complianceName("chat.example.test"));
  EXPECT_EQ(c.address, plan[2].address);  // on the first chat server's address
  EXPECT_FALSE(c.has_admin);
  EXPECT_TRUE(c.ports.empty());
  EXPECT_EQ(c.argv.back(), "chat1a.example.test");
}

TEST(PlanTest, WitnessOnlyStoresBindNoPostgresPort) {
  auto plan = planProcesses(load("two-site.yaml"), "/s", "tandemd");
  for (const auto& p : plan) {
    if (p.name == "w1") EXPECT_EQ(p.ports, std::vector<int>{8443});
    if (p.name == "sql1") EXPECT_EQ(p.ports, (std::vector<int>{8443, 5432}));
  }
}

}  // namespace
}  // namespace tandem::deploy
