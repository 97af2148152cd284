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
  // Principal sql1 writable and seen at `t`; mirror sql1m seen as a standby just before, then
  // not reachable.
  void principalSeenMirrorLost(Time t) {
    book.observe("sql1m", true, false, 1, false, t - 1s);
    book.observe("sql1", true, true, 1, true, t);
    book.observe("sql1m", false, false, 0, false, t);
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
  book.observe("sql1", true, true, 1, true, t0);
  book.observe("sql1m", true, true, 2, true, t0);
  auto d = book.requestExposure("sql1", "sql1m", t0 + 1s);
  EXPECT_FALSE(d.granted);
  EXPECT_NE(d.reason.find("rejoin"), std::string::npos) << d.reason;
}

TEST_F(WitnessBookTest, NeverVotesForAMirrorOfAnExposedPrincipal) {
  principalSeenMirrorLost(t0);
  ASSERT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 1s).granted);
  // The principal dies; the mirror (partitioned, thinks it was SYNCHRONIZED) asks for a vote.
  auto v = book.voteFailover("sql1", "sql1m", t0 + 30s);
  EXPECT_FALSE(v.granted);
  EXPECT_NE(v.reason.find("may lack commits"), std::string::npos) << v.reason;
}

TEST_F(WitnessBookTest, VotesForFailoverOnlyWhenItLostThePrincipalToo) {
  book.observe("sql1", true, true, 1, true, t0);
  book.observe("sql1m", true, false, 1, false, t0);
  EXPECT_FALSE(book.voteFailover("sql1", "sql1m", t0 + 1s).granted);  // still sees it
  auto v = book.voteFailover("sql1", "sql1m", t0 + 4s);
  EXPECT_TRUE(v.granted) << v.reason;
  EXPECT_EQ(book.statusOf("sql1", t0 + 4s)["voted_for"], "sql1m");
}

TEST_F(WitnessBookTest, AVoteBlocksExposureOfTheOldPrincipalUntilItRejoins) {
  book.observe("sql1", true, true, 1, true, t0);
  ASSERT_TRUE(book.voteFailover("sql1", "sql1m", t0 + 5s).granted);
  // The old principal reappears to the witness before the promotion is visible.
  book.observe("sql1", true, true, 1, true, t0 + 6s);
  book.observe("sql1m", false, false, 0, false, t0 + 6s);
  auto d = book.requestExposure("sql1", "sql1m", t0 + 6s);
  EXPECT_FALSE(d.granted);
  EXPECT_NE(d.reason.find("voted"), std::string::npos) << d.reason;
  // It rejoins as a standby: the vote is settled, and it may later serve exposed again.
  EXPECT_TRUE(book.observe("sql1", true, false, 2, false, t0 + 20s));
  book.observe("sql1", true, true, 3, true, t0 + 40s);  // failed back later
  book.observe("sql1m", true, false, 3, false, t0 + 40s);
  EXPECT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 40s).granted);
}

TEST_F(WitnessBookTest, ClearingExposureAllowsAutomaticFailoverAgain) {
  principalSeenMirrorLost(t0);
  ASSERT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 1s).granted);
  auto c = book.clearExposure("sql1", "sql1m");
  EXPECT_TRUE(c.changed);
  EXPECT_FALSE(book.statusOf("sql1", t0 + 1s)["exposed"].get<bool>());
  EXPECT_TRUE(book.voteFailover("sql1", "sql1m", t0 + 10s).granted);
}

TEST_F(WitnessBookTest, RecordsSurviveARestartOfTheWitness) {
  principalSeenMirrorLost(t0);
  ASSERT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 1s).granted);
  WitnessBook restarted;
  restarted.loadRecords(book.recordsJson(), t0 + 100s);
  EXPECT_TRUE(restarted.statusOf("sql1", t0 + 100s)["exposed"].get<bool>());
  EXPECT_FALSE(restarted.voteFailover("sql1", "sql1m", t0 + 200s).granted);
  restarted.loadRecords(nlohmann::json("garbage"), t0);  // unreadable: no records, no crash
  EXPECT_FALSE(restarted.statusOf("sql1", t0)["exposed"].get<bool>());
}

TEST_F(WitnessBookTest, NoVoteForAPrincipalNotSeenSinceTheWitnessStarted) {
  // A witness that never saw the principal cannot tell whether it committed without its
  // mirror (a grant may have been lost with its disk): no vote, however long it waits.
  EXPECT_FALSE(book.voteFailover("sql1", "sql1m", t0).granted);
  auto v = book.voteFailover("sql1", "sql1m", t0 + 60s);
  EXPECT_FALSE(v.granted);
  EXPECT_NE(v.reason.find("since it started"), std::string::npos) << v.reason;
}

TEST(WitnessBookWindowTest, TheVoteWindowIsTheWitnessesOwnNotTheCallers) {
  const Time t0 = std::chrono::steady_clock::now();
  WitnessBook book(9s);  // partner timeout 10 s
  book.observe("sql1", true, true, 1, true, t0);
  EXPECT_FALSE(book.voteFailover("sql1", "sql1m", t0 + 5s).granted);
  EXPECT_TRUE(book.voteFailover("sql1", "sql1m", t0 + 9s).granted);
  EXPECT_EQ(WitnessBook(100ms).voteWindow(), WitnessBook::kSeenWithin);  // never below
}

TEST_F(WitnessBookTest, NeverVotesOutAPrincipalLastSeenCommittingWithoutItsMirror_21) {
  // sql1 was writable with synchronous_standby_names empty (exposed, or alone after a failover):
  // sql1m may lack commits, whatever the records say.
  book.observe("sql1", true, true, 1, false, t0);
  auto v = book.voteFailover("sql1", "sql1m", t0 + 30s);
  EXPECT_FALSE(v.granted);
  EXPECT_NE(v.reason.find("without"), std::string::npos) << v.reason;
}

TEST_F(WitnessBookTest, ARevertedWitnessGrantsNoExposureToTheOldPrincipal_21) {
  // The witness voted for sql1m, then lost that record (disk reverted) and restarted. The old
  // principal sql1 is back where the witness sees it; sql1m (the new principal) is not seen.
  book.observe("sql1", true, true, 1, true, t0);
  ASSERT_TRUE(book.voteFailover("sql1", "sql1m", t0 + 5s).granted);
  WitnessBook reverted;
  reverted.observe("sql1", true, true, 1, true, t0 + 10s);
  reverted.observe("sql1m", false, false, 0, false, t0 + 10s);
  auto d = reverted.requestExposure("sql1", "sql1m", t0 + 10s);
  EXPECT_FALSE(d.granted);
  EXPECT_NE(d.reason.find("cannot tell"), std::string::npos) << d.reason;
  // Once it sees sql1m as a standby, it knows sql1m was not promoted.
  reverted.observe("sql1m", true, false, 1, false, t0 + 11s);
  EXPECT_TRUE(reverted.requestExposure("sql1", "sql1m", t0 + 11s).granted);
}

TEST_F(WitnessBookTest, LoadedRecordsRefuseButNeverGrant_21) {
  // sql1m was elected here: it may serve exposed while sql1 is gone ...
  book.observe("sql1", true, true, 1, true, t0);
  ASSERT_TRUE(book.voteFailover("sql1", "sql1m", t0 + 5s).granted);
  book.observe("sql1m", true, true, 2, false, t0 + 6s);
  EXPECT_TRUE(book.requestExposure("sql1m", "sql1", t0 + 6s).granted);
  // ... but a restarted witness only has that vote from disk: it may be stale (a later vote for
  // sql1 lost), so it refuses until it sees sql1 as a standby.
  WitnessBook restarted;
  restarted.loadRecords(book.recordsJson(), t0 + 7s);
  restarted.observe("sql1m", true, true, 2, false, t0 + 7s);
  EXPECT_FALSE(restarted.requestExposure("sql1m", "sql1", t0 + 7s).granted);
  // The loaded vote still refuses exposure of the old principal.
  restarted.observe("sql1", true, true, 1, true, t0 + 8s);
  restarted.observe("sql1m", true, false, 2, false, t0 + 8s);
  EXPECT_FALSE(restarted.requestExposure("sql1", "sql1m", t0 + 8s).granted);
}

TEST_F(WitnessBookTest, AnOperatorsPromotionIsRecordedAsAVote_21) {
  principalSeenMirrorLost(t0);
  ASSERT_TRUE(book.requestExposure("sql1", "sql1m", t0 + 1s).granted);
  // `db failover --force`: the operator accepts that sql1m lacks the exposed commits.
  auto d = book.recordPromotion("sql1", "sql1m", t0 + 2s);
  EXPECT_TRUE(d.granted);
  EXPECT_TRUE(d.changed);
  EXPECT_EQ(book.statusOf("sql1", t0 + 2s)["voted_for"], "sql1m");
  EXPECT_FALSE(book.statusOf("sql1", t0 + 2s)["exposed"].get<bool>());
  auto e = book.requestExposure("sql1", "sql1m", t0 + 2s);
  EXPECT_FALSE(e.granted);
  EXPECT_NE(e.reason.find("voted"), std::string::npos) << e.reason;
}

}  // namespace
}  // namespace tandem::sqlagent
