// Agent: the state and operations of one sqlagent (see ../agent.h for the role and ../client.h
// for the endpoints). Operations that change the store (bootstrap, promote, fence, rejoin,
// mirror and log-shipping actions) are serialised by op_mu_; the monitor takes the same mutex
// for its decisions, so no two of them interleave. The monitor's observations are guarded by
// mu_ and read by /status at any time.
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <vector>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "rpc/metrics.h"
#include "sqlagent/agent.h"
#include "sqlagent/internal/postgres.h"
#include "sqlagent/internal/witness.h"
#include "topology/topology.h"

// TANDEM_RETURN_IF_ERROR for functions that return a Result<T>.
#define SQLAGENT_TRY(expr)                         \
  do {                                             \
    ::tandem::Status _st = (expr);                 \
    if (!_st.isOk()) return ::tandem::fail(_st);   \
  } while (0)

namespace tandem::sqlagent {

// Role names, as /status reports them.
inline constexpr const char* kPrincipal = "Principal";
inline constexpr const char* kMirror = "Mirror";
inline constexpr const char* kStandalone = "Standalone";
inline constexpr const char* kBackupRestoring = "BackupRestoring";
inline constexpr const char* kWitness = "Witness";
inline constexpr const char* kFenced = "Fenced";
inline constexpr const char* kStopped = "Stopped";

// application_name of the monitor's kept connections (Agent::monitorExec).
inline constexpr const char* kMonitorApplication = "tandem-sqlagent monitor";

// Timeline of a cluster, standby or not (one SELECT column).
inline constexpr const char* kTimelineSql =
    "CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),"
    " (SELECT timeline_id FROM pg_control_checkpoint())) ELSE"
    " ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END";

// What the agent remembers across restarts (agent.json).
struct Persisted {
  std::string role;              // "" until bootstrapped
  std::string role_before_stop;  // /stop keeps the role here; /start restores it
  std::string partner;           // the other member of the mirrored pair ("" = none)
  std::string principal;         // mirror: the store it follows
  bool synchronous = false;      // principal: synchronous_standby_names names the partner
  // Principal: the mirror may lack commits this principal acknowledged (it served exposed,
  // granted by the witness); cleared once the mirror is SYNCHRONIZED again. Serving exposed
  // now = exposed && !synchronous (a principal that lost quorum waits for the mirror again).
  bool exposed = false;
  bool mirror_removed = false;   // /mirror/remove: do not re-synchronise automatically
  int timeline = 0;
  std::string ls_from;           // backup store: the primary store it restores from
  bool ls_removed = false;       // /log-shipping/remove: copy and restore jobs off
  bool self_fenced = false;      // Fenced by the monitor (rule 2), not by an operator: may unfence
  // The last divergence found before a rejoin discarded WAL (Divergence::toJson; null = none).
  nlohmann::json divergence;
  nlohmann::json toJson() const;
  static Persisted fromJson(const nlohmann::json& j);
};

// What the monitor last saw (refreshed every interval).
struct Observed {
  bool pg_up = false, in_recovery = false;
  int timeline = 0;
  std::string lsn;
  // The partner, as seen from here.
  bool partner_reachable = false, partner_writable = false;
  int partner_timeline = 0;
  std::chrono::steady_clock::time_point partner_last_contact{};
  std::string partner_last_contact_utc;
  std::string mirror_status;  // SYNCHRONIZED | SYNCHRONIZING | SUSPENDED | DISCONNECTED | ""
  bool mirror_streaming = false;  // principal: the mirror's walsender is in state `streaming`
  // Principal: last round at which no commit was waiting for a missing mirror (not synchronous,
  // or the mirror SYNCHRONIZED). Exposure starts a partner timeout after it.
  std::chrono::steady_clock::time_point commits_unblocked_at{};
  bool synchronized_at_last_contact = false;
  long lag_bytes = 0;
  double lag_seconds = 0;
  // The witness.
  bool witness_reachable = false, witness_sees_principal = false;
  std::chrono::steady_clock::time_point witness_last_contact{};
  int connections = 0;
};

class Agent {
 public:
  Agent(AgentOptions o, topology::Topology topo, const topology::Store& self, std::string token);

  // Brings the store into its persisted (or topology) role; may wait for partners. Blocks.
  Status bootstrap(const std::atomic<bool>& stop);
  // One monitor round (called every interval by runAgent).
  void monitorOnce();
  // One copy-job round on a backup store (called every second).
  void copyJobOnce();

  // ---- endpoints (each returns the JSON answer or an error Status) ----
  nlohmann::json health();
  nlohmann::json status();
  std::string metricsText();
  Result<nlohmann::json> promote();
  Result<nlohmann::json> fence();
  Result<nlohmann::json> rejoin(const std::string& principal);
  Result<nlohmann::json> installMirror(const std::string& mirror);
  Result<nlohmann::json> becomeMirror(const std::string& principal);
  Result<nlohmann::json> removeMirror();
  Result<nlohmann::json> stopStore();
  Result<nlohmann::json> startStore();
  Result<nlohmann::json> connections();
  Result<nlohmann::json> endConnections(bool all, int pid);
  Result<nlohmann::json> witnessStatus(const std::string& store);
  // POST /witness/exposed {"store", "partner", "exposed": bool} and POST /witness/vote
  // {"store", "candidate", "lost_for_s"} (what = "exposed" | "vote"): WitnessBook's decision,
  // {"ok": true, "granted", "reason"}.
  Result<nlohmann::json> witnessDecide(const std::string& what, const nlohmann::json& body);
  // log shipping (log_shipping.cc)
  Result<nlohmann::json> logShippingStatus();
  Result<nlohmann::json> copyNow();
  Result<nlohmann::json> applyAll();
  Result<nlohmann::json> removeLogShipping();
  Result<nlohmann::json> configureLogShipping(const std::string& from);
  Result<nlohmann::json> recover();
  Result<nlohmann::json> fullBackup(const std::string& stanza);
  Result<nlohmann::json> restore(bool overwrite, const std::string& from_stanza);

  const topology::Store& self() const { return self_; }
  bool bootstrapped() const { return bootstrapped_.load(); }
  // Remembers the last failure for /health and /status (`detail`, `last_error`).
  void noteError(const std::string& message) {
    std::lock_guard lock(mu_);
    last_error_ = message;
  }

 private:
  // ---- helpers (agent.cc) ----
  std::string storeDir() const;
  std::string addressOf(const std::string& store) const;
  std::string topologyPartner() const;
  const topology::Store* logShippingPrimaryOf(const std::string& store) const;  // P if store ∈ P's pair
  const topology::Store* backupSourceOf(const std::string& store) const;  // P if P.log_shipping.to == store
  std::string archiveStanza() const;
  std::string shareDir(const std::string& primary) const;
  RoleConfig roleConfig(const Persisted& p) const;
  Status persist(const Persisted& p);
  Persisted persisted() const;
  void setRole(const std::string& role);
  std::string witnessName() const;

  Status startAsPrincipal();
  // Starts a principal's PostgreSQL on existing data, commits waiting for its partner whatever
  // agent.json said (docs/stores.md "Starting a principal"): nothing is acknowledged until the
  // partner streams from it or the witness grants exposure. Standalone: starts as it is.
  Status startPrincipalGuarded(Persisted p);
  // Measures and records (agent.json, log, /status) what this stopped cluster holds beyond its
  // fork from `principal`, before a rejoin or a wipe discards it; returns p with it.
  Persisted recordDivergence(Persisted p, const std::string& principal);
  // Waits for the principal (until `stop`, or max_wait_s when stop is null), base-backups it
  // when we have no standby data, and starts streaming.
  Status startAsMirror(const std::string& principal, const std::atomic<bool>* stop,
                       int max_wait_s = 120);
  Status rejoinLocked(const std::string& principal);
  Status promoteLocked(std::string* outcome);
  Status fenceLocked(const std::string& why, bool by_monitor);
  bool isStreamingFrom(const std::string& principal);

  // ---- monitor (monitor.cc) ----
  // `reuse`: on the monitor thread, through the monitor's kept connection (monitorExec).
  void observeLocal(Observed& o, bool reuse = false);
  void observePartner(Observed& o, const Persisted& p);
  // A connection the monitor keeps between rounds: to `address`, "" for our own PostgreSQL.
  // Its application_name is kMonitorApplication (not a client: not listed, counted or ended).
  struct MonitorConn {
    std::string address;
    std::unique_ptr<store::Connection> conn;
  };
  // Runs `sql` on `slot`'s kept connection to `address` (monitor thread only). A new PostgreSQL
  // connection costs a fork and a SCRAM exchange on both sides, and the monitor needs two or
  // three a second: that was most of an idle deployment's CPU. When the kept connection fails
  // (the server restarted or went away) the statement is tried once on a fresh connection, so a
  // round sees what a fresh connection would; a failed fresh one is not kept.
  Result<store::QueryResult> monitorExec(MonitorConn& slot, const std::string& address,
                                         const std::string& sql,
                                         const std::vector<std::optional<std::string>>& params = {});
  void observeWitness(Observed& o, const Persisted& p);
  void decide(const Observed& o, const Persisted& p);
  // Rule 2's condition: a principal with a witness has lost its mirror and the witness for the
  // partner timeout.
  bool hasLostQuorum(const Observed& o, const Persisted& p) const;
  // Rule 2 while an operation holds op_mu_ (a mirror install can take minutes): stops
  // PostgreSQL at once and marks the fence pending, so that whatever the operation persists or
  // starts afterwards stays Fenced (persist, startPrincipalGuarded). decide() hands over to the
  // usual rules once the operation has ended.
  void fenceDuringOperation(const Observed& o, const Persisted& p);
  // Spawns the PostgreSQL guard (guard.cc): stops a principal's PostgreSQL when this agent ends.
  Status startPostgresGuard();
  void witnessRound();
  void loadWitnessRecords();
  Status persistWitnessLocked();  // Requires: mu_ held
  // Principal side of exposure (monitor.cc): asks the witness; true when granted.
  Result<bool> askWitness(const std::string& path, const nlohmann::json& body);
  void decidePrincipalExposure(const Observed& o, const Persisted& p);

  // ---- log shipping (log_shipping.cc) ----
  std::string pgbackrestConf() const;      // repo = the share
  std::string pgbackrestCopyConf() const;  // repo = the copy folder
  std::string copyFolder() const;
  Status writePgbackrestConfs(const std::string& share);
  Result<std::string> pgbackrest(const std::string& conf, const std::string& stanza,
                                 std::vector<std::string> args, std::chrono::seconds timeout);
  Status setUpArchiving(const std::string& stanza, bool full_backup);
  Status seedBackupStore(const std::string& from, const std::atomic<bool>* stop);
  Result<int> copyNewLogs(std::string* last);
  std::string restoreCommand(const std::string& stanza, bool from_copy) const;

  AgentOptions o_;
  topology::Topology topo_;
  topology::Store self_;
  std::string token_;
  std::unique_ptr<PgCluster> pg_;
  MonitorConn monitor_local_;    // monitor thread only
  MonitorConn monitor_partner_;  // monitor thread only
  rpc::Metrics metrics_;
  std::atomic<bool> bootstrapped_{false};

  std::mutex op_mu_;  // serialises operations and monitor decisions
  std::atomic<bool> fence_pending_{false};  // fenceDuringOperation() stopped PostgreSQL
  int guard_fd_ = -1;  // write end of the guard's pipe (bootstrap thread; never closed)
  mutable std::mutex mu_;
  Persisted state_;   // GUARDED_BY(mu_)
  Observed seen_;     // GUARDED_BY(mu_)
  std::string last_error_;  // GUARDED_BY(mu_): last failed bootstrap/monitor action
  WitnessBook witness_;  // GUARDED_BY(mu_): witness agents only
  std::map<std::string, std::future<void>> witness_polls_;  // monitor thread only (witnessRound)
  std::mutex copy_mu_;  // one copy round at a time
};

// Parses the timeline from a WAL file name (first 8 hex digits); 0 when malformed.
int timelineOfWalName(const std::string& name);
// ISO-8601 UTC of a system_clock time.
std::string isoUtc(std::chrono::system_clock::time_point t);

}  // namespace tandem::sqlagent
