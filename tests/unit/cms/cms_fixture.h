// Shared fixture of the CMS unit tests: two throwaway PostgreSQL clusters (the CMS pool's store
// and its backup pool's store), a state dir with the deployment secret and certificates, and a
// two-pool topology whose servers live on 127.$TANDEM_TEST_NET.<per process>.1-6.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <unistd.h>

#include "../store/pg_test_cluster.h"
#include "common/files.h"
#include "rpc/certs.h"

namespace tandem::cms::testing {

inline std::string testNet() {
  const char* n = std::getenv("TANDEM_TEST_NET");
  return n ? n : "12";
}
// Per process (ctest runs tests in parallel, each binding :8443 on these addresses):
// 127.NET.<1 + pid % 200>.i, away from the test clusters on 127.NET.0.x.
inline std::string serverAddress(int i) {
  return "127." + testNet() + "." + std::to_string(1 + ::getpid() % 200) + "." + std::to_string(i);
}

// The topology: poolA (CMS, store A, servers feA1 feA2), poolB (backup, store B, feB1), chat
// pool (chatA1, chatB1), edge (edgeA1).
inline std::string topologyYaml(const std::string& store_a, const std::string& store_b) {
  return "domain: example.test\n"
         "sites:\n  - name: Site1\n  - name: Site2\n"
         "stores:\n"
         "  - {name: sqla, site: Site1, address: " + store_a + "}\n"
         "  - {name: sqlb, site: Site2, address: " + store_b + "}\n"
         "pools:\n"
         "  - fqdn: poola.example.test\n    role: frontend\n    site: Site1\n    store: sqla\n"
         "    backup_pool: poolb.example.test\n    cms: true\n    servers:\n"
         "      - {fqdn: fea1.example.test, address: " + serverAddress(1) + "}\n"
         "      - {fqdn: fea2.example.test, address: " + serverAddress(2) + "}\n"
         "  - fqdn: poolb.example.test\n    role: frontend\n    site: Site2\n    store: sqlb\n"
         "    backup_pool: poola.example.test\n    servers:\n"
         "      - {fqdn: feb1.example.test, address: " + serverAddress(3) + "}\n"
         "  - fqdn: chat.example.test\n    role: chat\n    site: Site1\n    store: sqla\n"
         "    frontend_pool: poola.example.test\n    servers:\n"
         "      - {fqdn: chata1.example.test, address: " + serverAddress(5) + "}\n"
         "      - {fqdn: chatb1.example.test, site: Site2, address: " + serverAddress(6) + "}\n"
         "    active_servers: [chata1.example.test]\n"
         "  - fqdn: edge1.example.test\n    role: edge\n    site: Site1\n"
         "    next_hop: poola.example.test\n    federation: true\n"
         "    servers: [{fqdn: edgea1.example.test, address: " + serverAddress(4) + "}]\n"
         "users:\n  - {name: alice, pool: poola.example.test, password: a}\n";
}

class CmsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tandem::testing::PgTestCluster::available()) GTEST_SKIP() << "no PostgreSQL 15";
    // PgTestCluster picks a free address, which a test running in parallel may take first:
    // try again a few times.
    for (int i = 0; i < 4 && (!a_ || a_->address().empty()); ++i)
      a_ = std::make_unique<tandem::testing::PgTestCluster>();
    for (int i = 0; i < 4 && (!b_ || b_->address().empty()); ++i)
      b_ = std::make_unique<tandem::testing::PgTestCluster>();
    ASSERT_FALSE(a_->address().empty()) << a_->error();
    ASSERT_FALSE(b_->address().empty()) << b_->error();
    dir_ = "/var/tmp/tandem-cms-test-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(writeFileAtomic(dir_ + "/secret/token",
                                std::string(tandem::testing::PgTestCluster::kPassword) + "\n", 0600)
                    .isOk());
    ASSERT_TRUE(makeDirs(dir_ + "/pki").isOk());
    ASSERT_TRUE(rpc::generateCa(dir_ + "/pki/ca.pem", dir_ + "/pki/ca.key", "test CA").isOk());
    yaml_ = topologyYaml(a_->address(), b_->address());
    ASSERT_TRUE(writeFileAtomic(dir_ + "/topology.yaml", yaml_).isOk());
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void issue(const std::string& fqdn, const std::string& address) {
    ASSERT_TRUE(rpc::issueCertificate(dir_ + "/pki/ca.pem", dir_ + "/pki/ca.key", fqdn, {fqdn},
                                      {address}, dir_ + "/pki/" + fqdn + ".pem",
                                      dir_ + "/pki/" + fqdn + ".key")
                    .isOk());
  }

  std::unique_ptr<tandem::testing::PgTestCluster> a_, b_;
  std::string dir_, yaml_;
};

}  // namespace tandem::cms::testing
