// Cross-reference validation of a topology (DESIGN.md §8 rules); the rules themselves live in
// internal/rules_*.cc, one family a file. docs/topology.md lists every rule id.
#include "topology/validator.h"

#include <algorithm>

#include "topology/internal/checker.h"

namespace tandem::topology {

std::vector<Problem> validate(const Topology& topology) {
  internal::Checker checker(topology);
  internal::checkNames(checker);
  internal::checkStores(checker);
  internal::checkPools(checker);
  internal::checkRoles(checker);
  std::vector<Problem> problems = std::move(checker.problems());
  std::stable_sort(problems.begin(), problems.end(),
                   [](const Problem& a, const Problem& b) { return a.line < b.line; });
  return problems;
}

}  // namespace tandem::topology
