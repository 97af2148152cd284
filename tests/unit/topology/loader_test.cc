// The loader: the model it builds from the examples (with lines), and that it neither throws
// nor crashes on hostile input.
#include "topology/loader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "topology/internal/yaml_reader.h"

namespace tandem::topology {
namespace {

const std::string kExamples = std::string(TANDEM_SOURCE_DIR) + "/examples/";

std::vector<std::string> rulesOf(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& p : r.problems) out.push_back(p.rule);
  return out;
}

TEST(Loader, LoadsTheTwoSiteExampleWithLines) {
  LoadResult r = loadTopologyFile(kExamples + "two-site.yaml");
  ASSERT_TRUE(r.problems.empty()) << r.problems.front().toString();
  ASSERT_TRUE(r.parsed);
  const Topology& t = r.topology;
  EXPECT_EQ(t.domain, "example.test");
  ASSERT_EQ(t.sites.size(), 2u);
  EXPECT_EQ(t.sites[1].low_latency_to, std::vector<std::string>{"Site1"});
  ASSERT_EQ(t.stores.size(), 9u);
  ASSERT_EQ(t.pools.size(), 5u);

  const Store* sql1 = t.findStore("sql1");
  ASSERT_NE(sql1, nullptr);
  EXPECT_EQ(sql1->mirror, "sql1m");
  EXPECT_EQ(sql1->witness, "w1");
  EXPECT_EQ(sql1->address, "127.0.1.10");
  EXPECT_EQ(sql1->line, 12);  // "  - name: sql1"
  EXPECT_EQ(lineOf(sql1->key_lines, "mirror", 0), 15);
  EXPECT_TRUE(t.findStore("w1")->witness_only);

  const Store* pc1 = t.findStore("pc1");
  ASSERT_TRUE(pc1->log_shipping.has_value());
  EXPECT_EQ(pc1->log_shipping->to, "pcb");
  EXPECT_EQ(pc1->log_shipping->share, "share/pc1");
  EXPECT_EQ(pc1->log_shipping->interval_s, 5);
  EXPECT_EQ(pc1->log_shipping->line, 22);

  const Pool* chat = t.findPool("chat.example.test");
  ASSERT_NE(chat, nullptr);
  EXPECT_EQ(chat->role, PoolRole::kChat);
  EXPECT_EQ(chat->backup_store, "pcb");
  EXPECT_EQ(chat->backup_mirror, "pcbm");
  EXPECT_EQ(chat->frontend_pool, "pool1.example.test");
  EXPECT_EQ(chat->active_servers, std::vector<std::string>{"chat1a.example.test"});
  ASSERT_EQ(chat->servers.size(), 2u);
  EXPECT_EQ(chat->servers[1].site, "Site2");

  const Pool* pool = nullptr;
  const Server* fe2b = t.findServer("fe2b.example.test", &pool);
  ASSERT_NE(fe2b, nullptr);
  EXPECT_EQ(fe2b->address, "127.0.2.2");
  EXPECT_EQ(fe2b->site, "Site2");  // defaulted from its pool
  EXPECT_EQ(pool, t.findPool("pool2.example.test"));

  EXPECT_EQ(t.cmsPool()->fqdn, "pool1.example.test");
  EXPECT_EQ(t.principalOf("pcbm")->name, "pcb");
  EXPECT_EQ(t.principalOf("sql1"), nullptr);
  EXPECT_EQ(t.poolsWithRole(PoolRole::kEdge).size(), 2u);
  EXPECT_TRUE(t.findPool("edge1.example.test")->federation);
  EXPECT_EQ(t.findPool("edge2.example.test")->next_hop, "pool2.example.test");
  ASSERT_EQ(t.users.size(), 2u);
  EXPECT_EQ(t.users[1].password, "bob-pw");
  ASSERT_EQ(t.rooms.size(), 1u);
  EXPECT_EQ(t.rooms[0].category, "general");
}

TEST(Loader, LoadValidTopologyReturnsTheModel) {
  auto t = loadValidTopology(kExamples + "quickstart.yaml");
  ASSERT_TRUE(t.has_value()) << t.error().message();
  EXPECT_EQ(t->findPool("chat.example.test")->store, "sql1");
  EXPECT_EQ(t->file, kExamples + "quickstart.yaml");
}

TEST(Loader, LoadValidTopologyNamesTheFirstProblemAndCountsTheRest) {
  std::string path = std::string(TANDEM_SOURCE_DIR) + "/tests/data/topologies/several-problems.yaml";
  auto t = loadValidTopology(path);
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.error().message().find(path + ":8: store `sql1m`"), std::string::npos)
      << t.error().message();
  EXPECT_NE(t.error().message().find("and 8 more problems"), std::string::npos)
      << t.error().message();
}

TEST(Loader, MissingFileIsNotFound) {
  auto t = loadValidTopology("/nonexistent/topology.yaml");
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code(), StatusCode::kNotFound);
  LoadResult r = loadTopologyFile("/nonexistent/topology.yaml");
  EXPECT_EQ(rulesOf(r), std::vector<std::string>{"file-not-found"});
  EXPECT_EQ(r.problems[0].line, 0);
  EXPECT_EQ(r.problems[0].toString(), "/nonexistent/topology.yaml: the topology file does not exist");
}

TEST(Loader, DirectoryIsNotATopology) {
  LoadResult r = loadTopologyFile(std::string(TANDEM_SOURCE_DIR));
  EXPECT_EQ(rulesOf(r), std::vector<std::string>{"unreadable-file"});
  EXPECT_FALSE(r.parsed);
}

TEST(Loader, ProblemToStringHasFileAndLine) {
  Problem p{"a.yaml", 7, "unknown-key", "unknown key `x` in store `s`"};
  EXPECT_EQ(p.toString(), "a.yaml:7: unknown key `x` in store `s`");
}

TEST(Loader, UnknownKeySuggestsTheNearestAndPointsAtTheKey) {
  LoadResult r = parseTopology("domain: example.test\nsites:\n  - name: Site1\n    low_latncy_to: []\n"
                               "stores: []\npools: []\n",
                               "t.yaml");
  ASSERT_EQ(rulesOf(r), std::vector<std::string>{"unknown-key"});
  EXPECT_EQ(r.problems[0].line, 4);
  EXPECT_EQ(r.problems[0].message,
            "unknown key `low_latncy_to` in site `Site1`; did you mean `low_latency_to`?");
}

TEST(Loader, WrongTypesAreReportedAtTheValue) {
  LoadResult r = parseTopology(
      "domain: [a]\nsites: {name: x}\nstores:\n  - name: s\n    site: S\n    address: 1.2.3.4\n"
      "    witness_only: maybe\npools: []\n",
      "t.yaml");
  EXPECT_EQ(rulesOf(r), (std::vector<std::string>{"wrong-type", "wrong-type", "wrong-type"}));
  EXPECT_EQ(r.problems[0].line, 1);
  EXPECT_EQ(r.problems[1].line, 2);
  EXPECT_EQ(r.problems[2].line, 7);
}

TEST(Loader, ASingleNameIsAcceptedWhereAListIsExpected) {
  LoadResult r = parseTopology(
      "domain: example.test\nsites:\n  - {name: A}\n  - {name: B, low_latency_to: A}\n"
      "stores: []\npools: []\n",
      "t.yaml");
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.topology.sites[1].low_latency_to, std::vector<std::string>{"A"});
}

// ---- Hostile input: never throw, never crash ------------------------------------------------

TEST(LoaderHostile, EmptyAndNonMapDocuments) {
  EXPECT_EQ(rulesOf(parseTopology("", "t")), std::vector<std::string>{"empty-file"});
  EXPECT_EQ(rulesOf(parseTopology("# only a comment\n", "t")), std::vector<std::string>{"empty-file"});
  EXPECT_EQ(rulesOf(parseTopology("42", "t")), std::vector<std::string>{"wrong-type"});
  EXPECT_EQ(rulesOf(parseTopology("[1, 2]", "t")), std::vector<std::string>{"wrong-type"});
  EXPECT_EQ(rulesOf(parseTopology("~", "t")), std::vector<std::string>{"empty-file"});
  EXPECT_FALSE(parseTopology("42", "t").parsed);
}

TEST(LoaderHostile, SyntaxErrorCarriesItsLine) {
  LoadResult r = parseTopology("domain: x\nsites: [a\n", "t");
  ASSERT_EQ(rulesOf(r), std::vector<std::string>{"yaml-syntax"});
  EXPECT_EQ(r.problems[0].line, 3);
  EXPECT_EQ(rulesOf(parseTopology("a: *nope\n", "t")), std::vector<std::string>{"yaml-syntax"});
  EXPECT_FALSE(checkTopology("a: \"unterminated\n", "t").problems.empty());
}

TEST(LoaderHostile, BytesThatAreNotUtf8AreRefusedWithTheirLine) {
  // Found by fuzzing: such a name passed validation and then made `topology show --json` throw.
  for (std::string bad : {std::string("\xff"), std::string("\xc3"), std::string("\xc0\xaf"),
                          std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
    LoadResult r = checkTopology("domain: example.test\nsites: [{name: S" + bad + "}]\n", "t");
    ASSERT_EQ(rulesOf(r), std::vector<std::string>{"not-utf8"}) << bad.size();
    EXPECT_EQ(r.problems[0].line, 2);
    EXPECT_FALSE(r.parsed);
  }
  // Well-formed multi-byte text is fine (the problem, if any, is about the name's shape).
  for (const auto& p : checkTopology("domain: example.test\n# Zürich, 東京, 😀\n", "t").problems) {
    EXPECT_NE(p.rule, "not-utf8") << p.toString();
  }
}

TEST(LoaderHostile, AnAliasInsideItsOwnAnchorIsRefused) {
  // yaml-cpp would build a cycle of shared nodes from these: never freed, never fully walked.
  for (const char* text : {"a: &x [*x]\n", "domain: d\nsites: &s {n: [1, {m: *s}]}\n"}) {
    LoadResult r = checkTopology(text, "t");
    ASSERT_EQ(rulesOf(r), std::vector<std::string>{"yaml-syntax"}) << text;
    EXPECT_NE(r.problems[0].message.find("cannot contain itself"), std::string::npos);
  }
  // An alias of a finished value is ordinary YAML and still read.
  EXPECT_TRUE(checkTopology("a: &x [1]\nb: *x\n", "t").parsed);
}

TEST(LoaderHostile, InputOnWhichYamlCppLoadAllNeverStopsEnds) {
  // Found by fuzzing: YAML::LoadAll() makes empty documents from this forever (until memory
  // runs out); the loader reads only the first document and counts the rest by events.
  LoadResult r = checkTopology(
      "# c\n, pst\nsites:\n  dn: fe2a.exam\n  - ersist", "t");
  EXPECT_FALSE(r.problems.empty());
}

TEST(LoaderHostile, DeepNestingIsRefusedNotACrash) {
  std::string deep(100000, '[');
  LoadResult r = checkTopology(deep, "t");
  EXPECT_FALSE(r.problems.empty());
  std::string deep_maps;
  for (int i = 0; i < 5000; ++i) deep_maps += "{a: ";
  EXPECT_FALSE(checkTopology(deep_maps, "t").problems.empty());
}

TEST(LoaderHostile, NestingWhereNamesBelongIsWrongType) {
  LoadResult r = checkTopology(
      "domain: {a: {b: {c: [1, [2, [3]]]}}}\nsites: [[[[]]]]\nstores: [{name: {x: 1}}]\n"
      "pools: [{fqdn: [a], role: {r: 1}, servers: [[1]]}]\nusers: 5\nrooms: [~, 1]\n",
      "t");
  EXPECT_FALSE(r.problems.empty());
  for (const auto& p : r.problems) EXPECT_GT(p.line, 0) << p.toString();
}

TEST(LoaderHostile, AliasBombIsBounded) {
  // Each level multiplies the servers by 10: 10^6 servers if read naively.
  std::string text =
      "domain: example.test\nsites: [{name: S}]\nstores: []\n"
      "x0: &s0 {fqdn: a.example.test, address: 127.0.0.1}\n"
      "x1: &s1 [*s0, *s0, *s0, *s0, *s0, *s0, *s0, *s0, *s0, *s0]\n"
      "x2: &p0 {fqdn: p.example.test, role: frontend, site: S, store: q, servers: *s1}\n"
      "x3: &l1 [*p0, *p0, *p0, *p0, *p0, *p0, *p0, *p0, *p0, *p0]\n"
      "pools: [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]\n";
  LoadResult r = checkTopology(text, "t");
  EXPECT_FALSE(r.problems.empty());
  std::string big = "domain: example.test\nsites: [{name: S}]\nstores: []\n"
                    "x: &s {fqdn: a.example.test, address: 127.0.0.1}\n"
                    "y: &l [" + std::string("*s, ") + "*s]\n";
  std::string list = "[";
  for (int i = 0; i < 200; ++i) list += "*s, ";
  list += "*s]";
  big += "z: &m " + list + "\npools:\n";
  for (int i = 0; i < 200; ++i) {
    big += "  - {fqdn: p" + std::to_string(i) + ".example.test, role: edge, site: S, "
           "next_hop: p0.example.test, servers: *m}\n";
  }
  LoadResult b = checkTopology(big, "t");
  bool too_large = false;
  for (const auto& p : b.problems) too_large |= p.rule == "too-large";
  EXPECT_TRUE(too_large);
  size_t servers = 0;
  for (const auto& p : b.topology.pools) servers += p.servers.size();
  EXPECT_LE(servers, static_cast<size_t>(internal::ProblemSink::kMaxItems));
}

TEST(LoaderHostile, AliasesOfLongScalarsAreNotCopiedThousandsOfTimes) {
  std::string text = "x: &a \"" + std::string(60000, 'a') + "\"\ndomain: *a\nsites:\n"
                     "  - {name: S, low_latency_to: [";
  for (int i = 0; i < 5000; ++i) text += "*a, ";
  text += "*a]}\nstores: []\npools: []\n*a : 1\n";
  LoadResult r = checkTopology(text, "t");
  size_t too_long = 0, bytes = 0;
  for (const auto& p : r.problems) {
    too_long += p.rule == "too-long";
    bytes += p.message.size();
  }
  EXPECT_GE(too_long, 3u);
  EXPECT_LT(bytes, 20u * 1024 * 1024);
  EXPECT_TRUE(r.topology.domain.empty());
}

TEST(LoaderHostile, MessagesStayOnOneLine) {
  LoadResult r = checkTopology(
      "domain: \"a\\nb\"\nsites: [{name: \"S\\n\\e[31m\"}]\nstores: []\npools: []\n", "t");
  ASSERT_FALSE(r.problems.empty());
  for (const auto& p : r.problems) {
    for (char c : p.message) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << p.message;
  }
}

TEST(LoaderHostile, BinaryGarbageAndNulBytes) {
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>((i * 7919) & 0xff));
  (void)checkTopology(junk, "t");
  (void)checkTopology(std::string("domain: a\0b\nsites: []\n", 22), "t");
  (void)checkTopology("\xef\xbb\xbf" "domain: example.test\n", "t");
  SUCCEED();
}

TEST(LoaderHostile, TagsAndComplexKeysDoNotThrow) {
  LoadResult r = checkTopology(
      "!!map\ndomain: !!str example.test\n? [complex, key]\n: value\nsites: !custom []\n"
      "stores: []\npools: []\n<<: {a: 1}\n",
      "t");
  EXPECT_FALSE(r.problems.empty());
}

}  // namespace
}  // namespace tandem::topology
