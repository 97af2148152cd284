// Unit tests for the tandemctl framework: tables and cmdlet translation.
#include <gtest/gtest.h>

#include "ctl/cli.h"
#include "ctl/cmdlet_alias.h"

namespace tandem::ctl {
namespace {

TEST(Table, AlignsColumns) {
  Table t({"NAME", "ROLE"});
  t.addRow({"sql1", "Principal"});
  t.addRow({"sql1m-long", "Mirror"});
  EXPECT_EQ(t.render(), "NAME        ROLE\nsql1        Principal\nsql1m-long  Mirror\n");
}

TEST(Cmdlets, TranslatesParametersCaseInsensitively) {
  registerCmdlet({"Test-CsThing", "thing set", {{"Identity"}, {"Force", true}},
                  [](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out{"thing", "set", "--pool",
                                                 stripIdentityPrefix(p.at("Identity"))};
                    if (p.count("Force")) out.push_back("--force");
                    return out;
                  }});
  auto r = translateCmdlet({"test-csthing", "-identity", "service:chat.example.test", "-FORCE", "--json"});
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, (std::vector<std::string>{"thing", "set", "--pool", "chat.example.test", "--force", "--json"}));
}

TEST(Cmdlets, UnknownCmdletOrParameterIsAClearError) {
  EXPECT_EQ(translateCmdlet({"Get-CsNothing"}).error().message(),
            "`Get-CsNothing` is not a cmdlet tandemctl knows");
  registerCmdlet({"Get-CsWidget", "widget show", {{"Identity"}},
                  [](const auto&) -> Result<std::vector<std::string>> { return std::vector<std::string>{}; }});
  EXPECT_EQ(translateCmdlet({"Get-CsWidget", "-Bogus", "1"}).error().message(),
            "`-Bogus` is not a parameter of Get-CsWidget");
}

TEST(Cmdlets, RecognisesCmdletShapedWords) {
  EXPECT_TRUE(looksLikeCmdlet("Invoke-CsPoolFailover"));
  EXPECT_FALSE(looksLikeCmdlet("topology"));
  EXPECT_FALSE(looksLikeCmdlet("--json"));
}

}  // namespace
}  // namespace tandem::ctl
