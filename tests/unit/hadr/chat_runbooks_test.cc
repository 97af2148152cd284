// Pure parts of the chat runbooks: which servers may be active after failover/failback, and the
// CMS setting keys they write.
#include "hadr/chat_runbooks.h"

#include <gtest/gtest.h>

namespace tandem::hadr {
namespace {

topology::Topology twoSites(bool site2_low_latency) {
  topology::Topology t;
  t.sites = {{"Site1", {}, 0}, {"Site2", site2_low_latency ? std::vector<std::string>{"Site1"}
                                                           : std::vector<std::string>{}, 0}};
  topology::Pool chat;
  chat.fqdn = "chat.example.test";
  chat.role = topology::PoolRole::kChat;
  chat.site = "Site1";
  chat.servers = {{"chat1a.example.test", "127.0.1.30", "Site1", 0},
                  {"chat2a.example.test", "127.0.2.30", "Site2", 0},
                  {"chat1b.example.test", "127.0.1.31", "", 0}};  // site defaults to the pool's
  t.pools = {chat};
  return t;
}

TEST(EligibleChatServers, AreTheServersInTheNewPrimarysSite) {
  auto t = twoSites(false);
  EXPECT_EQ(eligibleChatServers(t, t.pools[0], "Site2"),
            (std::vector<std::string>{"chat2a.example.test"}));
  EXPECT_EQ(eligibleChatServers(t, t.pools[0], "Site1"),
            (std::vector<std::string>{"chat1a.example.test", "chat1b.example.test"}));
}

TEST(EligibleChatServers, IncludeServersInASiteMarkedLowLatencyToIt) {
  auto t = twoSites(true);
  EXPECT_EQ(eligibleChatServers(t, t.pools[0], "Site1"),
            (std::vector<std::string>{"chat1a.example.test", "chat2a.example.test",
                                      "chat1b.example.test"}));
  // low_latency_to is one-way: Site2's primary does not accept Site1's servers.
  EXPECT_EQ(eligibleChatServers(t, t.pools[0], "Site2"),
            (std::vector<std::string>{"chat2a.example.test"}));
}

TEST(ChatSettingKeys, MatchTheArchitectureContract) {
  EXPECT_EQ(chatStateKey("chat.example.test"), "chat.chat.example.test.state");
  EXPECT_EQ(chatActiveServersKey("chat.example.test"), "chat.chat.example.test.active_servers");
  EXPECT_EQ(chatFrontendPoolKey("chat.example.test"), "chat.chat.example.test.frontend_pool");
}

}  // namespace
}  // namespace tandem::hadr
