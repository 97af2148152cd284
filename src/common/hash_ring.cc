// Consistent hash ring with virtual nodes over FNV-1a.
#include "common/hash_ring.h"

#include <algorithm>

namespace tandem {

namespace {
const std::string kNone;
}

uint64_t HashRing::stableHash(std::string_view data) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  // Final avalanche (splitmix64) so that similar keys spread over the ring.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

HashRing::HashRing(std::vector<std::string> members, int points_per_member)
    : members_(std::move(members)) {
  std::sort(members_.begin(), members_.end());
  members_.erase(std::unique(members_.begin(), members_.end()), members_.end());
  for (size_t i = 0; i < members_.size(); ++i) {
    for (int p = 0; p < points_per_member; ++p) {
      points_.emplace_back(stableHash(members_[i] + "#" + std::to_string(p)), i);
    }
  }
  std::sort(points_.begin(), points_.end());
}

const std::string& HashRing::ownerOf(std::string_view key) const {
  if (points_.empty()) return kNone;
  uint64_t h = stableHash(key);
  auto it = std::lower_bound(points_.begin(), points_.end(), std::make_pair(h, size_t{0}));
  if (it == points_.end()) it = points_.begin();
  return members_[it->second];
}

}  // namespace tandem
