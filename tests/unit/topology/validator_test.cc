// Every validation rule, from the broken files in tests/data/topologies/ (one rule each, plus
// several-problems.yaml) and from small inline topologies.
//
// A broken file marks what it must produce: a line ending in `# <- RULE` is reported with RULE
// at that line; `# expect-file: RULE` is a problem about the whole file (line 0).
#include "topology/validator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "topology/internal/checker.h"
#include "topology/loader.h"

namespace tandem::topology {
namespace {

const std::string kDataDir = std::string(TANDEM_SOURCE_DIR) + "/tests/data/topologies/";

using RuleLine = std::pair<std::string, int>;

std::vector<RuleLine> markedProblems(const std::string& path) {
  std::ifstream in(path);
  std::vector<RuleLine> out;
  std::string text;
  static const std::regex kMarker(R"(# <- ([a-z0-9-]+)\s*$)");
  static const std::regex kWhole(R"(^# expect-file: ([a-z0-9-]+)\s*$)");
  for (int line = 1; std::getline(in, text); ++line) {
    std::smatch m;
    if (std::regex_search(text, m, kMarker)) out.emplace_back(m[1], line);
    if (std::regex_search(text, m, kWhole)) out.emplace_back(m[1], 0);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<RuleLine> reported(const LoadResult& r) {
  std::vector<RuleLine> out;
  for (const auto& p : r.problems) out.emplace_back(p.rule, p.line);
  std::sort(out.begin(), out.end());
  return out;
}

// file -> the rule it breaks (the test also reads the exact lines from the file's markers).
struct BrokenCase {
  const char* file;
  const char* rule;
};

const BrokenCase kBroken[] = {
    {"active-server-not-in-pool", "active-server-not-in-pool"},
    {"active-server-repeated", "active-server-repeated"},
    {"active-server-wrong-site", "active-server-wrong-site"},
    {"backup-mirror-mismatch", "backup-mirror-mismatch"},
    {"backup-mirror-other-site", "backup-mirror-other-site"},
    {"backup-mirror-self", "backup-mirror-self"},
    {"backup-mirror-without-backup-store", "backup-mirror-without-backup-store"},
    {"chat-backup-log-shipping-mismatch", "chat-backup-log-shipping-mismatch"},
    {"chat-backup-no-log-shipping", "chat-backup-no-log-shipping"},
    {"chat-backup-same-site", "chat-backup-same-site"},
    {"chat-frontend-not-frontend", "chat-frontend-not-frontend"},
    {"cms-multiple", "cms-multiple"},
    {"cms-none", "cms-none"},
    {"duplicate-address", "duplicate-address"},
    {"duplicate-key", "duplicate-key"},
    {"duplicate-name", "duplicate-name"},
    {"edge-pool-not-edge", "edge-pool-not-edge"},
    {"empty-file", "empty-file"},
    {"federation-multiple", "federation-multiple"},
    {"federation-none", "federation-none"},
    {"interval-out-of-range", "interval-out-of-range"},
    {"invalid-address-ipv6", "invalid-address"},
    {"invalid-address", "invalid-address"},
    {"invalid-domain", "invalid-domain"},
    {"invalid-fqdn", "invalid-fqdn"},
    {"invalid-name", "invalid-name"},
    {"not-utf8", "not-utf8"},
    {"invalid-role", "invalid-role"},
    {"invalid-share", "invalid-share"},
    {"key-not-for-role", "key-not-for-role"},
    {"log-shipping-same-site", "log-shipping-same-site"},
    {"log-shipping-self", "log-shipping-self"},
    {"log-shipping-target-shared", "log-shipping-target-shared"},
    {"low-latency-self", "low-latency-self"},
    {"mirror-chain", "mirror-chain"},
    {"mirror-other-site", "mirror-other-site"},
    {"mirror-self", "mirror-self"},
    {"mirror-shared", "mirror-shared"},
    {"missing-key", "missing-key"},
    {"missing-top-level", "missing-key"},
    {"multiple-documents", "multiple-documents"},
    {"next-hop-not-frontend", "next-hop-not-frontend"},
    {"pairing-not-frontend", "pairing-not-frontend"},
    {"pairing-not-symmetric", "pairing-not-symmetric"},
    {"pairing-same-site", "pairing-same-site"},
    {"pairing-self", "pairing-self"},
    {"pool-no-servers", "pool-no-servers"},
    {"rooms-without-chat-pool", "rooms-without-chat-pool"},
    {"root-not-map", "wrong-type"},
    {"server-site-mismatch", "server-site-mismatch"},
    {"store-is-backup", "store-is-backup"},
    {"store-is-mirror", "store-is-mirror"},
    {"store-other-site", "store-other-site"},
    {"store-shared", "store-shared"},
    {"unknown-key", "unknown-key"},
    {"unknown-reference", "unknown-reference"},
    {"user-pool-not-frontend", "user-pool-not-frontend"},
    {"witness-is-member", "witness-is-member"},
    {"witness-not-witness-only", "witness-not-witness-only"},
    {"witness-only-used", "witness-only-used"},
    {"witness-without-mirror", "witness-without-mirror"},
    {"wrong-type", "wrong-type"},
    {"yaml-syntax-indent", "yaml-syntax"},
    {"yaml-syntax", "yaml-syntax"},
};

class BrokenTopology : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenTopology, ReportsExactlyItsRuleAtTheMarkedLines) {
  const BrokenCase& c = GetParam();
  std::string path = kDataDir + c.file + ".yaml";
  std::vector<RuleLine> want = markedProblems(path);
  ASSERT_FALSE(want.empty()) << path << " marks no problem";
  for (const auto& [rule, line] : want) EXPECT_EQ(rule, c.rule) << "marker at line " << line;
  LoadResult r = checkTopologyFile(path);
  EXPECT_EQ(reported(r), want);
  for (const auto& p : r.problems) {
    EXPECT_EQ(p.file, path);
    EXPECT_FALSE(p.message.empty());
    EXPECT_EQ(p.message.find('\n'), std::string::npos) << p.message;
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, BrokenTopology, ::testing::ValuesIn(kBroken),
                         [](const auto& info) {
                           std::string name = info.param.file;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(BrokenTopologies, EveryFileInTheDataDirectoryIsCovered) {
  std::set<std::string> listed;
  for (const auto& c : kBroken) listed.insert(std::string(c.file) + ".yaml");
  listed.insert("several-problems.yaml");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(kDataDir)) {
    if (e.path().extension() != ".yaml") continue;
    ++files;
    EXPECT_TRUE(listed.count(e.path().filename().string())) << e.path() << " has no test";
  }
  EXPECT_GE(files, 25);
}

TEST(BrokenTopologies, SeveralProblemsAreAllReportedWithTheirLines) {
  std::string path = kDataDir + "several-problems.yaml";
  LoadResult r = checkTopologyFile(path);
  std::vector<RuleLine> want = markedProblems(path);
  EXPECT_GE(want.size(), 8u);
  EXPECT_EQ(reported(r), want);
  // Sorted by line, so that the CLI reads top to bottom.
  EXPECT_TRUE(std::is_sorted(r.problems.begin(), r.problems.end(),
                             [](const Problem& a, const Problem& b) { return a.line < b.line; }));
}

// ---- Examples and inline cases -----------------------------------------------------------

TEST(Examples, BothExamplesAreValid) {
  for (const char* name : {"quickstart.yaml", "two-site.yaml"}) {
    LoadResult r = checkTopologyFile(std::string(TANDEM_SOURCE_DIR) + "/examples/" + name);
    EXPECT_TRUE(r.problems.empty()) << name << ": " << r.problems.front().toString();
  }
}

std::string quickstart() {
  std::ifstream in(std::string(TANDEM_SOURCE_DIR) + "/examples/quickstart.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::vector<std::string> rulesOf(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& p : r.problems) out.push_back(p.rule);
  return out;
}

TEST(Validator, QuickstartNeedsNoEdgeAndNoFederation) {
  LoadResult r = checkTopology(quickstart(), "q.yaml");
  EXPECT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.topology.poolsWithRole(PoolRole::kEdge).empty());
}

TEST(Validator, TwoLogShippedStoresCannotShareOneShare) {
  std::string text = replaced(quickstart(), "  - {name: sql1, site: Site1, address: 127.0.1.10}\n",
                              "  - {name: sql1, site: Site1, address: 127.0.1.10,\n"
                              "     log_shipping: {to: b1, share: share/x}}\n"
                              "  - {name: sql9, site: Site1, address: 127.0.1.19,\n"
                              "     log_shipping: {to: b2, share: share/x}}\n"
                              "  - {name: b1, site: Site2, address: 127.0.2.20}\n"
                              "  - {name: b2, site: Site2, address: 127.0.2.21}\n");
  text = replaced(text, "  - name: Site1\n", "  - name: Site1\n  - name: Site2\n");
  LoadResult r = checkTopology(text, "q.yaml");
  ASSERT_EQ(rulesOf(r), std::vector<std::string>{"duplicate-share"});
  EXPECT_EQ(r.problems[0].line, 15);  // the second store's log_shipping
}

TEST(Validator, IntervalAboveAnHourIsOutOfRangeAndHugeNumbersClamp) {
  std::string base = replaced(quickstart(), "  - name: Site1\n", "  - name: Site1\n  - name: Site2\n");
  for (const char* value : {"3601", "99999999999999999999999", "-5"}) {
    std::string text = replaced(base, "  - {name: sql1, site: Site1, address: 127.0.1.10}\n",
                                "  - {name: sql1, site: Site1, address: 127.0.1.10,\n"
                                "     log_shipping: {to: b1, share: /srv/share, interval_s: " +
                                    std::string(value) + "}}\n"
                                    "  - {name: b1, site: Site2, address: 127.0.2.20}\n");
    LoadResult r = checkTopology(text, "q.yaml");
    EXPECT_EQ(rulesOf(r), std::vector<std::string>{"interval-out-of-range"}) << value;
  }
}

TEST(Validator, ActiveServerInALowLatencySiteIsAccepted) {
  std::string text = replaced(quickstart(), "  - name: Site1\n",
                              "  - name: Site1\n  - {name: Site2, low_latency_to: [Site1]}\n");
  text = replaced(text, "      - {fqdn: chat1a.example.test, address: 127.0.1.30}\n",
                  "      - {fqdn: chat1a.example.test, address: 127.0.1.30}\n"
                  "      - {fqdn: chat2a.example.test, site: Site2, address: 127.0.2.30}\n");
  text = replaced(text, "active_servers: [chat1a.example.test]", "active_servers: [chat2a.example.test]");
  EXPECT_TRUE(checkTopology(text, "q.yaml").problems.empty());
}

TEST(Validator, UnknownSiteOfAStoreIsAnUnknownReferenceAtTheSiteLine) {
  std::string text = replaced(quickstart(), "{name: sql1, site: Site1,", "{name: sql1, site: Site7,");
  LoadResult r = checkTopology(text, "q.yaml");
  ASSERT_EQ(rulesOf(r), std::vector<std::string>{"unknown-reference"});
  EXPECT_EQ(r.problems[0].message,
            "`site` of store `sql1` names site `Site7`, which is not in `sites`");
}

TEST(Validator, MessagesNameTheObjectsLikeTheDesignSays) {
  LoadResult r = checkTopologyFile(kDataDir + "mirror-other-site.yaml");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].message,
            "store `sql1m` is the mirror of `sql1` but is in site `Site2`; a mirror must be in "
            "its principal's site (`Site1`)");
}

TEST(Validator, AddressSyntax) {
  EXPECT_EQ(internal::addressProblem("127.0.1.1"), "");
  EXPECT_NE(internal::addressProblem("127.0.1"), "");
  EXPECT_NE(internal::addressProblem("127.0.1.01"), "");
  EXPECT_NE(internal::addressProblem("0.0.0.0"), "");
  EXPECT_NE(internal::addressProblem("224.0.0.1"), "");
  EXPECT_NE(internal::addressProblem("fe1a.example.test"), "");
  EXPECT_NE(internal::addressProblem("::1").find("IPv6"), std::string::npos);
}

TEST(Validator, NameSyntax) {
  EXPECT_TRUE(internal::isDnsName("pool1.example.test"));
  EXPECT_TRUE(internal::isDnsName("localhost"));
  EXPECT_FALSE(internal::isDnsName("a..b"));
  EXPECT_FALSE(internal::isDnsName("-a.b"));
  EXPECT_FALSE(internal::isDnsName("a-.b"));
  EXPECT_FALSE(internal::isDnsName("a.b."));
  EXPECT_FALSE(internal::isDnsName(std::string(64, 'a') + ".test"));
  EXPECT_TRUE(internal::isSimpleName("sql1m"));
  EXPECT_FALSE(internal::isSimpleName("../etc"));
  EXPECT_FALSE(internal::isSimpleName("a/b"));
  EXPECT_TRUE(internal::isUserName("alice.b-c_d"));
  EXPECT_FALSE(internal::isUserName("alice@example.test"));
}

}  // namespace
}  // namespace tandem::topology
