// Tests of the witness's decisions (WitnessBook): exposure grants and failover votes never both
// hold for one pair, and a mirror that may lack commits is never voted for.
#include "sqlagent/internal/witness.h"

#include <gtest/gtest.h>

namespace tandem::sqlagent {
namespace {

using namespace std::chrono_literals;
using Time = WitnessBook::Time;

class WitnessBookTest : public ::testing::Test {
 protected:
  Time t0 = std::chrono::steady_clock::now();
  WitnessBook book;
  // Principal sql1 writable and seen at `t`; mirror sql1m not reachable.
  void principalSeenMirrorLost(Time t) {
    book.observe("sql1", true, true, 1, t);
    book.observe("sql1m", false, false, 0, t);
  }
};

TEST_F(WitnessBookTest, GrantsExposureToAPrincipalItSeesWhoseMirrorIsGone) {
  principalSeenMirrorLost(t0);
  auto d = book.requestExposure("sql1", "sql1m", t0 + 1s);
  EXPECT_TRUE(d.granted) << d.reason;
  EXPECT_TRUE(d.changed);
  EXPECT_TRUE(book.statusOf("sql1", t0 + 1s)["exposed"].get<bool>());
  auto again = book.requestExposure("sql1", "sql1m", t0 + 2s);
  EXPECT_TRUE(again.granted);
  EXPECT_FALSE(again.changed);  // renewal: nothing to persist
}

TEST_F(WitnessBookTest, RefusesExposureWhenItDoesNotSeeThePrincipal) {
  principalSeenMirrorLost(t0);
  auto d = book.requestExposure("sql1", "sql1m", t0 + 3s);  // last seen 3 s ago
  EXPECT_FALSE(d.granted);
  EXPECT_NE(d.reason.find("does not see"), std::string::npos) << d.reason;
  WitnessBook fresh;  // never saw it at all
  EXPECT_FALSE(fresh.requestExposure("sql1", "sql1m", t0).granted);
}

TEST_F(WitnessBookTest, RefusesExposureWhenThePartnerIsWritable) {
  book.observe("sql1", true, true, 1, t0);
  book.observe("sql1m", true, true, 2, t0);
  auto d = book.requestExposure("sql1", "sql1m", t0 + 1s);
  EXPECT_FALSE(d.granted);
  EXPECT_NE(d.reason.find("rejoin"), std::string::npos) << d.reason;
}

TEST_F(WitnessBookTest, NeverVotesForAMirrorOfAnExposedPrincipal) {
  principalSeenMirrorLost(t0);
  ASSERT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 1s).granted);
  // The principal dies; the mirror (partitioned, thinks it was SYNCHRONIZED) asks for a vote.
  auto v = book.voteFailover("sql1", "sql1m", 2s, t0 + 30s);
  EXPECT_FALSE(v.granted);
  EXPECT_NE(v.reason.find("may lack commits"), std::string::npos) << v.reason;
}

TEST_F(WitnessBookTest, VotesForFailoverOnlyWhenItLostThePrincipalToo) {
  book.observe("sql1", true, true, 1, t0);
  book.observe("sql1m", true, false, 1, t0);
  EXPECT_FALSE(book.voteFailover("sql1", "sql1m", 2s, t0 + 1s).granted);  // still sees it
  auto v = book.voteFailover("sql1", "sql1m", 2s, t0 + 4s);
  EXPECT_TRUE(v.granted) << v.reason;
  EXPECT_EQ(book.statusOf("sql1", t0 + 4s)["voted_for"], "sql1m");
}

TEST_F(WitnessBookTest, AVoteBlocksExposureOfTheOldPrincipalUntilItRejoins) {
  book.observe("sql1", true, true, 1, t0);
  ASSERT_TRUE(book.voteFailover("sql1", "sql1m", 2s, t0 + 5s).granted);
  // The old principal reappears to the witness before the promotion is visible.
  book.observe("sql1", true, true, 1, t0 + 6s);
  book.observe("sql1m", false, false, 0, t0 + 6s);
  auto d = book.requestExposure("sql1", "sql1m", t0 + 6s);
  EXPECT_FALSE(d.granted);
  EXPECT_NE(d.reason.find("voted"), std::string::npos) << d.reason;
  // It rejoins as a standby: the vote is settled, and it may later serve exposed again.
  EXPECT_TRUE(book.observe("sql1", true, false, 2, t0 + 20s));
  book.observe("sql1", true, true, 3, t0 + 40s);  // failed back later
  EXPECT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 40s).granted);
}

TEST_F(WitnessBookTest, ClearingExposureAllowsAutomaticFailoverAgain) {
  principalSeenMirrorLost(t0);
  ASSERT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 1s).granted);
  auto c = book.clearExposure("sql1", "sql1m");
  EXPECT_TRUE(c.changed);
  EXPECT_FALSE(book.statusOf("sql1", t0 + 1s)["exposed"].get<bool>());
  EXPECT_TRUE(book.voteFailover("sql1", "sql1m", 2s, t0 + 10s).granted);
}

TEST_F(WitnessBookTest, RecordsSurviveARestartOfTheWitness) {
  principalSeenMirrorLost(t0);
  ASSERT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 1s).granted);
  WitnessBook restarted;
  restarted.loadRecords(book.recordsJson(), t0 + 100s);
  EXPECT_TRUE(restarted.statusOf("sql1", t0 + 100s)["exposed"].get<bool>());
  EXPECT_FALSE(restarted.voteFailover("sql1", "sql1m", 2s, t0 + 200s).granted);
  restarted.loadRecords(nlohmann::json("garbage"), t0);  // unreadable: no records, no crash
  EXPECT_FALSE(restarted.statusOf("sql1", t0)["exposed"].get<bool>());
}

TEST_F(WitnessBookTest, NoVoteOnNoInformation) {
  // A witness that just started watching has not lost the principal: it has not looked yet.
  EXPECT_FALSE(book.voteFailover("sql1", "sql1m", 2s, t0).granted);
  EXPECT_TRUE(book.voteFailover("sql1", "sql1m", 2s, t0 + 3s).granted);
}

}  // namespace
}  // namespace tandem::sqlagent
