// A throwaway PostgreSQL 15 cluster for the chat unit tests: one per test binary, on a Unix
// socket in its own directory under /var/tmp (traversable by `postgres`), trust auth for role
// `tandem`, removed at exit. Tests get a fresh database each through freshDatabase().
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "common/process.h"
#include "store/connection.h"

namespace tandem::chat::testing {

class PgCluster : public ::testing::Environment {
 public:
  static PgCluster* instance() {
    static PgCluster* env = new PgCluster();
    return env;
  }
  void SetUp() override {
    dir_ = "/var/tmp/tandem-chat-unit-" + std::to_string(::getpid());
    const std::string bin = "/usr/lib/postgresql/15/bin/";
    (void)runProcess({"rm", "-rf", dir_});
    ASSERT_TRUE(runChecked("mkdir", {"mkdir", "-p", "-m", "0755", dir_ + "/sock"}).has_value());
    ASSERT_TRUE(runChecked("chown", {"chown", "-R", "postgres:postgres", dir_}).has_value());
    RunOptions as_pg;
    as_pg.user = "postgres";
    auto init = runChecked("initdb", {bin + "initdb", "-D", dir_ + "/data", "-U", "tandem",
                                      "--auth=trust", "-E", "UTF8", "--no-sync"},
                           as_pg);
    ASSERT_TRUE(init.has_value()) << init.error().message();
    auto start = runChecked(
        "pg_ctl start",
        {bin + "pg_ctl", "-D", dir_ + "/data", "-w", "-l", dir_ + "/pg.log", "-o",
         "-c listen_addresses='' -k " + dir_ + "/sock -c fsync=off -c max_connections=200",
         "start"},
        as_pg);
    ASSERT_TRUE(start.has_value()) << start.error().message();
    started_ = true;
  }
  void TearDown() override {
    if (!started_) {
      if (!dir_.empty()) (void)runProcess({"rm", "-rf", dir_});
      return;
    }
    RunOptions as_pg;
    as_pg.user = "postgres";
    (void)runProcess({"/usr/lib/postgresql/15/bin/pg_ctl", "-D", dir_ + "/data", "-m",
                      "immediate", "stop"},
                     as_pg);
    (void)runProcess({"rm", "-rf", dir_});
  }
  bool started() const { return started_; }
  // The "address" for store::connectionString: the socket directory.
  std::string address() const { return dir_ + "/sock"; }
  std::string conninfo(const std::string& db) const {
    return store::connectionString({address()}, db, "unused");
  }
  // Creates an empty database with a unique name and returns its name.
  std::string freshDatabase(const std::string& prefix) {
    static std::atomic<int> n{0};
    std::string name = prefix + "_" + std::to_string(++n);
    auto c = store::Connection::open(conninfo("postgres"));
    EXPECT_TRUE(c.has_value()) << c.error().message();
    auto r = (*c)->exec("CREATE DATABASE " + name);
    EXPECT_TRUE(r.has_value()) << r.error().message();
    return name;
  }

 private:
  std::string dir_;
  bool started_ = false;
};

inline const bool kRegistered =
    (::testing::AddGlobalTestEnvironment(PgCluster::instance()), true);

}  // namespace tandem::chat::testing
