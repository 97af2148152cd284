// Comparing a pool's data with its partner's copy per user (Debug-CsInterPoolReplication):
// each side reduces every table to (user -> row count, digest of its rows), computed in SQL
// (userdata.h); this file compares the two. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tandem::backup {

struct UserDigest {
  int64_t rows = 0;
  std::string digest;  // md5 of the user's rows' md5s in order; equal rows <=> equal digest
};
using TableDigests = std::map<std::string, UserDigest>;  // user (localpart) -> digest

struct Difference {
  std::string user;
  std::string table;
  std::string how;  // "missing in the copy" | "only in the copy" | "rows differ"
  int64_t pool_rows = 0;
  int64_t copy_rows = 0;
};

// The users of `table` whose rows differ between the pool and the copy, in user order.
std::vector<Difference> compareDigests(const std::string& table, const TableDigests& pool,
                                       const TableDigests& copy);

// The users of `first` that also appear in `second` with the same table and kind (a verify's
// two passes: a difference seen only once was a change in flight).
std::vector<Difference> confirmedDifferences(const std::vector<Difference>& first,
                                             const std::vector<Difference>& second);

}  // namespace tandem::backup
