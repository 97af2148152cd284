// HashRing: consistent hashing of keys (bare JIDs, room JIDs) over a set of member names
// (server FQDNs). Every process that computes ownership from the same member list gets the
// same answer, which is what lets front ends, chat servers and tools agree without talking.
// Immutable after construction; safe to share between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

class HashRing {
 public:
  // `members` in any order (the ring sorts them); `points_per_member` virtual nodes each.
  explicit HashRing(std::vector<std::string> members, int points_per_member = 64);

  // The member that owns `key`, or "" when the ring is empty.
  const std::string& ownerOf(std::string_view key) const;
  const std::vector<std::string>& members() const { return members_; }
  bool empty() const { return members_.empty(); }

  // 64-bit FNV-1a: stable across processes, builds and machines (std::hash is not).
  static uint64_t stableHash(std::string_view data);

 private:
  std::vector<std::string> members_;
  std::vector<std::pair<uint64_t, size_t>> points_;  // sorted by hash
};

}  // namespace tandem
