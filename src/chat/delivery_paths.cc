// DeliveryPaths: one sticky front-end path per destination (see delivery_paths.h).
#include "chat/delivery_paths.h"

#include <algorithm>

#include "xmpp/jid.h"

namespace tandem::chat {

DeliveryPaths::DeliveryPaths(std::chrono::milliseconds idle_forget, size_t max_remembered)
    : idle_forget_(idle_forget), max_remembered_(max_remembered) {}

void DeliveryPaths::setAttached(std::vector<std::string> fqdns) {
  std::sort(fqdns.begin(), fqdns.end());
  if (fqdns == attached_ && ring_) return;
  attached_ = std::move(fqdns);
  ring_ = std::make_unique<HashRing>(attached_);
}

bool DeliveryPaths::isAttached(const std::string& fqdn) const {
  return std::binary_search(attached_.begin(), attached_.end(), fqdn);
}

std::string DeliveryPaths::pathFor(const std::string& bare, Clock::time_point now) {
  if (attached_.empty()) return "";
  auto it = paths_.find(bare);
  if (it != paths_.end()) {
    Path& p = it->second;
    bool fresh = now - p.last_used < idle_forget_;
    if (fresh && isAttached(p.fqdn)) {
      p.last_used = now;
      return p.fqdn;
    }
    // Its front end detached while the destination was busy: the only case that moves a
    // destination that is in use.
    std::string next = ring_->ownerOf(bare);
    if (fresh && next != p.fqdn) ++switches_;
    p = Path{next, now};
    return next;
  }
  if (paths_.size() >= max_remembered_) sweep(now);
  std::string owner = ring_->ownerOf(bare);
  paths_.emplace(bare, Path{owner, now});
  return owner;
}

void DeliveryPaths::sweep(Clock::time_point now) {
  std::erase_if(paths_, [&](const auto& kv) { return now - kv.second.last_used >= idle_forget_; });
  // Still full of busy destinations: forget the least recently used half rather than grow.
  if (paths_.size() >= max_remembered_) {
    std::vector<Clock::time_point> uses;
    uses.reserve(paths_.size());
    for (const auto& [k, p] : paths_) uses.push_back(p.last_used);
    auto mid = uses.begin() + static_cast<std::ptrdiff_t>(uses.size() / 2);
    std::nth_element(uses.begin(), mid, uses.end());
    auto cut = *mid;
    std::erase_if(paths_, [&](const auto& kv) { return kv.second.last_used <= cut; });
  }
}

size_t HeldStanzas::push(std::string stanza, Clock::time_point now) {
  size_t dropped = 0;
  if (q_.size() >= max_ && !q_.empty()) {
    q_.pop_front();
    dropped = 1;
  }
  q_.emplace_back(now, std::move(stanza));
  return dropped;
}

size_t HeldStanzas::expire(Clock::time_point now) {
  size_t n = 0;
  while (!q_.empty() && now - q_.front().first >= hold_for_) {
    q_.pop_front();
    ++n;
  }
  return n;
}

std::string destinationOf(std::string_view s) {
  size_t end = s.find('>');
  if (end == std::string_view::npos) return "";
  std::string_view tag = s.substr(0, end);
  for (size_t at = tag.find(" to="); at != std::string_view::npos; at = tag.find(" to=", at + 1)) {
    size_t q = at + 4;
    if (q >= tag.size() || (tag[q] != '"' && tag[q] != '\'')) continue;
    size_t close = tag.find(tag[q], q + 1);
    if (close == std::string_view::npos) return "";
    std::string to(tag.substr(q + 1, close - q - 1));
    auto jid = xmpp::Jid::parse(to);
    return jid ? jid->bare() : to;
  }
  return "";
}

}  // namespace tandem::chat
