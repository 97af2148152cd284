// Archive order (#14): `seq` is assigned in commit order per room, and MAM pages over messages
// of one group commit (one timestamp) are contiguous at every page size, both directions.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "chat/archive.h"
#include "chat/group_commit.h"
#include "chat/schema.h"
#include "pg_fixture.h"

namespace tandem::chat {
namespace {

using testing::PgCluster;

StoredMessage sameTimeMessage(const std::string& room, int i) {
  StoredMessage m;
  m.room = room;
  m.stanza_id = "s" + std::to_string(i * 7919 % 1000) + "-" + std::to_string(i);  // not sorted
  m.sender = "alice@example.test";
  m.nick = "alice";
  m.body = "b" + std::to_string(i);
  m.stanza = "<message type='groupchat'><body>" + m.body + "</body></message>";
  m.ts_us = 1'700'000'000'000'000;  // every message: one group commit, one timestamp
  return m;
}

class ArchiveOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PgCluster::instance()->started()) << "the test PostgreSQL cluster did not start";
    conninfo_ = PgCluster::instance()->conninfo(PgCluster::instance()->freshDatabase("mgc"));
    conn_ = open();
    Status st = applyMgcSchema(*conn_);
    ASSERT_TRUE(st.isOk()) << st.message();
  }
  std::unique_ptr<store::Connection> open() {
    auto c = store::Connection::open(conninfo_);
    EXPECT_TRUE(c.has_value()) << c.error().message();
    return c ? std::move(*c) : nullptr;
  }
  // Pages through `room` with `max` per page; backward pages start from the last page.
  std::vector<std::string> readAll(const std::string& room, size_t max, bool backward) {
    std::vector<std::vector<std::string>> pages;
    std::string cursor;
    for (int guard = 0; guard < 10000; ++guard) {
      ArchiveQuery q{.room = room, .max = max};
      if (backward) {
        q.before_id = cursor;
        q.last_page = cursor.empty();
      } else {
        q.after_id = cursor;
      }
      auto p = queryArchive(*conn_, q);
      EXPECT_TRUE(p.has_value());
      if (!p) break;
      std::vector<std::string> bodies;
      for (const auto& m : p->messages) bodies.push_back(m.body);
      pages.push_back(bodies);
      if (p->complete || p->messages.empty()) break;
      cursor = backward ? p->messages.front().stanza_id : p->messages.back().stanza_id;
    }
    if (backward) std::reverse(pages.begin(), pages.end());
    std::vector<std::string> out;
    for (const auto& p : pages) out.insert(out.end(), p.begin(), p.end());
    return out;
  }
  std::string conninfo_;
  std::unique_ptr<store::Connection> conn_;
};

TEST_F(ArchiveOrderTest, Regression14PagesOverOneGroupCommitAreContiguousAtEverySize) {
  std::vector<std::string> expected;
  for (int batch_no = 0; batch_no < 3; ++batch_no) {
    std::vector<StoredMessage> batch;
    for (int i = 0; i < 40; ++i) {
      int n = batch_no * 40 + i;
      batch.push_back(sameTimeMessage("r", n));
      expected.push_back("b" + std::to_string(n));
    }
    ASSERT_TRUE(GroupCommitWriter::storeBatch(*conn_, "chat1a", batch).isOk());
  }
  for (size_t max : {1, 7, 10, 50, 250}) {
    EXPECT_EQ(readAll("r", max, false), expected) << "forward, max " << max;
    EXPECT_EQ(readAll("r", max, true), expected) << "backward, max " << max;
  }
}

TEST_F(ArchiveOrderTest, Regression14SecondWriterOfARoomWaitsForTheFirstsCommit) {
  // Writer A's batch is inside an open transaction (as if its COMMIT were slow); writer B, a
  // second server briefly holding the same room, must not draw a seq before A commits.
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->execAll("BEGIN").isOk());
  std::vector<StoredMessage> first{sameTimeMessage("r", 1)};
  ASSERT_TRUE(GroupCommitWriter::storeBatch(*a, "chat1a", first).isOk());
  std::vector<StoredMessage> second{sameTimeMessage("r", 2)};
  auto later = std::async(std::launch::async, [&] {
    return GroupCommitWriter::storeBatch(*b, "chat1b", second);
  });
  // B is still waiting for A's lock (a wait long enough that an unblocked insert would have
  // finished; a slow machine can only make this check pass, not fail, wrongly).
  EXPECT_EQ(later.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout);
  ASSERT_TRUE(a->execAll("COMMIT").isOk());
  ASSERT_TRUE(later.get().isOk());
  EXPECT_GT(second[0].seq, first[0].seq);
  // Another room is not held up by A's open transaction.
  ASSERT_TRUE(a->execAll("BEGIN").isOk());
  std::vector<StoredMessage> third{sameTimeMessage("r", 3)};
  ASSERT_TRUE(GroupCommitWriter::storeBatch(*a, "chat1a", third).isOk());
  std::vector<StoredMessage> other{sameTimeMessage("other", 4)};
  EXPECT_TRUE(GroupCommitWriter::storeBatch(*b, "chat1b", other).isOk());
  ASSERT_TRUE(a->execAll("COMMIT").isOk());
}

}  // namespace
}  // namespace tandem::chat
