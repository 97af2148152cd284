// Compliance feed (exactly once through the per-writer cursor) and export (files, purge,
// recovery of a file renamed before a crash) against a real PostgreSQL.
#include "chat/compliance.h"

#include <gtest/gtest.h>

#include <fstream>

#include "chat/group_commit.h"
#include "chat/schema.h"
#include "common/files.h"
#include "common/process.h"
#include "pg_fixture.h"

namespace tandem::chat {
namespace {

using testing::PgCluster;

class ComplianceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PgCluster::instance()->started());
    auto m = store::Connection::open(PgCluster::instance()->conninfo(
        PgCluster::instance()->freshDatabase("mgc")));
    auto c = store::Connection::open(PgCluster::instance()->conninfo(
        PgCluster::instance()->freshDatabase("mgccomp")));
    ASSERT_TRUE(m && c);
    mgc_ = std::move(*m);
    comp_ = std::move(*c);
    ASSERT_TRUE(applyMgcSchema(*mgc_).isOk());
    ASSERT_TRUE(applyComplianceSchema(*comp_).isOk());
    dir_ = "/var/tmp/tandem-chat-unit-export-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    (void)runProcess({"rm", "-rf", dir_});
  }
  void TearDown() override { (void)runProcess({"rm", "-rf", dir_}); }
  void store(const std::string& writer, int from, int to) {
    std::vector<StoredMessage> batch;
    for (int i = from; i < to; ++i) {
      StoredMessage m;
      m.room = "ops";
      m.stanza_id = writer + "-" + std::to_string(i);
      m.sender = "alice@example.test";
      m.nick = "alice";
      m.body = "body " + std::to_string(i);
      m.stanza = "<message/>";
      m.ts_us = 1'700'000'000'000'000 + i;
      batch.push_back(m);
    }
    ASSERT_TRUE(GroupCommitWriter::storeBatch(*mgc_, writer, batch).isOk());
  }
  long queued() { return std::stol(comp_->exec("SELECT count(*) FROM queue")->rows[0][0]); }
  std::unique_ptr<store::Connection> mgc_, comp_;
  std::string dir_;
};

TEST_F(ComplianceTest, FeedCopiesEachWritersMessagesOnce) {
  store("chat1a", 0, 10);
  store("chat2a", 0, 5);
  EXPECT_EQ(*feedCompliance(*mgc_, *comp_, "chat1a", 4), 4u);
  EXPECT_EQ(*feedCompliance(*mgc_, *comp_, "chat1a"), 6u);
  EXPECT_EQ(*feedCompliance(*mgc_, *comp_, "chat1a"), 0u);
  EXPECT_EQ(queued(), 10);
  EXPECT_EQ(*feedCompliance(*mgc_, *comp_, "chat2a"), 5u);
  store("chat1a", 10, 12);
  EXPECT_EQ(*feedCompliance(*mgc_, *comp_, "chat1a"), 2u);
  EXPECT_EQ(queued(), 17);
}

TEST_F(ComplianceTest, ExportWritesOneFileAndPurgesWhatItWrote) {
  store("chat1a", 0, 7);
  ASSERT_EQ(*feedCompliance(*mgc_, *comp_, "chat1a"), 7u);
  auto out = exportCompliance(*comp_, dir_, "chat.example.test");
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(out->messages, 7u);
  EXPECT_EQ(queued(), 0);
  std::ifstream in(out->path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_NE(line.find("\"room\":\"ops@chat.example.test\""), std::string::npos) << line;
  }
  EXPECT_EQ(lines, 7);
  auto empty = exportCompliance(*comp_, dir_, "chat.example.test");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->path.empty());
  auto st = complianceStatus(*comp_);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ((*st)["queue_depth"], 0);
  EXPECT_EQ((*st)["messages_exported_total"], 7);
}

TEST_F(ComplianceTest, RecoversAFileRenamedBeforeACrash) {
  store("chat1a", 0, 3);
  ASSERT_EQ(*feedCompliance(*mgc_, *comp_, "chat1a"), 3u);
  auto seqs = mgc_->exec("SELECT seq FROM messages ORDER BY seq");
  // What a crash after the rename and before the COMMIT leaves: a file, rows still queued.
  ASSERT_TRUE(makeDirs(dir_).isOk());
  std::ofstream f(dir_ + "/compliance-000000000099-2026-01-01T00-00-00Z.jsonl");
  for (const auto& r : seqs->rows) f << "{\"mgc_seq\":" << r[0] << "}\n";
  f.close();
  EXPECT_EQ(*recoverExports(*comp_, dir_), 1u);
  EXPECT_EQ(queued(), 0);
  EXPECT_EQ(*recoverExports(*comp_, dir_), 0u);
}

}  // namespace
}  // namespace tandem::chat
