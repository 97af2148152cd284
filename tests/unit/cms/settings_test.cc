// cms settings: validateSetting for frontend.<pool>.redirect (issue 6 §4, proxy mode).
#include "cms/settings.h"

#include <gtest/gtest.h>

#include "cms_fixture.h"
#include "topology/loader.h"

namespace tandem::cms {
namespace {

class RedirectSettingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = topology::checkTopology(testing::topologyYaml("127.0.1.10", "127.0.2.10"),
                                          "topology.yaml");
    ASSERT_TRUE(loaded.problems.empty()) << loaded.problems.front().toString();
    topology_ = loaded.topology;
  }
  Status check(const std::string& key, const nlohmann::json& value) {
    return validateSetting(topology_, key, value);
  }
  topology::Topology topology_;
};

TEST_F(RedirectSettingTest, AcceptsRedirectProxyAndAutoForAFrontEndPool) {
  for (const char* mode : {"redirect", "proxy", "auto"}) {
    EXPECT_TRUE(check("frontend.poola.example.test.redirect", mode).isOk()) << mode;
    EXPECT_TRUE(check("frontend.poolb.example.test.redirect", mode).isOk()) << mode;
  }
}

TEST_F(RedirectSettingTest, AcceptsNullAsBackToTheDefault) {
  EXPECT_TRUE(check("frontend.poola.example.test.redirect", nullptr).isOk());
}

TEST_F(RedirectSettingTest, RefusesAnyOtherValueWithASentenceNamingTheChoices) {
  for (const nlohmann::json& bad : {nlohmann::json("sometimes"), nlohmann::json("Proxy"),
                                    nlohmann::json(""), nlohmann::json(1), nlohmann::json(true),
                                    nlohmann::json::array({"proxy"})}) {
    Status st = check("frontend.poola.example.test.redirect", bad);
    ASSERT_FALSE(st.isOk()) << bad.dump();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("frontend.poola.example.test.redirect"), std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("\"redirect\", \"proxy\" or \"auto\""), std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find(bad.dump()), std::string::npos) << st.message();
  }
}

TEST_F(RedirectSettingTest, RefusesAPoolThatIsNotAFrontEndPoolOfTheTopology) {
  for (const char* pool : {"nosuch.example.test", "chat.example.test", "edge1.example.test"}) {
    Status st = check(std::string("frontend.") + pool + ".redirect", "proxy");
    ASSERT_FALSE(st.isOk()) << pool;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    // Names the pool and lists the front-end pools there are.
    EXPECT_NE(st.message().find(std::string("`") + pool + "` is not a front-end pool"),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("poola.example.test"), std::string::npos) << st.message();
  }
}

TEST_F(RedirectSettingTest, RefusesAnUnknownFieldOfAFrontEndPool) {
  Status st = check("frontend.poola.example.test.redirects", "proxy");
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("unknown setting"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace tandem::cms
