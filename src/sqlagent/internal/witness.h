// WitnessBook: what a witness agent knows and decides for the mirrored pairs it watches.
//
// The witness is the third vote of a mirrored pair (DESIGN.md §5). It decides two things, and
// because both decisions go through the one book (under the Agent's mu_), they cannot both be
// granted for the same pair:
// - **exposure** (POST /witness/exposed): a principal that has lost its mirror for the partner
//   timeout asks to commit without it. Granted only while the witness sees that principal
//   writable now, does not see its partner writable, and has not voted to fail the pair over
//   to the partner. The grant is recorded (witness.json): the mirror may now lack commits.
// - **failover vote** (POST /witness/vote): a mirror that has lost its principal asks to be
//   promoted. Granted only when the witness has not seen the principal for `lost_for` either
//   and the principal is not recorded as exposed (a mirror that missed commits is never
//   promoted automatically). The vote is recorded, and blocks exposure of the old principal
//   until the witness sees it as a standby (it rejoined) or sees the candidate as a standby a
//   minute after the vote (the promotion did not happen, or the pair failed back).
//   The window is the witness's own (its partner timeout − 1 s, at least kSeenWithin), not a
//   number the caller sends.
// - **recorded promotion** (POST /witness/promoted): an operator promoted a mirror by hand
//   (`db failover`, `--force` included); recorded as a vote, unconditionally.
// Records loaded from witness.json can only refuse, never grant: the disk may be older than
// the witness's last decision (reverted, restored, or a write lost). A grant needs evidence
// seen since this witness started: exposure needs the partner last seen as a standby (or a
// vote for the principal made since the start); a vote needs the principal last seen with
// synchronous_standby_names set (so no commit was acknowledged without the mirror).
// Records are cleared when the principal reports its mirror SYNCHRONIZED again, or when the
// witness sees the exposed principal as a standby. Pure logic, no I/O: the caller persists
// `recordsJson()` when a call says it changed something. Not thread-safe (guarded by the caller).
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace tandem::sqlagent {

class WitnessBook {
 public:
  using Time = std::chrono::steady_clock::time_point;
  // A store seen within this long is "reachable" (the witness polls every second).
  static constexpr std::chrono::milliseconds kSeenWithin{2500};
  // A vote whose candidate is seen as a standby this long after it no longer blocks exposure.
  static constexpr std::chrono::seconds kVoteSettles{60};

  struct View {
    Time watching_since{}, last_contact{};
    bool ever = false, writable = false;
    bool synchronous = false;  // writable and synchronous_standby_names set, at last contact
    int timeline = 0;
  };
  struct Decision {
    bool granted = false;
    bool changed = false;  // the records changed: persist them
    std::string reason;    // one sentence: why granted or refused
  };

  // `vote_window`: how long the witness must have lost a principal before it votes it out (its
  // partner timeout − 1 s; never less than kSeenWithin).
  explicit WitnessBook(std::chrono::milliseconds vote_window = std::chrono::seconds(2))
      : vote_window_(std::max<std::chrono::milliseconds>(vote_window, kSeenWithin)) {}

  // Starts watching `store` (no-op when already watched).
  void watch(const std::string& store, Time now);
  // One poll of `store`: reachable (ok) or not; when ok, writable, timeline and whether its
  // synchronous_standby_names is set. Returns true when the records changed (a record cleared
  // by what was seen).
  bool observe(const std::string& store, bool ok, bool writable, int timeline, bool synchronous,
               Time now);

  Decision requestExposure(const std::string& principal, const std::string& partner, Time now);
  // The principal's mirror is SYNCHRONIZED again: its exposure record is cleared.
  Decision clearExposure(const std::string& principal, const std::string& partner);
  Decision voteFailover(const std::string& principal, const std::string& candidate, Time now);
  // An operator promoted `candidate` over `principal`: recorded as a vote (always granted),
  // and an exposure record of the pair is dropped (the operator accepted that loss).
  Decision recordPromotion(const std::string& principal, const std::string& candidate, Time now);
  std::chrono::milliseconds voteWindow() const { return vote_window_; }

  // What /witness/status?store=S answers (reachable, last_contact_age_s, writable, timeline,
  // exposed, exposed_since, voted_for).
  nlohmann::json statusOf(const std::string& store, Time now) const;
  bool isWatched(const std::string& store) const { return views_.count(store) != 0; }
  const std::map<std::string, View>& views() const { return views_; }

  // Records only (views are live state): {"<pair>": {"exposed": P, "exposed_since": UTC,
  // "voted_for": M, "voted_against": P}}. Vote times restart at load (a restarted witness
  // keeps a vote at least kVoteSettles longer).
  nlohmann::json recordsJson() const;
  void loadRecords(const nlohmann::json& j, Time now);

 private:
  struct Record {
    std::string a, b;           // the pair (sorted)
    std::string exposed;        // principal serving exposed ("" = none)
    std::string exposed_since;  // UTC ISO-8601
    std::string voted_for, voted_against;
    Time voted_at{};
    bool vote_current = false;  // the vote was made since this witness started (not loaded)
  };
  static std::string pairKey(const std::string& a, const std::string& b);
  bool seesNow(const std::string& store, Time now) const;
  const Record* recordFor(const std::string& store) const;
  Record& recordOf(const std::string& x, const std::string& y);
  Decision recordVote(const std::string& principal, const std::string& candidate, Time now,
                      std::string reason);

  std::chrono::milliseconds vote_window_;
  std::map<std::string, View> views_;
  std::map<std::string, Record> records_;  // by pairKey
};

}  // namespace tandem::sqlagent
