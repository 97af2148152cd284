// The CMS cmdlets of seed 004, typed as in the seed (with our names): what each maps to, and
// the parameters refused with a reason instead of being ignored.
#include <gtest/gtest.h>

#include "ctl/cli.h"
#include "ctl/cmdlet_alias.h"
#include "ctl/commands.h"

namespace tandem::ctl {
namespace {

using Argv = std::vector<std::string>;

class CmsCmdlets : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static CLI::App app;
    static Context ctx;
    static bool once = [] {
      app.add_subcommand("topology", "t");
      registerCmsCommands(app, ctx);
      return true;
    }();
    (void)once;
  }
  static Argv map(const Argv& line) {
    auto r = translateCmdlet(line);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
    return r ? *r : Argv{};
  }
  static std::string refusal(const Argv& line) {
    auto r = translateCmdlet(line);
    EXPECT_FALSE(r.has_value());
    return r ? "" : r.error().message();
  }
};

TEST_F(CmsCmdlets, FailoverNamesTheBackupOrMirrorStoreAndChecksInstance) {
  EXPECT_EQ(map({"Invoke-CsManagementServerFailover", "-Whatif"}), (Argv{"cms", "failover", "--what-if"}));
  EXPECT_EQ(map({"Invoke-CSManagementServerFailover", "-BackupSQLServerFqdn", "sql2.example.test",
                 "-BackupSQLInstanceName", "rtc"}),
            (Argv{"cms", "failover", "--store", "sql2", "--store-named-as", "backup"}));
  EXPECT_EQ(map({"Invoke-CSManagementServerFailover", "-MirrorSQLServerFqdn", "sql2m.example.test",
                 "-MirrorSQLInstanceName", "rtc", "-Force"}),
            (Argv{"cms", "failover", "--store", "sql2m", "--store-named-as", "mirror", "--yes"}));
  EXPECT_EQ(refusal({"Invoke-CsManagementServerFailover", "-BackupSqlServerFqdn", "sql2.example.test",
                     "-BackupSqlInstanceName", "lync"}),
            "-BackupSqlInstanceName `lync`: store `sql2` runs one PostgreSQL instance, which the "
            "runbooks call `rtc`; type -BackupSqlInstanceName rtc");
  EXPECT_NE(refusal({"Invoke-CsManagementServerFailover", "-BackupSqlServerFqdn", "a.x", "-MirrorSqlServerFqdn", "b.x"})
                .find("not both"), std::string::npos);
  EXPECT_NE(refusal({"Invoke-CsManagementServerFailover", "-MirrorSqlInstanceName", "rtc"})
                .find("needs -MirrorSqlServerFqdn"), std::string::npos);
}

TEST_F(CmsCmdlets, StatusCmdletsAcceptServiceIdentityWithASpaceAfterTheColon) {
  EXPECT_EQ(map({"Get-CsManagementStoreReplicationStatus", "-CentralManagementStoreStatus"}),
            (Argv{"cms", "status"}));
  EXPECT_EQ(map({"Get-CsManagementStoreReplicationStatus"}), (Argv{"cms", "replication-status"}));
  EXPECT_EQ(map({"Get-CsManagementStoreReplicationStatus", "-ReplicaFqdn", "service: fe2a.example.test"}),
            (Argv{"cms", "replication-status", "--replica", "fe2a.example.test"}));
  EXPECT_EQ(stripIdentityPrefix("service: pool2.example.test"), "pool2.example.test");
  EXPECT_EQ(stripIdentityPrefix("service:pool2.example.test"), "pool2.example.test");
}

TEST_F(CmsCmdlets, InstallMoveExportImportBootstrapMapOrRefuseWithAReason) {
  EXPECT_EQ(map({"Install-CsDatabase", "-CentralManagementDatabase", "-Clean", "-SqlServerFqdn",
                 "sql2.example.test", "-SqlInstanceName", "rtc"}),
            (Argv{"cms", "install-db", "--store", "sql2", "--clean"}));
  EXPECT_NE(refusal({"Install-CsDatabase", "-Clean", "-SqlServerFqdn", "sql2.example.test"})
                .find("only -CentralManagementDatabase"), std::string::npos);
  EXPECT_EQ(map({"Move-CsManagementServer", "-ConfigurationFileName", "/tmp/c.json", "-Force"}),
            (Argv{"cms", "move", "--from", "/tmp/c.json", "--force", "--yes"}));
  EXPECT_NE(refusal({"Move-CsManagementServer", "-ConfigurationFileName", "c:\\CsConfigurationFile.zip",
                     "-LisConfigurationFileName", "c:\\CsLisConfigurationFile.zip", "-Force"})
                .find("no Location Information Service"), std::string::npos);
  EXPECT_EQ(map({"Export-CsConfiguration", "-FileName", "/tmp/c.json"}),
            (Argv{"cms", "export", "--to", "/tmp/c.json"}));
  EXPECT_EQ(map({"Import-CsConfiguration", "-FileName", "/tmp/c.json"}),
            (Argv{"cms", "import", "--from", "/tmp/c.json"}));
  EXPECT_NE(refusal({"Import-CsConfiguration", "-FileName", "/tmp/c.json", "-LocalStore"})
                .find("-LocalStore is not needed"), std::string::npos);
  EXPECT_TRUE(looksLikeCmdlet("Bootstrapper"));
  EXPECT_EQ(map({"Bootstrapper", "/Setup"}), (Argv{"cms", "bootstrap"}));
  EXPECT_EQ(map({"Bootstrapper.exe", "/setup"}), (Argv{"cms", "bootstrap"}));
  EXPECT_EQ(refusal({"Bootstrapper"}), "Bootstrapper needs /Setup");
}

}  // namespace
}  // namespace tandem::ctl
