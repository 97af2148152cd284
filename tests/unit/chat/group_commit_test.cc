// Group commit and MAM queries against a real PostgreSQL.
#include "chat/group_commit.h"

#include <gtest/gtest.h>

#include <future>

#include "chat/archive.h"
#include "chat/schema.h"
#include "pg_fixture.h"

namespace tandem::chat {
namespace {

using testing::PgCluster;

StoredMessage makeMessage(const std::string& room, int i, int64_t ts_us) {
  StoredMessage m;
  m.room = room;
  m.stanza_id = room + "-id-" + std::to_string(i);
  m.sender = "alice@example.test";
  m.nick = i % 2 ? "alice" : "bob";
  m.body = "message " + std::to_string(i);
  m.stanza = "<message type='groupchat'><body>" + m.body + "</body></message>";
  m.ts_us = ts_us;
  return m;
}

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PgCluster::instance()->started()) << "the test PostgreSQL cluster did not start";
    db_ = PgCluster::instance()->freshDatabase("mgc");
    conninfo_ = PgCluster::instance()->conninfo(db_);
    auto c = store::Connection::open(conninfo_);
    ASSERT_TRUE(c.has_value()) << c.error().message();
    conn_ = std::move(*c);
    Status st = applyMgcSchema(*conn_);
    ASSERT_TRUE(st.isOk()) << st.message();
  }
  std::string db_, conninfo_;
  std::unique_ptr<store::Connection> conn_;
};

TEST_F(ArchiveTest, StoreBatchAssignsIncreasingSeqsAndIsIdempotent) {
  std::vector<StoredMessage> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(makeMessage("ops", i, 1000 + i));
  ASSERT_TRUE(GroupCommitWriter::storeBatch(*conn_, "chat1a", batch).isOk());
  for (size_t i = 1; i < batch.size(); ++i) EXPECT_GT(batch[i].seq, batch[i - 1].seq);
  // A resend after an unknown commit outcome stores nothing twice and returns the same seqs.
  auto again = batch;
  for (auto& m : again) m.seq = 0;
  ASSERT_TRUE(GroupCommitWriter::storeBatch(*conn_, "chat1a", again).isOk());
  for (size_t i = 0; i < batch.size(); ++i) EXPECT_EQ(again[i].seq, batch[i].seq);
  EXPECT_EQ(*countMessages(*conn_, "ops"), 5);
}

TEST_F(ArchiveTest, WriterBatchesEverythingQueuedDuringACommit) {
  store::ConnectionPool pool(conninfo_, 2);
  GroupCommitWriter writer(pool, {.writer = "chat1a"});
  constexpr int kN = 2000;
  std::vector<std::promise<int64_t>> seqs(kN);
  for (int i = 0; i < kN; ++i) {
    writer.submit(makeMessage("load", i, 5000 + i), [&seqs, i](const Status& st, const StoredMessage& m) {
      seqs[i].set_value(st.isOk() ? m.seq : -1);
    });
  }
  int64_t prev = 0;
  for (int i = 0; i < kN; ++i) {
    int64_t s = seqs[i].get_future().get();
    ASSERT_GT(s, prev) << "message " << i << " stored out of order or failed";
    prev = s;
  }
  auto stats = writer.stats();
  EXPECT_EQ(stats.messages, static_cast<uint64_t>(kN));
  EXPECT_LT(stats.batches, static_cast<uint64_t>(kN) / 4) << "expected many messages per commit";
  EXPECT_GT(stats.max_batch_size, 1u);
  EXPECT_EQ(*countMessages(*conn_, "load"), kN);
}

TEST_F(ArchiveTest, WriterFailsMessagesWhenTheStoreStaysDown) {
  store::ConnectionPool pool(store::connectionString({"/var/tmp/no-such-socket-dir"}, "mgc", "x"),
                             1);
  GroupCommitWriter writer(pool, {.writer = "chat1a", .retry_for = std::chrono::milliseconds(300)});
  std::promise<Status> done;
  writer.submit(makeMessage("ops", 1, 1), [&](const Status& st, const StoredMessage&) {
    done.set_value(st);
  });
  Status st = done.get_future().get();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("not stored"), std::string::npos) << st.message();
}

class MamTest : public ArchiveTest {
 protected:
  void SetUp() override {
    ArchiveTest::SetUp();
    std::vector<StoredMessage> batch;
    for (int i = 0; i < 25; ++i) batch.push_back(makeMessage("r", i, 1'700'000'000'000'000 + i * 1'000'000));
    batch.push_back(makeMessage("other", 99, 1'700'000'000'000'000));
    ASSERT_TRUE(GroupCommitWriter::storeBatch(*conn_, "chat1a", batch).isOk());
  }
  std::vector<std::string> ids(const ArchivePage& p) {
    std::vector<std::string> out;
    for (const auto& m : p.messages) out.push_back(m.stanza_id);
    return out;
  }
};

TEST_F(MamTest, PagesForwardWithAfterUntilComplete) {
  ArchiveQuery q{.room = "r", .max = 10};
  auto p1 = queryArchive(*conn_, q);
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->count, 25);
  EXPECT_FALSE(p1->complete);
  ASSERT_EQ(p1->messages.size(), 10u);
  EXPECT_EQ(p1->messages.front().stanza_id, "r-id-0");
  q.after_id = p1->messages.back().stanza_id;
  auto p2 = queryArchive(*conn_, q);
  q.after_id = p2->messages.back().stanza_id;
  auto p3 = queryArchive(*conn_, q);
  ASSERT_TRUE(p3.has_value());
  EXPECT_TRUE(p3->complete);
  EXPECT_EQ(p3->messages.size(), 5u);
  EXPECT_EQ(p3->messages.back().stanza_id, "r-id-24");
}

TEST_F(MamTest, LastPageAndBeforePageBackwards) {
  ArchiveQuery q{.room = "r", .last_page = true, .max = 10};
  auto last = queryArchive(*conn_, q);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->messages.front().stanza_id, "r-id-15");
  EXPECT_EQ(last->messages.back().stanza_id, "r-id-24");
  EXPECT_FALSE(last->complete);
  ArchiveQuery back{.room = "r", .before_id = "r-id-5", .max = 10};
  auto b = queryArchive(*conn_, back);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(ids(*b), (std::vector<std::string>{"r-id-0", "r-id-1", "r-id-2", "r-id-3", "r-id-4"}));
  EXPECT_TRUE(b->complete);
}

TEST_F(MamTest, FiltersByTimeAndNick) {
  ArchiveQuery q{.room = "r",
                 .start_us = 1'700'000'000'000'000 + 10 * 1'000'000,
                 .end_us = 1'700'000'000'000'000 + 14 * 1'000'000,
                 .with_nick = "alice"};
  auto p = queryArchive(*conn_, q);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(ids(*p), (std::vector<std::string>{"r-id-11", "r-id-13"}));
  EXPECT_EQ(p->messages[0].ts_us, 1'700'000'000'000'000 + 11 * 1'000'000);
}

TEST_F(MamTest, UnknownRsmIdIsItemNotFound) {
  ArchiveQuery q{.room = "r", .after_id = "other-id-99"};
  auto p = queryArchive(*conn_, q);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code(), StatusCode::kInvalidArgument);
}

TEST_F(MamTest, RecentHistoryReturnsNewestOldestFirst) {
  auto h = recentHistory(*conn_, "r", 3);
  ASSERT_TRUE(h.has_value());
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].stanza_id, "r-id-22");
  EXPECT_EQ((*h)[2].stanza_id, "r-id-24");
}

TEST(Timestamp, FormatsAndParsesXep0082) {
  int64_t t = 1'700'000'000'123'456;
  EXPECT_EQ(formatTimestamp(t), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(parseTimestamp(formatTimestamp(t)), t);
  EXPECT_EQ(parseTimestamp("2023-11-14T22:13:20Z"), 1'700'000'000'000'000);
  EXPECT_EQ(parseTimestamp("2023-11-14T23:13:20+01:00"), 1'700'000'000'000'000);
  EXPECT_FALSE(parseTimestamp("yesterday").has_value());
  EXPECT_FALSE(parseTimestamp("2023-11-14T22:13:20").has_value());
}

}  // namespace
}  // namespace tandem::chat
