// Per-user digest comparison (digest.h).
#include "backup/digest.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace tandem::backup {

std::vector<Difference> compareDigests(const std::string& table, const TableDigests& pool,
                                       const TableDigests& copy) {
  std::vector<Difference> out;
  auto p = pool.begin();
  auto c = copy.begin();
  // Both maps are ordered by user: one merge pass.
  while (p != pool.end() || c != copy.end()) {
    if (c == copy.end() || (p != pool.end() && p->first < c->first)) {
      out.push_back({p->first, table, "missing in the copy", p->second.rows, 0});
      ++p;
    } else if (p == pool.end() || c->first < p->first) {
      out.push_back({c->first, table, "only in the copy", 0, c->second.rows});
      ++c;
    } else {
      if (p->second.rows != c->second.rows || p->second.digest != c->second.digest) {
        out.push_back({p->first, table, "rows differ", p->second.rows, c->second.rows});
      }
      ++p;
      ++c;
    }
  }
  return out;
}

std::vector<Difference> confirmedDifferences(const std::vector<Difference>& first,
                                             const std::vector<Difference>& second) {
  std::set<std::tuple<std::string, std::string, std::string>> again;
  for (const auto& d : second) again.insert({d.user, d.table, d.how});
  std::vector<Difference> out;
  std::copy_if(first.begin(), first.end(), std::back_inserter(out), [&](const Difference& d) {
    return again.count({d.user, d.table, d.how}) > 0;
  });
  return out;
}

}  // namespace tandem::backup
