// The validator's shared state and the rule families it runs (internal to topology).
//
// Each rule family lives in its own file (rules_names.cc, rules_stores.cc, rules_pools.cc) and
// appends Problems through Checker::add. Rules skip empty fields: a missing key was already
// reported by the loader, and one mistake should produce one problem, not a cascade.
#pragma once

#include <string>
#include <vector>

#include "topology/loader.h"

namespace tandem::topology::internal {

class Checker {
 public:
  explicit Checker(const Topology& t) : t_(t) {}

  const Topology& topology() const { return t_; }
  std::vector<Problem>& problems() { return problems_; }

  void add(int line, std::string rule, std::string message);

  // Checks that `name` (the value of `key` of `subject`) names an existing element; reports
  // unknown-reference otherwise. `kind` is "site", "store", "pool" or "server". Returns the
  // element (nullptr when unknown, and when `name` is empty, which reports nothing).
  const Site* site(const std::string& name, const std::string& key, const std::string& subject,
                   int line);
  const Store* store(const std::string& name, const std::string& key,
                     const std::string& subject, int line);
  const Pool* pool(const std::string& name, const std::string& key, const std::string& subject,
                   int line);

 private:
  void unknown(const std::string& name, const std::string& key, const std::string& subject,
               const char* kind, const char* list, int line);

  const Topology& t_;
  std::vector<Problem> problems_;
};

// "store `sql1`", "pool `pool1.example.test`", ...
std::string subjectOf(const Store& s);
std::string subjectOf(const Pool& p);
std::string subjectOf(const Site& s);
// "a front-end pool", "a chat pool", "an edge pool"; and without article "front-end".
std::string aPoolOfRole(PoolRole role);
std::string roleWord(PoolRole role);

// Rule families.
void checkNames(Checker& c);      // domain, names, duplicates, addresses, low_latency_to
void checkStores(Checker& c);     // sites, mirrors, witnesses, log shipping
void checkPools(Checker& c);      // sites, servers, stores, pairing, CMS
void checkRoles(Checker& c);      // edges and federation, chat pools, users, rooms

// Syntax helpers, exposed for unit tests.
bool isDnsName(const std::string& name);          // labels of [A-Za-z0-9-], 1..63, total ≤ 253
bool isSimpleName(const std::string& name);       // [A-Za-z0-9][A-Za-z0-9_.-]*, ≤ 63: store/site
bool isUserName(const std::string& name);         // XMPP localpart we accept: [a-z0-9._-]+
// "" when `address` is a usable IPv4 unicast address, else the reason in a few words.
std::string addressProblem(const std::string& address);

}  // namespace tandem::topology::internal
