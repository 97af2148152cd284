// The monitor: every interval, observe the local cluster, the partner and the witness, then
// decide (automatic failover, fencing, re-synchronisation, automatic rejoin).
//
// Rules (DESIGN.md §5, issue #4 item 4):
// 1. Mirror: when mirror and witness have both lost the principal for the partner timeout and
//    the mirror was SYNCHRONIZED at its last contact, the mirror promotes itself.
// 2. Principal with a witness: when it has lost both mirror and witness for the partner timeout,
//    it fences itself (PostgreSQL stopped). Until then synchronous replication already keeps it
//    from acknowledging a commit the mirror does not have.
// 3. Principal or Fenced whose partner is writable on a newer timeline: rejoin it as mirror.
// 4. Fenced whose partner is back as a mirror (and the witness answers): start as principal.
// 5. Principal whose mirror streams caught up: synchronous_standby_names = the mirror.
// 6. A store whose PostgreSQL died under a live agent is started again (same role).
#include <spdlog/spdlog.h>

#include "rpc/client.h"
#include "sqlagent/internal/agent.h"

namespace tandem::sqlagent {

using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kTimelineSql =
    "CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),"
    " (SELECT timeline_id FROM pg_control_checkpoint())) ELSE"
    " ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END";

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

void Agent::observeLocal(Observed& o) {
  o.pg_up = false;
  if (!pg_->isRunning()) return;
  auto c = pg_->connect();
  if (!c) return;
  auto r = (*c)->exec(std::string("SELECT pg_is_in_recovery(), ") + kTimelineSql +
                      ", CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
                      " ELSE pg_current_wal_lsn()::text END,"
                      " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')");
  if (!r) return;
  o.pg_up = true;
  o.in_recovery = r->rows[0][0] == "t";
  o.timeline = std::atoi(r->rows[0][1].c_str());
  o.lsn = r->rows[0][2];
  o.connections = std::atoi(r->rows[0][3].c_str());
}

// Principal: the partner's walsender row here, else a direct connection. Mirror/Fenced: a
// connection to the partner (is it writable, on which timeline, and does it see us in sync).
void Agent::observePartner(Observed& o, const Persisted& p) {
  o.partner_reachable = false;
  if (p.partner.empty()) {
    o.mirror_status.clear();
    return;
  }
  bool principal_here = (p.role == kPrincipal || p.role == kStandalone) && o.pg_up && !o.in_recovery;
  if (principal_here) {
    auto c = pg_->connect();
    if (c) {
      auto r = (*c)->exec(
          "SELECT state, sync_state, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn), 0)::bigint,"
          " coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication"
          " WHERE application_name = $1", {p.partner});
      if (r && !r->rows.empty()) {
        const auto& row = r->rows[0];
        o.partner_reachable = true;
        o.lag_bytes = std::atol(row[2].c_str());
        o.lag_seconds = std::atof(row[3].c_str());
        bool sync = row[0] == "streaming" && row[1] == "sync";
        o.mirror_status = sync ? "SYNCHRONIZED" : "SYNCHRONIZING";
        o.synchronized_at_last_contact = sync;
      } else {
        o.mirror_status = "DISCONNECTED";
      }
    }
  }
  auto pc = pg_->connectTo(addressOf(p.partner));
  if (pc) {
    auto r = (*pc)->exec(std::string("SELECT pg_is_in_recovery(), ") + kTimelineSql);
    if (r) {
      o.partner_reachable = true;
      o.partner_writable = r->rows[0][0] == "f";
      o.partner_timeline = std::atoi(r->rows[0][1].c_str());
    }
    if (p.role == kMirror && o.partner_writable) {
      auto s = (*pc)->exec(
          "SELECT state, sync_state, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn), 0)::bigint,"
          " coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication"
          " WHERE application_name = $1", {self_.name});
      if (s && !s->rows.empty()) {
        const auto& row = s->rows[0];
        bool sync = row[0] == "streaming" && row[1] == "sync";
        o.mirror_status = sync ? "SYNCHRONIZED" : "SYNCHRONIZING";
        o.synchronized_at_last_contact = sync;
        o.lag_bytes = std::atol(row[2].c_str());
        o.lag_seconds = std::atof(row[3].c_str());
      } else {
        o.mirror_status = "DISCONNECTED";
        o.synchronized_at_last_contact = false;
      }
    }
  } else if (!principal_here) {
    o.partner_writable = false;
    o.mirror_status = "DISCONNECTED";
  }
  if (o.partner_reachable) {
    o.partner_last_contact = Clock::now();
    o.partner_last_contact_utc = isoUtc(std::chrono::system_clock::now());
  }
}

void Agent::observeWitness(Observed& o, const Persisted& p) {
  const std::string w = witnessName();
  o.witness_reachable = false;
  if (w.empty()) return;
  auto opts = rpc::clientOptionsFromStateDir(o_.state_dir);
  if (!opts) return;
  opts->timeout = std::chrono::milliseconds(1500);
  rpc::AdminClient c(addressOf(w), 8443, *opts);
  std::string principal = (p.role == kMirror) ? p.principal : self_.name;
  auto r = c.get("/witness/status?store=" + principal);
  if (!r) return;
  o.witness_reachable = true;
  o.witness_last_contact = Clock::now();
  o.witness_sees_principal = r->value("reachable", false);
}

void Agent::monitorOnce() {
  if (!bootstrapped_) return;
  Persisted p = persisted();
  if (p.role == kWitness) {
    witnessRound();
    return;
  }
  Observed o;
  {
    std::lock_guard lock(mu_);
    o = seen_;  // keep last-contact times across rounds
  }
  observeLocal(o);
  observePartner(o, p);
  observeWitness(o, p);
  {
    std::lock_guard lock(mu_);
    seen_ = o;
  }
  metrics_.setGauge("tandem_store_up", o.pg_up ? 1 : 0, {{"store", self_.name}}, "PostgreSQL answers queries");
  metrics_.setGauge("tandem_store_replication_lag_bytes", static_cast<double>(o.lag_bytes), {{"store", self_.name}}, "WAL the mirror has not flushed yet");
  metrics_.setGauge("tandem_store_replication_lag_seconds", o.lag_seconds, {{"store", self_.name}}, "Replay lag of the mirror");
  metrics_.setGauge("tandem_store_connections", o.connections, {{"store", self_.name}}, "Client backends");
  metrics_.setGauge("tandem_store_synchronized", o.mirror_status == "SYNCHRONIZED" ? 1 : 0, {{"store", self_.name}}, "Mirror SYNCHRONIZED");
  std::unique_lock op(op_mu_, std::try_to_lock);
  if (!op.owns_lock()) return;  // an operation is running; decide next round
  decide(o, persisted());
}

void Agent::decide(const Observed& o, const Persisted& p) {
  const auto now = Clock::now();
  const bool has_witness = !witnessName().empty();
  const auto partner_lost_for = now - o.partner_last_contact;
  auto report = [&](const Status& st, const char* what) {
    if (!st.isOk()) {
      spdlog::error("store `{}`: {}: {}", self_.name, what, st.message());
      std::lock_guard lock(mu_);
      last_error_ = std::string(what) + ": " + st.message();
    }
  };
  if (p.role == kPrincipal || p.role == kStandalone) {
    // Rule 3: a partner writable on a newer timeline means we are the stale one.
    if (o.partner_reachable && o.partner_writable && o.partner_timeline > o.timeline && o.timeline > 0) {
      spdlog::warn("store `{}`: partner `{}` is writable on timeline {} (ours {}); rejoining as mirror",
                   self_.name, p.partner, o.partner_timeline, o.timeline);
      report(rejoinLocked(p.partner), "automatic rejoin");
      return;
    }
    if (!o.pg_up && !pg_->isRunning()) {  // Rule 6
      if (!(o.partner_reachable && o.partner_writable)) report(pg_->start(), "restart PostgreSQL");
      return;
    }
    // Rule 5.
    if (p.role == kPrincipal && !p.synchronous && !p.mirror_removed &&
        o.mirror_status == "SYNCHRONIZING" && o.lag_bytes == 0) {
      Persisted q = p;
      q.synchronous = true;
      report(persist(q), "persist");
      report(pg_->applyRoleConfig(roleConfig(q)), "synchronise mirror");
      spdlog::info("store `{}`: mirror `{}` caught up; commits now wait for it", self_.name, p.partner);
    }
    if (o.timeline != p.timeline && o.timeline > 0) {
      Persisted q = persisted();
      q.timeline = o.timeline;
      report(persist(q), "persist");
    }
    // Rule 2.
    if (p.role == kPrincipal && has_witness && o.pg_up &&
        partner_lost_for >= o_.partner_timeout && now - o.witness_last_contact >= o_.partner_timeout) {
      report(fenceLocked("lost mirror `" + p.partner + "` and witness `" + witnessName() + "` for " +
                         std::to_string(static_cast<int>(seconds(partner_lost_for))) + " s",
                         true),
             "fence");
    }
    return;
  }
  if (p.role == kMirror) {
    if (!o.pg_up && !pg_->isRunning()) {
      report(pg_->start(), "restart PostgreSQL");
      return;
    }
    if (o.timeline != p.timeline && o.timeline > 0) {
      Persisted q = p;
      q.timeline = o.timeline;
      report(persist(q), "persist");
    }
    // Rule 1.
    if (!has_witness || o.partner_reachable || partner_lost_for < o_.partner_timeout) return;
    if (!o.synchronized_at_last_contact) {
      spdlog::warn("store `{}`: principal `{}` lost, but this mirror was not SYNCHRONIZED at last contact; not failing over", self_.name, p.principal);
      return;
    }
    if (!o.witness_reachable || now - o.witness_last_contact > std::chrono::seconds(3)) return;
    auto opts = rpc::clientOptionsFromStateDir(o_.state_dir);
    if (!opts) return;
    opts->timeout = std::chrono::milliseconds(1500);
    auto w = rpc::AdminClient(addressOf(witnessName()), 8443, *opts).get("/witness/status?store=" + p.principal);
    if (!w) return;
    double age = w->value("last_contact_age_s", 1e9);
    if (w->value("reachable", true) || age * 1000 < static_cast<double>(o_.partner_timeout.count()) - 1000) {
      return;  // the witness still sees the principal (or lost it only just now)
    }
    spdlog::warn("store `{}`: mirror and witness `{}` lost principal `{}` for {:.1f} s; promoting",
                 self_.name, witnessName(), p.principal, seconds(partner_lost_for));
    std::string outcome;
    report(promoteLocked(&outcome), "automatic failover");
    return;
  }
  if (p.role == kFenced) {
    if (o.partner_reachable && o.partner_writable) {  // Rule 3
      report(rejoinLocked(p.partner), "automatic rejoin");
    } else if (p.self_fenced && o.partner_reachable && !o.partner_writable &&
               (!has_witness || o.witness_reachable)) {
      Persisted q = p;  // Rule 4
      q.role = kPrincipal;
      report(persist(q), "persist");
      report(pg_->writeConfig(roleConfig(q)), "configure");
      report(pg_->start(), "unfence");
      spdlog::warn("store `{}`: mirror `{}` and witness are back; serving again as principal", self_.name, p.partner);
    }
    return;
  }
  if (p.role == kBackupRestoring && !o.pg_up && !pg_->isRunning() && pg_->hasData()) {
    report(pg_->start(), "restart PostgreSQL");
  }
}

// ---- witness ---------------------------------------------------------------------------------------

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
    for (const auto& [name, v] : witness_views_) {
      if (std::find(watched.begin(), watched.end(), name) == watched.end()) watched.push_back(name);
    }
  }
  for (const auto& name : watched) {
    const std::string addr = addressOf(name);
    if (addr.empty()) continue;
    auto c = pg_->connectTo(addr);
    bool ok = false, writable = false;
    int tl = 0;
    if (c) {
      auto r = (*c)->exec(std::string("SELECT pg_is_in_recovery(), ") + kTimelineSql);
      if (r) {
        ok = true;
        writable = r->rows[0][0] == "f";
        tl = std::atoi(r->rows[0][1].c_str());
      }
    }
    std::lock_guard lock(mu_);
    auto& v = witness_views_[name];
    if (ok) {
      v.last_contact = Clock::now();
      v.ever = true;
      v.writable = writable;
      v.timeline = tl;
    }
  }
}

Result<nlohmann::json> Agent::witnessStatus(const std::string& store) {
  if (topo_.findStore(store) == nullptr) return fail(notFound("store `" + store + "` is not in the topology"));
  std::lock_guard lock(mu_);
  auto it = witness_views_.find(store);
  if (it == witness_views_.end()) {
    witness_views_[store];  // watch it from the next round on
    return nlohmann::json{{"witness", self_.name}, {"store", store}, {"reachable", true},
                          {"last_contact_age_s", 0}, {"note", "not watched yet"}};
  }
  const auto& v = it->second;
  double age = v.ever ? seconds(Clock::now() - v.last_contact) : 1e9;
  bool reachable = v.ever && age < 2.5;
  return nlohmann::json{{"witness", self_.name}, {"store", store}, {"reachable", reachable},
                        {"last_contact_age_s", age}, {"writable", v.writable},
                        {"timeline", v.timeline}};
}

}  // namespace tandem::sqlagent
