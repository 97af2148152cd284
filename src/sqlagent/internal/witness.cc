// The witness: WitnessBook's decisions (exposure grants, failover votes) and the witness agent's
// polling round and endpoints (/witness/status, /witness/exposed, /witness/vote).
#include "sqlagent/internal/witness.h"

#include <algorithm>
#include <future>

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "sqlagent/internal/agent.h"

namespace tandem::sqlagent {

namespace {
double secondsOf(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
}  // namespace

// ---- WitnessBook ------------------------------------------------------------------------------

std::string WitnessBook::pairKey(const std::string& a, const std::string& b) {
  return a < b ? a + "|" + b : b + "|" + a;
}

WitnessBook::Record& WitnessBook::recordOf(const std::string& x, const std::string& y) {
  Record& r = records_[pairKey(x, y)];
  r.a = std::min(x, y);
  r.b = std::max(x, y);
  return r;
}

const WitnessBook::Record* WitnessBook::recordFor(const std::string& store) const {
  for (const auto& [key, r] : records_) {
    if (r.a == store || r.b == store) return &r;
  }
  return nullptr;
}

void WitnessBook::watch(const std::string& store, Time now) {
  auto [it, inserted] = views_.try_emplace(store);
  if (inserted) it->second.watching_since = now;
}

bool WitnessBook::seesNow(const std::string& store, Time now) const {
  auto it = views_.find(store);
  return it != views_.end() && it->second.ever && now - it->second.last_contact < kSeenWithin;
}

bool WitnessBook::observe(const std::string& store, bool ok, bool writable, int timeline,
                          bool synchronous, Time now) {
  watch(store, now);
  View& v = views_[store];
  if (!ok) return false;
  v.last_contact = now;
  v.ever = true;
  v.writable = writable;
  v.synchronous = writable && synchronous;
  v.timeline = timeline;
  if (writable) return false;
  // A standby is no principal: its exposure record and any vote against it are moot, and a
  // candidate still a standby long after its vote did not (or no longer) hold the pair.
  bool changed = false;
  for (auto it = records_.begin(); it != records_.end();) {
    Record& r = it->second;
    if (r.exposed == store) {
      r.exposed.clear();
      r.exposed_since.clear();
      changed = true;
    }
    if (!r.voted_for.empty() &&
        (r.voted_against == store || (r.voted_for == store && now - r.voted_at >= kVoteSettles))) {
      r.voted_for.clear();
      r.voted_against.clear();
      changed = true;
    }
    if (r.exposed.empty() && r.voted_for.empty()) {
      it = records_.erase(it);
    } else {
      ++it;
    }
  }
  return changed;
}

WitnessBook::Decision WitnessBook::requestExposure(const std::string& principal,
                                                   const std::string& partner, Time now) {
  if (!seesNow(principal, now) || !views_[principal].writable) {
    return {false, false, "witness does not see `" + principal + "` as a writable principal now"};
  }
  if (seesNow(partner, now) && views_[partner].writable) {
    return {false, false, "witness sees partner `" + partner + "` writable: `" + principal +
                              "` must rejoin it, not serve alone"};
  }
  const auto it = records_.find(pairKey(principal, partner));
  const Record* existing = it == records_.end() ? nullptr : &it->second;
  if (existing != nullptr && existing->voted_against == principal) {
    return {false, false, "witness voted to fail `" + principal + "` over to `" + existing->voted_for + "`"};
  }
  // Evidence seen since this witness started that the partner was not promoted (records from
  // disk can only refuse): the partner last seen as a standby, or a vote made here for us.
  const auto pv = views_.find(partner);
  const bool partner_last_standby = pv != views_.end() && pv->second.ever && !pv->second.writable;
  const bool elected_here =
      existing != nullptr && existing->voted_for == principal && existing->vote_current;
  if (!partner_last_standby && !elected_here) {
    return {false, false, "witness has not seen `" + partner + "` as a standby since it started; it "
                              "cannot tell whether `" + partner + "` was promoted"};
  }
  Record& r = recordOf(principal, partner);
  if (r.exposed == principal) return {true, false, "exposure of `" + principal + "` already recorded"};
  r.exposed = principal;
  r.exposed_since = isoUtc(std::chrono::system_clock::now());
  return {true, true, "recorded that `" + principal + "` commits without mirror `" + partner + "`"};
}

WitnessBook::Decision WitnessBook::clearExposure(const std::string& principal,
                                                 const std::string& partner) {
  auto it = records_.find(pairKey(principal, partner));
  if (it == records_.end() || it->second.exposed != principal) {
    return {true, false, "`" + principal + "` was not recorded as exposed"};
  }
  it->second.exposed.clear();
  it->second.exposed_since.clear();
  if (it->second.voted_for.empty()) records_.erase(it);
  return {true, true, "cleared the exposure record of `" + principal + "`"};
}

WitnessBook::Decision WitnessBook::voteFailover(const std::string& principal,
                                                const std::string& candidate, Time now) {
  if (auto it = records_.find(pairKey(principal, candidate));
      it != records_.end() && it->second.exposed == principal) {
    return {false, false, "`" + principal + "` committed without its mirror since " +
                              it->second.exposed_since + ": `" + candidate + "` may lack commits"};
  }
  watch(principal, now);
  const View& v = views_[principal];
  if (v.ever && now - v.last_contact < vote_window_) {
    return {false, false, "witness saw `" + principal + "` " +
                              std::to_string(secondsOf(now - v.last_contact)).substr(0, 4) + " s ago"};
  }
  // Evidence, not records: a principal the witness never saw since it started may have
  // committed without its mirror (a grant lost with the disk), as may one last seen with
  // synchronous_standby_names empty (exposed, or alone after a failover).
  if (!v.ever) {
    return {false, false, "witness has not seen `" + principal + "` since it started; it cannot "
                              "tell whether `" + candidate + "` has every acknowledged commit"};
  }
  if (!v.synchronous) {
    return {false, false, "`" + principal + "` was committing without `" + candidate +
                              "` when the witness last saw it: `" + candidate + "` may lack commits"};
  }
  return recordVote(principal, candidate, now,
                    "witness lost `" + principal + "` too; voted for `" + candidate + "`");
}

WitnessBook::Decision WitnessBook::recordPromotion(const std::string& principal,
                                                   const std::string& candidate, Time now) {
  Record& r = recordOf(principal, candidate);
  const bool had_exposure = !r.exposed.empty();
  r.exposed.clear();
  r.exposed_since.clear();
  Decision d = recordVote(principal, candidate, now,
                          "recorded the promotion of `" + candidate + "` over `" + principal +
                              "` by an operator");
  d.changed = d.changed || had_exposure;
  return d;
}

WitnessBook::Decision WitnessBook::recordVote(const std::string& principal,
                                              const std::string& candidate, Time now,
                                              std::string reason) {
  Record& r = recordOf(principal, candidate);
  bool changed = r.voted_for != candidate || r.voted_against != principal;
  r.voted_for = candidate;
  r.voted_against = principal;
  r.voted_at = now;
  r.vote_current = true;
  return {true, changed, std::move(reason)};
}

nlohmann::json WitnessBook::statusOf(const std::string& store, Time now) const {
  nlohmann::json j = {{"store", store}};
  auto it = views_.find(store);
  if (it == views_.end()) {
    j["reachable"] = true;  // not watched yet: never a vote on no information
    j["last_contact_age_s"] = 0;
    j["note"] = "not watched yet";
  } else {
    const View& v = it->second;
    double age = v.ever ? secondsOf(now - v.last_contact) : 1e9;
    j["reachable"] = v.ever && now - v.last_contact < kSeenWithin;
    j["last_contact_age_s"] = age;
    j["writable"] = v.writable;
    j["timeline"] = v.timeline;
  }
  const Record* r = recordFor(store);
  j["exposed"] = r != nullptr && r->exposed == store;
  j["exposed_since"] = (r != nullptr && r->exposed == store) ? r->exposed_since : "";
  j["voted_for"] = (r != nullptr && r->voted_against == store) ? r->voted_for : "";
  return j;
}

nlohmann::json WitnessBook::recordsJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, r] : records_) {
    j[key] = {{"a", r.a}, {"b", r.b}, {"exposed", r.exposed}, {"exposed_since", r.exposed_since},
              {"voted_for", r.voted_for}, {"voted_against", r.voted_against}};
  }
  return j;
}

void WitnessBook::loadRecords(const nlohmann::json& j, Time now) {
  records_.clear();
  if (!j.is_object()) return;
  for (const auto& [key, v] : j.items()) {
    if (!v.is_object()) continue;
    Record& r = recordOf(v.value("a", ""), v.value("b", ""));
    r.exposed = v.value("exposed", "");
    r.exposed_since = v.value("exposed_since", "");
    r.voted_for = v.value("voted_for", "");
    r.voted_against = v.value("voted_against", "");
    r.voted_at = now;
  }
}

// ---- the witness agent --------------------------------------------------------------------------

void Agent::loadWitnessRecords() {
  auto text = readFile(storeDir() + "/witness.json");
  if (!text) return;  // none yet
  try {
    std::lock_guard lock(mu_);
    witness_.loadRecords(nlohmann::json::parse(*text), std::chrono::steady_clock::now());
  } catch (const std::exception& e) {
    spdlog::error("witness `{}`: witness.json is unreadable ({}); starting with no records",
                  self_.name, e.what());
  }
}

Status Agent::persistWitnessLocked() {
  return writeFileAtomic(storeDir() + "/witness.json", witness_.recordsJson().dump(2) + "\n", 0644);
}

void Agent::witnessRound() {
  std::vector<std::string> watched;
  for (const auto& s : topo_.stores) {
    if (s.witness == self_.name) {
      watched.push_back(s.name);
      if (!s.mirror.empty()) watched.push_back(s.mirror);
    }
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, v] : witness_.views()) {
      if (std::find(watched.begin(), watched.end(), name) == watched.end()) watched.push_back(name);
    }
  }
  // Each store is polled on its own, and a round does not wait for a slow poll: a partitioned
  // store costs a connect timeout (2 s), and it must not make the others look unreachable
  // (kSeenWithin) by delaying their polls. A store whose last poll still runs is skipped.
  for (const auto& name : watched) {
    const std::string addr = addressOf(name);
    if (addr.empty()) continue;
    auto& pending = witness_polls_[name];
    if (pending.valid() && pending.wait_for(std::chrono::seconds(0)) != std::future_status::ready) continue;
    pending = std::async(std::launch::async, [this, name, addr] {
      bool ok = false, writable = false, synchronous = false;
      int timeline = 0;
      if (auto c = pg_->connectTo(addr)) {
        auto r = (*c)->exec(std::string("SELECT pg_is_in_recovery(), ") + kTimelineSql +
                            ", current_setting('synchronous_standby_names') <> ''");
        if (r) {
          ok = true;
          writable = r->rows[0][0] == "f";
          timeline = std::atoi(r->rows[0][1].c_str());
          synchronous = r->rows[0][2] == "t";
        }
      }
      std::lock_guard lock(mu_);
      if (witness_.observe(name, ok, writable, timeline, synchronous, std::chrono::steady_clock::now())) {
        spdlog::info("witness `{}`: `{}` is a standby now; its records are cleared", self_.name, name);
        if (Status st = persistWitnessLocked(); !st.isOk()) last_error_ = st.message();
      }
    });
  }
}

Result<nlohmann::json> Agent::witnessStatus(const std::string& store) {
  if (topo_.findStore(store) == nullptr) return fail(notFound("store `" + store + "` is not in the topology"));
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  nlohmann::json j = witness_.statusOf(store, now);
  witness_.watch(store, now);  // watch it from the next round on
  j["witness"] = self_.name;
  return j;
}

Result<nlohmann::json> Agent::witnessDecide(const std::string& what, const nlohmann::json& body) {
  if (persisted().role != kWitness) {
    return fail(failedPrecondition("`" + self_.name + "` is not a witness"));
  }
  const bool vote = what == "vote" || what == "promoted";
  const std::string store = body.value("store", "");
  const std::string other = body.value(vote ? "candidate" : "partner", "");
  const topology::Store* s = topo_.findStore(store);
  const topology::Store* t = topo_.findStore(other);
  if (s == nullptr || t == nullptr || store == other) {
    return fail(invalidArgument("the request needs \"store\" and \"" +
                                std::string(vote ? "candidate" : "partner") +
                                "\": two stores of the topology"));
  }
  if (s->witness != self_.name && t->witness != self_.name) {
    return fail(failedPrecondition("`" + self_.name + "` is not the witness of `" + store + "`"));
  }
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  WitnessBook::Decision d;
  if (what == "vote") {
    d = witness_.voteFailover(store, other, now);  // the window is the witness's own
  } else if (what == "promoted") {
    d = witness_.recordPromotion(store, other, now);
  } else if (body.value("exposed", true)) {
    d = witness_.requestExposure(store, other, now);
  } else {
    d = witness_.clearExposure(store, other);
  }
  if (d.changed) {
    spdlog::warn("witness `{}`: {}", self_.name, d.reason);
    if (Status st = persistWitnessLocked(); !st.isOk()) {
      return fail(st.withContext("witness `" + self_.name + "` cannot record its decision"));
    }
  }
  return nlohmann::json{{"ok", true}, {"granted", d.granted}, {"reason", d.reason}};
}

}  // namespace tandem::sqlagent
