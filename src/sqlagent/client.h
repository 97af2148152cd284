// The sqlagent's admin API, and the typed client `tandemctl db …` and the runbooks call it with.
//
// Every store (and witness) has one sqlagent serving HTTPS + JSON on <store address>:8443 with
// the deployment token (docs/architecture.md "Admin API"). Endpoints:
//
//   GET  /health                 {"ok", "name", "role", "site", "version"}
//   GET  /status                 AgentStatus below (also the raw document)
//   GET  /metrics                Prometheus text: tandem_store_up, tandem_store_role{role},
//                                tandem_store_replication_lag_bytes, …_lag_seconds,
//                                tandem_store_connections, tandem_store_synchronized,
//                                tandem_store_exposed (principal commits without its mirror)
//   POST /promote                mirror or restoring store → writable principal (idempotent);
//                                recorded at the pair's witness first (the outcome says if not)
//   POST /fence                  stop PostgreSQL and stay Fenced (no client can connect)
//   POST /rejoin {"principal"}   become the mirror of that store (CHECKPOINT there, pg_rewind,
//                                else fresh pg_basebackup; then stream)
//   POST /mirror/install {"mirror"}   on a principal: the mirror base-backups (via its agent's
//                                /mirror/become) and becomes the synchronous standby
//   POST /mirror/become {"principal"} on the mirror-to-be: wipe, pg_basebackup, stream
//   POST /mirror/remove          on a principal: serve alone (synchronous_standby_names = '')
//   GET  /connections            {"connections": [ConnectionInfo…]}
//   POST /connections/end {"all": true} | {"pid": N}   → {"ended": n}
//   POST /stop, POST /start      stop / start PostgreSQL (the role is kept)
//   GET  /witness/status?store=S (witness agents) what this agent sees of S and its partner,
//                                and its records: "exposed", "exposed_since", "voted_for"
//   POST /witness/exposed {"store", "partner", "exposed": bool}  a principal asks to commit
//                                without its mirror (or clears that) → {"granted", "reason"}
//   POST /witness/vote {"store", "candidate"}  a mirror asks to be promoted (the window is
//                                the witness's own) → {"granted", "reason"} (witness.h: rules)
//   POST /witness/promoted {"store", "candidate"}  an operator promoted `candidate` over `store`
//                                (sent by /promote): recorded as a vote, always granted
//   GET  /log-shipping/status    LogShippingStatus below
//   POST /log-shipping/copy-now  copy every log backup on the share not yet copied
//   POST /log-shipping/apply-all apply every copied log and wait until replayed
//   POST /log-shipping/remove    stop the copy and restore jobs; the store stays restoring
//   POST /log-shipping/configure {"from": "<primary store>"}  reseed this backup store from the
//                                latest full backup on the share and restore from then on
//   POST /recover                restoring store → writable (after apply-all)
//   POST /backup/full {"stanza"?}  pgBackRest full backup of this store to the share
//   POST /restore {"overwrite": true, "from_stanza": "..."}  restore from the share into a side
//                                directory, verify, swap it in, recover, start writable (the
//                                previous cluster is put back if recovery does not finish)
//   /status "divergence"         what the last rejoin discarded beyond the fork (or null)
// Every action answers {"ok": true, "outcome": "<one sentence in the past tense>", …}; errors
// are the rpc error document (FailedPrecondition when the store's role does not allow the
// action, Unavailable when PostgreSQL or a partner cannot be reached). Actions are idempotent.
//
// Client: one per agent; each call opens its own connection and blocks (long actions such as
// rejoin, restore and backups wait up to `long_timeout`). Thread-compatible.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "rpc/client.h"
#include "topology/topology.h"

namespace tandem::sqlagent {

inline constexpr int kAdminPort = 8443;

// GET /status. Times are UTC ISO-8601 ("" when unknown).
struct AgentStatus {
  std::string store, site;
  // "Principal" | "Mirror" | "Standalone" | "BackupRestoring" | "Witness" | "Fenced" | "Stopped"
  std::string role;
  bool pg_up = false;        // PostgreSQL answers queries
  bool in_recovery = false;  // PostgreSQL is a standby (mirror or restoring)
  int timeline = 0;
  std::string lsn;           // current (principal) or last replayed (standby) WAL position
  std::string partner;       // the other member of the mirrored pair ("" when none)
  std::string principal;     // for a mirror: the store it follows
  // SYNCHRONIZED | SYNCHRONIZING | SUSPENDED | DISCONNECTED, or "" for a store with no partner.
  std::string mirror_status;
  long lag_bytes = 0;        // WAL not yet flushed by the mirror
  double lag_seconds = 0;    // replay lag of the mirror
  std::string last_contact_with_partner;
  std::string witness;       // "" when none
  bool witness_sees_principal = false;
  bool synchronous = false;  // a principal: synchronous_standby_names names the mirror
  // What the last rejoin discarded beyond the fork with the new principal (one sentence; "" =
  // nothing recorded). The document's "divergence" object has LSNs and the transaction count.
  std::string divergence;
  nlohmann::json raw;        // the whole document (fields may be added)
};

// One client backend (GET /connections).
struct ConnectionInfo {
  int pid = 0;
  std::string user, database, client_addr, application, state, backend_start;
};

// GET /log-shipping/status. "Log" = one WAL archive file; names are WAL file names.
struct LogShippingStatus {
  std::string store, role, stanza, share, copy_folder;
  std::string last_backed_up, last_backed_up_time;  // newest log on the share
  std::string last_copied, last_copied_time;        // newest log in the copy folder
  std::string last_restored, last_restored_time;    // replay position / last commit replayed
  double lag_seconds = 0;  // now − last commit replayed (restoring store), or 0
  bool copy_job = false, restore_job = false;  // running (false after /log-shipping/remove)
  nlohmann::json raw;
};

struct CopyResult {
  int copied = 0;  // files copied by this call
  std::string last_copied;
  std::string outcome;
};

struct ApplyResult {
  std::string last_applied;      // WAL file replayed last
  std::string last_commit_time;  // pg_last_xact_replay_timestamp(), ISO-8601 ("" when none)
  std::string outcome;
};

class Client {
 public:
  Client(std::string address, rpc::ClientOptions options,
         std::chrono::milliseconds long_timeout = std::chrono::minutes(5));

  // The client for a store of the topology, with the token and CA of `state_dir`. NotFound when
  // the store is not in the topology or the state dir has no token.
  static Result<Client> forStore(const topology::Topology& topo, const std::string& store,
                                 const std::string& state_dir);

  Status health();
  Result<AgentStatus> status();
  Result<std::string> metrics();

  // Actions: the outcome sentence on success.
  Result<std::string> promote();
  Result<std::string> fence();
  Result<std::string> rejoin(const std::string& principal);
  Result<std::string> installMirror(const std::string& mirror);
  Result<std::string> becomeMirror(const std::string& principal);
  Result<std::string> removeMirror();
  Result<std::string> stop();
  Result<std::string> start();

  Result<std::vector<ConnectionInfo>> connections();
  // Ends every client connection (all) or one backend (pid); returns how many were ended.
  Result<int> endConnections(bool all, int pid = 0);

  Result<LogShippingStatus> logShippingStatus();
  Result<CopyResult> copyNow();
  Result<ApplyResult> applyAll();
  Result<std::string> removeLogShipping();
  Result<std::string> configureLogShipping(const std::string& from);
  Result<std::string> recover();
  // Returns the outcome; the backup label is in the outcome sentence.
  Result<std::string> fullBackup(const std::string& stanza = "");
  Result<std::string> restore(bool overwrite, const std::string& from_stanza = "");

  // GET /witness/status?store=S on a witness agent (raw document).
  Result<nlohmann::json> witnessStatus(const std::string& store);

  const std::string& address() const { return address_; }

 private:
  Result<nlohmann::json> post(const std::string& path, const nlohmann::json& body, bool long_call);
  Result<std::string> action(const std::string& path, const nlohmann::json& body = {},
                             bool long_call = false);
  std::string address_;
  rpc::ClientOptions options_;
  std::chrono::milliseconds long_timeout_;
};

// Parsers of the documents above (also used by the agent's tests).
AgentStatus agentStatusFromJson(const nlohmann::json& j);
LogShippingStatus logShippingStatusFromJson(const nlohmann::json& j);

}  // namespace tandem::sqlagent
