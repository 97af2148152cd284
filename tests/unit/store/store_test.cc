// Tests of the store client library against a real throwaway PostgreSQL cluster.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "pg_test_cluster.h"
#include "store/store.h"

namespace tandem::store {
namespace {

using tandem::testing::PgTestCluster;

class StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (PgTestCluster::available()) cluster_ = new PgTestCluster();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (!PgTestCluster::available()) GTEST_SKIP() << "PostgreSQL 15 binaries are not installed";
    ASSERT_FALSE(cluster_->address().empty()) << cluster_->error();
  }
  std::string conninfo(const std::string& db = "postgres") {
    return connectionString({cluster_->address()}, db, PgTestCluster::kPassword);
  }
  std::unique_ptr<Connection> connect(const std::string& db = "postgres") {
    auto c = Connection::open(conninfo(db));
    EXPECT_TRUE(c.has_value()) << c.error().message();
    return c ? std::move(*c) : nullptr;
  }
  static PgTestCluster* cluster_;
};
PgTestCluster* StoreTest::cluster_ = nullptr;

TEST(ConnectionStringTest, NamesEveryHostWithPortsAndAsksForTheWritableOne) {
  EXPECT_EQ(connectionString({"127.0.1.10", "127.0.1.11"}, "rtc", "pw"),
            "host=127.0.1.10,127.0.1.11 port=5432,5432 dbname=rtc user=tandem password=pw "
            "target_session_attrs=read-write connect_timeout=2");
  EXPECT_EQ(connectionString({"127.0.1.10:5433"}, "rtc", "a b", false, 5),
            "host=127.0.1.10 port=5433 dbname=rtc user=tandem password='a b' "
            "target_session_attrs=any connect_timeout=5");
}

TEST_F(StoreTest, ExecReturnsRowsNullsAndAffectedCounts) {
  auto c = connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->execAll("CREATE TEMP TABLE t(id int, v text); INSERT INTO t VALUES (1, 'a')"));
  auto ins = c->exec("INSERT INTO t VALUES ($1, $2), (3, 'c')", {"2", std::nullopt});
  ASSERT_TRUE(ins) << ins.error().message();
  EXPECT_EQ(ins->affected, 2);
  auto q = c->exec("SELECT id, v FROM t ORDER BY id");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->rows.size(), 3u);
  EXPECT_EQ(q->columns, (std::vector<std::string>{"id", "v"}));
  EXPECT_EQ(q->rows[1][0], "2");
  EXPECT_TRUE(q->rows[1].isNull(1));
  EXPECT_EQ(q->rows[1][1], "");
  EXPECT_EQ(c->host(), cluster_->address());
}

TEST_F(StoreTest, UniqueViolationIsConflictAndBadSqlIsInternalWithSqlstate) {
  auto c = connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->execAll("CREATE TEMP TABLE u(id int PRIMARY KEY); INSERT INTO u VALUES (1)"));
  auto dup = c->exec("INSERT INTO u VALUES (1)");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), StatusCode::kConflict);
  EXPECT_NE(dup.error().message().find("23505"), std::string::npos) << dup.error().message();
  auto bad = c->exec("SELEKT 1");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kInternal);
  EXPECT_NE(bad.error().message().find("42601"), std::string::npos);
  EXPECT_TRUE(c->isOk());
}

TEST_F(StoreTest, OpenFailsWithUnavailableNamingTheHosts) {
  auto c = Connection::open(connectionString({"127.13.255.1"}, "postgres", "x"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.error().message().find("127.13.255.1"), std::string::npos) << c.error().message();
}

TEST_F(StoreTest, MultiHostStringSkipsADeadMemberAndFindsTheWritableOne) {
  auto c = Connection::open(
      connectionString({"127.13.255.2", cluster_->address()}, "postgres", PgTestCluster::kPassword));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ((*c)->host(), cluster_->address());
}

TEST_F(StoreTest, TerminatedBackendIsUnavailableAndThePoolReconnects) {
  ConnectionPool pool(conninfo(), 2);
  std::string pid;
  {
    auto lease = pool.acquire();
    ASSERT_TRUE(lease) << lease.error().message();
    pid = (*lease)->exec("SELECT pg_backend_pid()")->rows[0][0];
  }
  EXPECT_EQ(pool.openCount(), 1u);
  auto killer = connect();
  ASSERT_TRUE(killer->exec("SELECT pg_terminate_backend($1::int)", {pid}));
  {
    auto lease = pool.acquire();
    ASSERT_TRUE(lease);
    auto r = (*lease)->exec("SELECT 1");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), StatusCode::kUnavailable) << r.error().message();
  }
  auto lease = pool.acquire();
  ASSERT_TRUE(lease) << lease.error().message();
  auto again = (*lease)->exec("SELECT pg_backend_pid()");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_NE(again->rows[0][0], pid);
}

TEST_F(StoreTest, PoolBoundsConnectionsAndTimesOutWhenAllAreLeased) {
  ConnectionPool pool(conninfo(), 1);
  auto first = pool.acquire();
  ASSERT_TRUE(first);
  auto second = pool.acquire(std::chrono::milliseconds(100));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), StatusCode::kTimeout);
  std::thread giver([l = std::move(*first)]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  });
  auto third = pool.acquire(std::chrono::seconds(5));
  giver.join();
  EXPECT_TRUE(third) << third.error().message();
}

TEST_F(StoreTest, ResetAllDropsIdleAndReturnedConnections) {
  ConnectionPool pool(conninfo(), 3);
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    ASSERT_TRUE(a && b);
    pool.resetAll();  // b and a are dropped on return, not reused
  }
  EXPECT_EQ(pool.openCount(), 0u);
  ASSERT_TRUE(pool.acquire());
  EXPECT_EQ(pool.openCount(), 1u);
  pool.resetAll();
  EXPECT_EQ(pool.openCount(), 0u);
}

TEST_F(StoreTest, PoolOnADownStoreFailsWithUnavailableWithinItsWait) {
  ConnectionPool pool(connectionString({"127.13.255.3"}, "postgres", "x"), 2);
  auto t0 = std::chrono::steady_clock::now();
  auto l = pool.acquire(std::chrono::milliseconds(300));
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code(), StatusCode::kUnavailable) << l.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST_F(StoreTest, InTransactionCommitsRollsBackAndRetriesConflicts) {
  auto c = connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->execAll("CREATE TEMP TABLE tx(id int PRIMARY KEY)"));
  int calls = 0;
  Status st = inTransaction(*c, [&](Connection& t) -> Status {
    ++calls;
    auto r = t.exec("INSERT INTO tx VALUES (1)");
    if (calls == 1) return conflict("simulated serialization failure");
    return r ? Status::ok() : r.error();
  });
  EXPECT_TRUE(st) << st.message();
  EXPECT_EQ(calls, 2);
  Status bad = inTransaction(*c, [](Connection& t) -> Status {
    (void)t.exec("INSERT INTO tx VALUES (2)");
    return failedPrecondition("changed my mind");
  });
  EXPECT_EQ(bad.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(c->exec("SELECT count(*) FROM tx")->rows[0][0], "1");
  Status gaveUp = inTransaction(
      *c, [](Connection&) -> Status { return conflict("always"); }, 2);
  EXPECT_EQ(gaveUp.code(), StatusCode::kConflict);
}

TEST_F(StoreTest, MigrationsApplyOnceInOrderEvenWhenProcessesRace) {
  ASSERT_TRUE(ensureDatabase({cluster_->address()}, PgTestCluster::kPassword, "migr"));
  ASSERT_TRUE(ensureDatabase({cluster_->address()}, PgTestCluster::kPassword, "migr"));
  std::vector<Migration> ms = {
      {1, "create items", "CREATE TABLE items(id int); INSERT INTO items VALUES (1)"},
      {2, "add a row", "INSERT INTO items VALUES (2)"},
  };
  std::atomic<int> failures{0};
  std::vector<std::thread> racers;
  for (int i = 0; i < 4; ++i) {
    racers.emplace_back([&] {
      auto c = Connection::open(conninfo("migr"));
      if (!c || !applyMigrations(**c, "chat", ms)) ++failures;
    });
  }
  for (auto& t : racers) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto c = connect("migr");
  EXPECT_EQ(c->exec("SELECT count(*) FROM items")->rows[0][0], "2");
  ms.push_back({3, "broken", "INSERT INTO items VALUES (3); SELEKT"});
  Status st = applyMigrations(*c, "chat", ms);
  EXPECT_FALSE(st);
  EXPECT_NE(st.message().find("migration 3 (broken)"), std::string::npos) << st.message();
  EXPECT_EQ(c->exec("SELECT count(*) FROM items")->rows[0][0], "2");
  auto recorded = c->exec("SELECT version FROM schema_migrations WHERE component='chat' ORDER BY 1");
  ASSERT_EQ(recorded->rows.size(), 2u);
}

}  // namespace
}  // namespace tandem::store
