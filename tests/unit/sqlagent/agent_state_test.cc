// Tests of the sqlagent's persisted state, status documents and WAL-name helpers.
#include <gtest/gtest.h>

#include "sqlagent/client.h"
#include "sqlagent/internal/agent.h"

namespace tandem::sqlagent {
namespace {

TEST(PersistedTest, RoundTripsEveryFieldSoARestartResumesTheLastRole) {
  Persisted p;
  p.role = kMirror;
  p.partner = "sql1";
  p.principal = "sql1";
  p.synchronous = true;
  p.exposed = true;
  p.mirror_removed = true;
  p.timeline = 3;
  p.ls_from = "pc1";
  p.ls_removed = true;
  p.self_fenced = true;
  Persisted q = Persisted::fromJson(p.toJson());
  EXPECT_EQ(q.toJson(), p.toJson());
}

TEST(PersistedTest, MissingFieldsTakeDefaults) {
  Persisted q = Persisted::fromJson(nlohmann::json{{"role", "Principal"}});
  EXPECT_EQ(q.role, "Principal");
  EXPECT_FALSE(q.synchronous);
  EXPECT_TRUE(q.partner.empty());
}

TEST(WalNameTest, TimelineIsTheFirstEightHexDigits) {
  EXPECT_EQ(timelineOfWalName("000000030000000000000005"), 3);
  EXPECT_EQ(timelineOfWalName("0000000A"), 10);
  EXPECT_EQ(timelineOfWalName("xyz"), 0);
}

TEST(ClientDocumentsTest, StatusParsesKnownFieldsAndKeepsTheRawDocument) {
  auto s = agentStatusFromJson({{"store", "sql1"}, {"role", "Principal"}, {"pg_up", true},
                                {"timeline", 2}, {"mirror_status", "SYNCHRONIZED"},
                                {"lag_bytes", 10}, {"synchronous", true}, {"extra", 1}});
  EXPECT_EQ(s.store, "sql1");
  EXPECT_EQ(s.role, "Principal");
  EXPECT_TRUE(s.pg_up);
  EXPECT_EQ(s.timeline, 2);
  EXPECT_EQ(s.mirror_status, "SYNCHRONIZED");
  EXPECT_EQ(s.lag_bytes, 10);
  EXPECT_EQ(s.raw.value("extra", 0), 1);
  auto bad = agentStatusFromJson({{"timeline", "not a number"}});
  EXPECT_EQ(bad.timeline, 0);
}

TEST(ClientDocumentsTest, LogShippingStatusParses) {
  auto s = logShippingStatusFromJson({{"stanza", "pc1"}, {"last_copied", "000000010000000000000007"},
                                      {"copy_job", true}, {"lag_seconds", 1.5}});
  EXPECT_EQ(s.stanza, "pc1");
  EXPECT_EQ(s.last_copied, "000000010000000000000007");
  EXPECT_TRUE(s.copy_job);
  EXPECT_DOUBLE_EQ(s.lag_seconds, 1.5);
}

TEST(ClientTest, UnreachableAgentIsUnavailable) {
  rpc::ClientOptions o;
  o.token = "t";
  o.timeout = std::chrono::milliseconds(500);
  Client c("127.13.255.9", o);
  auto st = c.status();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), StatusCode::kUnavailable) << st.error().message();
}

}  // namespace
}  // namespace tandem::sqlagent
