// A throwaway PostgreSQL 15 cluster for unit tests: initdb under /var/tmp as user `postgres`,
// listening on 127.$TANDEM_TEST_NET.0.x:5432 (a free x), removed when the object dies.
// Tests call GTEST_SKIP() when available() is false (PostgreSQL binaries missing).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/files.h"
#include "common/process.h"

namespace tandem::testing {

class PgTestCluster {
 public:
  static constexpr const char* kBin = "/usr/lib/postgresql/15/bin/";
  static constexpr const char* kPassword = "test-secret-0123456789";

  static bool available() { return std::filesystem::exists(std::string(kBin) + "pg_ctl"); }

  // Starts the cluster; on failure error() says why and address() is empty.
  PgTestCluster() {
    if (!available()) return;
    const char* net = std::getenv("TANDEM_TEST_NET");
    std::string prefix = std::string("127.") + (net ? net : "13") + ".0.";
    for (int i = 0; i < 200 && address_.empty(); ++i) {
      std::string a = prefix + std::to_string(20 + (::getpid() + i) % 200);
      if (portFree(a)) address_ = a;
    }
    dir_ = "/var/tmp/tandem-unit-pg-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter()++);
    std::filesystem::remove_all(dir_);
    (void)makeDirs(dir_ + "/sock", 0755);
    (void)writeFileAtomic(dir_ + "/pw", std::string(kPassword) + "\n", 0644);
    auto ids = lookupUser("postgres");
    if (ids) {
      for (auto& p : std::filesystem::recursive_directory_iterator(dir_)) {
        (void)::chown(p.path().c_str(), ids->uid, ids->gid);
      }
      (void)::chown(dir_.c_str(), ids->uid, ids->gid);
    }
    RunOptions ro;
    ro.user = "postgres";
    auto init = runProcess({std::string(kBin) + "initdb", "-D", dir_ + "/data", "-U", "tandem",
                            "--auth-local=trust", "--auth-host=scram-sha-256",
                            "--pwfile=" + dir_ + "/pw", "--no-sync", "-E", "UTF8"},
                           ro);
    if (!init || init->exit_code != 0) {
      error_ = "initdb: " + (init ? init->lastLine() : init.error().message());
      address_.clear();
      return;
    }
    auto st = start();
    if (!st.isOk()) {
      error_ = st.message();
      address_.clear();
    }
  }

  ~PgTestCluster() {
    if (!dir_.empty()) {
      RunOptions ro;
      ro.user = "postgres";
      (void)runProcess({std::string(kBin) + "pg_ctl", "-D", dir_ + "/data", "-m", "immediate",
                        "stop"},
                       ro);
      std::filesystem::remove_all(dir_);
    }
  }

  Status start() {
    RunOptions ro;
    ro.user = "postgres";
    auto r = runProcess({std::string(kBin) + "pg_ctl", "-D", dir_ + "/data", "-w", "-l",
                         dir_ + "/log", "-o",
                         "-c listen_addresses=" + address_ + " -c port=5432 -c fsync=off" +
                             " -c unix_socket_directories=" + dir_ + "/sock",
                         "start"},
                        ro);
    if (!r || r->exit_code != 0) return unavailable("pg_ctl start failed");
    return Status::ok();
  }
  Status stop(const std::string& mode = "fast") {
    RunOptions ro;
    ro.user = "postgres";
    auto r = runProcess({std::string(kBin) + "pg_ctl", "-D", dir_ + "/data", "-m", mode, "-w",
                         "stop"},
                        ro);
    if (!r || r->exit_code != 0) return unavailable("pg_ctl stop failed");
    return Status::ok();
  }

  const std::string& address() const { return address_; }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }

  // True when nothing listens on addr:5432 (we can bind it ourselves).
  static bool portFree(const std::string& addr) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(5432);
    inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string address_, dir_, error_;
};

}  // namespace tandem::testing
