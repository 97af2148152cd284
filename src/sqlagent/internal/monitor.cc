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
// 7. Exposure (SQL Server's "running exposed"): a principal whose commits have waited for a
//    missing mirror for the partner timeout asks the witness; if the witness grants it (it sees
//    this principal and has not voted for a failover), synchronous_standby_names is cleared and
//    the principal commits alone, status SUSPENDED. While exposed it renews the grant every
//    round; a refusal or an unreachable witness (no quorum) makes commits wait for the mirror
//    again at once. Rule 5 re-synchronises the mirror when it is back; once it is SYNCHRONIZED
//    the witness's exposure record is cleared. Without a witness, commits keep waiting.
#include <spdlog/spdlog.h>

#include "rpc/client.h"
#include "sqlagent/internal/agent.h"

namespace tandem::sqlagent {

using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The walsender row of mirror $1 on a principal: state, sync_state, bytes not yet flushed,
// replay lag in seconds. Run on our own PostgreSQL (principal) or the partner's (mirror).
constexpr const char* kReplicationRowSql =
    "SELECT state, sync_state, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn), 0)::bigint,"
    " coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication"
    " WHERE application_name = $1";

// Rule 5: a streaming mirror this close (bytes not yet flushed) is made synchronous.
constexpr long kResyncLagBytes = 1 << 20;

}  // namespace

Result<store::QueryResult> Agent::monitorExec(MonitorConn& slot, const std::string& address,
                                              const std::string& sql,
                                              const std::vector<std::optional<std::string>>& params) {
  if (slot.conn && slot.address == address && slot.conn->isOk()) {
    auto r = slot.conn->exec(sql, params);
    if (r || slot.conn->isOk()) return r;  // answered, or a statement error on a live connection
  }
  slot.conn.reset();
  auto c = address.empty() ? pg_->connect() : pg_->connectTo(address);
  if (!c) return fail(c.error());
  // Named, so that listing and ending a store's client connections leave the agents' own alone.
  (void)(*c)->exec("SET application_name = '" + std::string(kMonitorApplication) + "'");
  auto r = (*c)->exec(sql, params);
  if ((*c)->isOk()) {
    slot.address = address;
    slot.conn = std::move(*c);
  }
  return r;
}

void Agent::observeLocal(Observed& o, bool reuse) {
  o.pg_up = false;
  if (!pg_->isRunning()) return;
  const std::string sql = std::string("SELECT pg_is_in_recovery(), ") + kTimelineSql +
                          ", CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
                          " ELSE pg_current_wal_lsn()::text END,"
                          " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                          " AND application_name <> '" + kMonitorApplication + "')";
  Result<store::QueryResult> r = fail(unavailable("not connected"));
  if (reuse) {
    r = monitorExec(monitor_local_, "", sql);
  } else if (auto c = pg_->connect()) {
    r = (*c)->exec(sql);
  }
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
    auto r = monitorExec(monitor_local_, "", kReplicationRowSql, {p.partner});
    if (r) {
      if (!r->rows.empty()) {
        const auto& row = r->rows[0];
        o.partner_reachable = true;
        o.lag_bytes = std::atol(row[2].c_str());
        o.lag_seconds = std::atof(row[3].c_str());
        bool sync = row[0] == "streaming" && row[1] == "sync";
        o.mirror_status = sync ? "SYNCHRONIZED" : "SYNCHRONIZING";
        o.mirror_streaming = row[0] == "streaming";
        o.synchronized_at_last_contact = sync;
      } else {
        // Serving exposed: the mirror is not there and commits do not wait for it.
        o.mirror_status = (p.exposed && !p.synchronous) ? "SUSPENDED" : "DISCONNECTED";
        o.mirror_streaming = false;
      }
    }
  }
  const std::string partner = addressOf(p.partner);
  auto r = monitorExec(monitor_partner_, partner,
                       std::string("SELECT pg_is_in_recovery(), ") + kTimelineSql);
  if (r) {
    o.partner_reachable = true;
    o.partner_writable = r->rows[0][0] == "f";
    o.partner_timeline = std::atoi(r->rows[0][1].c_str());
    if (p.role == kMirror && o.partner_writable) {
      auto s = monitorExec(monitor_partner_, partner, kReplicationRowSql, {self_.name});
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
  observeLocal(o, /*reuse=*/true);
  observePartner(o, p);
  observeWitness(o, p);
  if (!p.synchronous || p.mirror_removed || o.mirror_status == "SYNCHRONIZED") {
    o.commits_unblocked_at = Clock::now();
  }
  {
    std::lock_guard lock(mu_);
    seen_ = o;
  }
  metrics_.setGauge("tandem_store_up", o.pg_up ? 1 : 0, {{"store", self_.name}}, "PostgreSQL answers queries");
  metrics_.setGauge("tandem_store_replication_lag_bytes", static_cast<double>(o.lag_bytes), {{"store", self_.name}}, "WAL the mirror has not flushed yet");
  metrics_.setGauge("tandem_store_replication_lag_seconds", o.lag_seconds, {{"store", self_.name}}, "Replay lag of the mirror");
  metrics_.setGauge("tandem_store_connections", o.connections, {{"store", self_.name}}, "Client backends");
  metrics_.setGauge("tandem_store_synchronized", o.mirror_status == "SYNCHRONIZED" ? 1 : 0, {{"store", self_.name}}, "Mirror SYNCHRONIZED");
  metrics_.setGauge("tandem_store_exposed",
                    p.role == kPrincipal && p.exposed && !p.synchronous && !p.mirror_removed ? 1 : 0,
                    {{"store", self_.name}},
                    "Principal commits without its mirror (witness-granted exposure, SUSPENDED)");
  std::unique_lock op(op_mu_, std::try_to_lock);
  if (!op.owns_lock()) {  // an operation is running: only fencing cannot wait for it
    fenceDuringOperation(o, persisted());
    return;
  }
  decide(o, persisted());
}

bool Agent::hasLostQuorum(const Observed& o, const Persisted& p) const {
  const auto now = Clock::now();
  return p.role == kPrincipal && !witnessName().empty() && o.pg_up &&
         now - o.partner_last_contact >= o_.partner_timeout &&
         now - o.witness_last_contact >= o_.partner_timeout;
}

void Agent::fenceDuringOperation(const Observed& o, const Persisted& p) {
  if (fence_pending_ || !hasLostQuorum(o, p)) return;
  fence_pending_ = true;
  const std::string why = "lost mirror `" + p.partner + "` and witness `" + witnessName() +
                          "` for " + std::to_string(static_cast<int>(seconds(Clock::now() - o.partner_last_contact))) +
                          " s during an operation";
  // Immediate: a fast stop waits for a checkpoint while clients may still commit.
  Status st = pg_->stop(/*immediate=*/true);
  Persisted q = persisted();
  if (Status ps = persist(q); st.isOk()) st = ps;  // persist() turns the role into Fenced
  if (!st.isOk()) {
    spdlog::error("store `{}`: fence: {}", self_.name, st.message());
    noteError("fence: " + st.message());
    return;
  }
  spdlog::warn("store `{}`: fenced ({})", self_.name, why);
}

Result<bool> Agent::askWitness(const std::string& path, const nlohmann::json& body) {
  auto opts = rpc::clientOptionsFromStateDir(o_.state_dir);
  if (!opts) return fail(opts.error());
  opts->timeout = std::chrono::milliseconds(1500);
  auto r = rpc::AdminClient(addressOf(witnessName()), 8443, *opts).post(path, body);
  if (!r) return fail(r.error());
  bool granted = r->value("granted", false);
  if (!granted) spdlog::info("store `{}`: witness `{}` refused {}: {}", self_.name, witnessName(), path, r->value("reason", ""));
  return granted;
}

// Rule 7 (exposure), on a Principal with a partner and PostgreSQL up.
void Agent::decidePrincipalExposure(const Observed& o, const Persisted& p) {
  if (p.role != kPrincipal || p.partner.empty() || p.mirror_removed || !o.pg_up) return;
  if (witnessName().empty()) return;  // no quorum possible: commits keep waiting (docs/stores.md)
  const auto now = Clock::now();
  const nlohmann::json ask = {{"store", self_.name}, {"partner", p.partner}, {"exposed", true}};
  auto setSynchronous = [&](bool sync, bool exposed, const std::string& why) {
    Persisted q = persisted();
    q.synchronous = sync;
    q.exposed = exposed;
    Status st = persist(q);
    if (st.isOk()) st = pg_->applyRoleConfig(roleConfig(q));
    if (!st.isOk()) {
      spdlog::error("store `{}`: {}: {}", self_.name, why, st.message());
      std::lock_guard lock(mu_);
      last_error_ = why + ": " + st.message();
      return;
    }
    spdlog::warn("store `{}`: {}", self_.name, why);
  };
  if (p.exposed && !p.synchronous) {  // serving exposed: renew the grant (the quorum check)
    auto g = askWitness("/witness/exposed", ask);
    if (!g || !*g) {
      setSynchronous(true, true, "lost quorum with witness `" + witnessName() + "` (" +
                                     (g ? std::string("grant refused") : g.error().message()) +
                                     "); commits wait for mirror `" + p.partner + "` again");
    }
    return;
  }
  if (p.exposed && o.mirror_status == "SYNCHRONIZED") {  // back in sync: clear the record
    Persisted q = p;
    auto g = askWitness("/witness/exposed", {{"store", self_.name}, {"partner", p.partner}, {"exposed", false}});
    if (!g) return;  // the witness keeps the record: no automatic failover meanwhile (safe side)
    q.exposed = false;
    (void)persist(q);
    spdlog::warn("store `{}`: mirror `{}` is SYNCHRONIZED again; no longer exposed", self_.name, p.partner);
    return;
  }
  if (p.synchronous && now - o.commits_unblocked_at >= o_.partner_timeout) {
    auto g = askWitness("/witness/exposed", ask);
    if (g && *g) {
      setSynchronous(false, true,
                     "mirror `" + p.partner + "` not SYNCHRONIZED for " +
                         std::to_string(static_cast<int>(seconds(now - o.commits_unblocked_at))) +
                         " s; witness `" + witnessName() + "` granted exposure: commits no longer wait for the mirror (SUSPENDED)");
    }
  }
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
  if (fence_pending_) {  // fenced during an operation that has ended: rules 3-4 take over
    fence_pending_ = false;
    if (p.role == kFenced && pg_->isRunning()) report(pg_->stop(true), "fence");
  }
  if (p.role == kPrincipal || p.role == kStandalone) {
    // Rule 3: a partner writable on a newer timeline means we are the stale one.
    if (o.partner_reachable && o.partner_writable && o.partner_timeline > o.timeline && o.timeline > 0) {
      spdlog::warn("store `{}`: partner `{}` is writable on timeline {} (ours {}); rejoining as mirror",
                   self_.name, p.partner, o.partner_timeline, o.timeline);
      report(rejoinLocked(p.partner), "automatic rejoin");
      return;
    }
    if (!o.pg_up && !pg_->isRunning()) {  // Rule 6
      if (!(o.partner_reachable && o.partner_writable)) report(startPrincipalGuarded(p), "restart PostgreSQL");
      return;
    }
    // Rule 5. A walsender in state `streaming` has caught up once; a small lag left under load
    // only makes the next commits wait for it briefly.
    if (p.role == kPrincipal && !p.synchronous && !p.mirror_removed && o.mirror_streaming &&
        o.lag_bytes < kResyncLagBytes) {
      Persisted q = p;
      q.synchronous = true;
      report(persist(q), "persist");
      report(pg_->applyRoleConfig(roleConfig(q)), "synchronise mirror");
      spdlog::info("store `{}`: mirror `{}` caught up; commits now wait for it", self_.name, p.partner);
    }
    decidePrincipalExposure(o, persisted());
    if (o.timeline != p.timeline && o.timeline > 0) {
      Persisted q = persisted();
      q.timeline = o.timeline;
      report(persist(q), "persist");
    }
    // Rule 2.
    if (hasLostQuorum(o, p)) {
      report(fenceLocked("lost mirror `" + p.partner + "` and witness `" + witnessName() + "` for " +
                         std::to_string(static_cast<int>(seconds(partner_lost_for))) + " s",
                         true),
             "fence");
    }
    return;
  }
  if (p.role == kMirror) {
    if (!pg_->hasData()) {  // a mirror install that did not finish (wiped, no copy yet)
      report(startAsMirror(p.principal, nullptr, /*max_wait_s=*/0), "copy the principal");
      return;
    }
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
    // The witness decides: it refuses when it still sees the principal, or when the principal
    // served exposed (this mirror may lack commits), and records its vote.
    auto vote = askWitness("/witness/vote", {{"store", p.principal}, {"candidate", self_.name}});
    if (!vote || !*vote) return;
    spdlog::warn("store `{}`: mirror and witness `{}` lost principal `{}` for {:.1f} s; promoting",
                 self_.name, witnessName(), p.principal, seconds(partner_lost_for));
    std::string outcome;
    report(promoteLocked(&outcome), "automatic failover");
    return;
  }
  if (p.role == kFenced) {
    // A writable partner on an older timeline is the stale side (a restarted old principal,
    // waiting to be confirmed): never rewind our newer history onto it.
    const bool partner_newer = o.partner_timeline > p.timeline || p.timeline == 0;
    if (o.partner_reachable && o.partner_writable && partner_newer) {  // Rule 3
      report(rejoinLocked(p.partner), "automatic rejoin");
    } else if (p.self_fenced && o.partner_reachable && (!o.partner_writable || !partner_newer) &&
               (!has_witness || o.witness_reachable)) {
      Persisted q = p;  // Rule 4: guarded, so nothing is acknowledged until confirmed
      q.role = kPrincipal;
      report(startPrincipalGuarded(q), "unfence");
      spdlog::warn("store `{}`: mirror `{}` and witness are back; serving again as principal", self_.name, p.partner);
    }
    return;
  }
  if (p.role == kBackupRestoring && !o.pg_up && !pg_->isRunning() && pg_->hasData()) {
    report(pg_->start(), "restart PostgreSQL");
  }
}

}  // namespace tandem::sqlagent
