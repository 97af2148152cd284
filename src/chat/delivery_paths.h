// DeliveryPaths: which front end a chat server hands each outgoing stanza to, so that the
// stanzas for one destination keep their order (docs/architecture.md "Ordering").
//
// A chat server is attached to every front end of its front-end pool; each of them routes a
// stanza on to the user's owning front end over its internal links. Two stanzas for the same
// user that enter through different front ends travel different TCP streams and can overtake
// each other (a MAM <fin/> overtaking its own results, issue #14). So:
// - a destination (bare JID) takes ONE path: the ring owner of its bare JID over the front ends
//   attached right now. That is the ring the front ends compute over the same server FQDNs, so
//   with every front end attached it is the user's own front end when the user belongs to that
//   pool (one hop less), and a stable front end of the pool otherwise;
// - a path once chosen is kept while its front end stays attached ("sticky"), even when the
//   ring changes because another front end attached: moving a busy destination could let its
//   next stanzas overtake those still on the old path. A destination idle for `idle_forget`
//   is forgotten and takes the ring's choice again next time;
// - a path changes only when its front end detaches (counted in switches()).
// Thread rule: not thread-safe; the chat server uses it on its io thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash_ring.h"

namespace tandem::chat {

class DeliveryPaths {
 public:
  using Clock = std::chrono::steady_clock;

  // `idle_forget`: how long an unused destination keeps its path. Default 10 s: far longer than
  // any stanza stays in flight between two front ends, short enough that destinations return
  // to their owner's link soon after a failover. `max_remembered`: destinations kept; above it
  // idle ones are swept. Default 100,000 (about 10 MB).
  explicit DeliveryPaths(std::chrono::milliseconds idle_forget = std::chrono::seconds(10),
                         size_t max_remembered = 100000);

  // Replaces the set of attached front ends (server FQDNs, any order).
  void setAttached(std::vector<std::string> fqdns);
  const std::vector<std::string>& attached() const { return attached_; }

  // The front end (server FQDN) that must carry the next stanza for `bare`; "" when no front
  // end is attached. Records the choice (see the header comment).
  std::string pathFor(const std::string& bare, Clock::time_point now);

  size_t remembered() const { return paths_.size(); }
  // Destinations that moved to another path because theirs detached.
  uint64_t switches() const { return switches_; }

 private:
  struct Path {
    std::string fqdn;
    Clock::time_point last_used;
  };
  bool isAttached(const std::string& fqdn) const;
  void sweep(Clock::time_point now);

  std::chrono::milliseconds idle_forget_;
  size_t max_remembered_;
  std::vector<std::string> attached_;
  std::unique_ptr<HashRing> ring_;
  std::map<std::string, Path> paths_;  // by destination bare JID
  uint64_t switches_ = 0;
};

// Stanzas a chat server cannot hand to any front end right now (none is attached): held in
// order for a short while, then counted as undeliverable (issue #14 §5: no silent drops).
// Thread rule: as DeliveryPaths.
class HeldStanzas {
 public:
  using Clock = std::chrono::steady_clock;

  // `max_stanzas`: most held at once; beyond it the oldest is dropped. Default 20,000 (a few MB):
  // a few seconds of a busy pool. `hold_for`: how long one waits for a front end. Default 5 s:
  // a component link reconnects within ~2 s (xmpp/component_client.h), a longer outage is a
  // failover that evicts the occupants anyway.
  explicit HeldStanzas(size_t max_stanzas = 20000,
                       std::chrono::milliseconds hold_for = std::chrono::seconds(5))
      : max_(max_stanzas), hold_for_(hold_for) {}

  bool empty() const { return q_.empty(); }
  size_t size() const { return q_.size(); }
  // Holds `stanza`; returns how many old ones were dropped to make room (0 or 1).
  size_t push(std::string stanza, Clock::time_point now);
  // Drops those held longer than `hold_for`; returns how many.
  size_t expire(Clock::time_point now);
  // The oldest held stanza (Requires: !empty()), and removing it.
  std::string& front() { return q_.front().second; }
  void pop() { q_.pop_front(); }

 private:
  size_t max_;
  std::chrono::milliseconds hold_for_;
  std::deque<std::pair<Clock::time_point, std::string>> q_;
};

// The bare JID of the `to` attribute of a serialized stanza's start tag ("" when it has none).
// Only the start tag is read; a `to` that does not parse as a JID is returned as written.
std::string destinationOf(std::string_view serialized);

}  // namespace tandem::chat
