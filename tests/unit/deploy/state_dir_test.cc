// The state directory deploy prepares: secret, CA, certificates, folders; idempotent.
#include "deploy/state_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "common/files.h"
#include "topology/loader.h"

namespace tandem::deploy {
namespace {

namespace fs = std::filesystem;

TEST(StateDirTest, PreparesSecretCertificatesAndFoldersAndKeepsThem) {
  auto topo =
      topology::loadValidTopology(std::string(TANDEM_SOURCE_DIR) + "/examples/quickstart.yaml");
  ASSERT_TRUE(topo.has_value());
  char tmpl[] = "/tmp/tandem-statedir-test-XXXXXX";
  std::string dir = std::string(::mkdtemp(tmpl)) + "/state";
  ASSERT_TRUE(prepareStateDir(*topo, dir).isOk());
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat((dir + "/secret/token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto token = readFile(dir + "/secret/token");
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->size(), 65u);  // 64 hex + newline
  for (const char* f : {"ca.pem", "ca.key", "sql1.pem", "sql1.key", "fe1a.example.test.pem",
                        "chat1a.example.test.key"}) {
    EXPECT_TRUE(fs::exists(dir + "/pki/" + f)) << f;
  }
  EXPECT_TRUE(fs::is_directory(dir + "/stores/sql1"));
  EXPECT_TRUE(fs::is_directory(dir + "/servers/fe1a.example.test"));
  EXPECT_TRUE(hasDeployment(dir));

  auto ca = readFile(dir + "/pki/ca.pem");
  ASSERT_TRUE(prepareStateDir(*topo, dir).isOk());
  EXPECT_EQ(*readFile(dir + "/secret/token"), *token);
  EXPECT_EQ(*readFile(dir + "/pki/ca.pem"), *ca);

  ASSERT_TRUE(purgeStateDir(dir).isOk());
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_TRUE(fs::is_empty(dir));
  EXPECT_FALSE(hasDeployment(dir));
  fs::remove_all(fs::path(dir).parent_path());
}

}  // namespace
}  // namespace tandem::deploy
