// Installing a clean CMS database, importing an export, moving the CMS onto it and bootstrapping
// servers against it: seed 004 step 6 ("the backup pool's back end holds no CMS copy"), as
// `tandemctl cms install-db`, `cms import`, `cms move` and `cms bootstrap` (docs/runbooks/cms.md).
//
// `cms move --pool Q --from F [--force]` steps:
//   1 read the export          F parses, matches its checksum and format version
//   2 check the old CMS        refuse without --force: while the old copy answers (use `cms
//                              failover`, which loses nothing), and when it does not (it cannot
//                              agree, --force fences it)
//   3 import the export        into Q's clean CMS database (`cms install-db --clean` made it)
//   4 take a new epoch         epoch = highest epoch seen anywhere (export, copies, replicas) + 1
//                              and a move version above every version seen: the old copy, should
//                              it come back, is older and can never be master again
//   5 point every replica      push the move version to every server's replica (the epoch in
//                              it also fences the old copy out of its servers' master candidates)
//   6 wait for a master        a server of Q holds the master lease in the new copy
// Idempotent: a rerun after step 4 only repeats steps 5-6. Blocks on stores and admin endpoints;
// one operator command at a time (not thread-safe).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "topology/topology.h"

namespace tandem::cms {

// Called after each step: (index 1-based, total, name, outcome sentence, seconds).
using StepProgress = std::function<void(int, int, const std::string&, const std::string&, double)>;

struct InstallDbOptions {
  std::string state_dir;
  std::string store;      // the store (or its mirror, when that is the principal now)
  bool clean = false;     // drop an existing CMS database there first
  bool force = false;     // allow dropping the database that holds the ACTIVE CMS
  bool what_if = false;   // check and say what would happen, change nothing
};
struct InstallDbReport {
  std::string store, pool;
  bool existed = false, dropped = false, created = false;
  std::string outcome;  // one sentence
  nlohmann::json toJson() const;
};
// Creates an empty CMS database (xds, migrations, no epoch: not active) on `store`. Errors:
// InvalidArgument (not the store or mirror of the CMS pool or its backup pool), FailedPrecondition
// (not the principal now; holds the active CMS without --force; holds versions without --clean),
// Unavailable (store down).
Result<InstallDbReport> installDb(const topology::Topology& t, const InstallDbOptions& o);

// `cms import --from F [--pool Q]`: loads the export into Q's empty CMS database (default: the
// CMS location whose database is empty). Returns the number of versions loaded (0: already).
// Leaves the epoch alone (the copy is not active until `cms move` or `cms failover`).
Result<int64_t> importExportFile(const topology::Topology& t, const std::string& state_dir,
                                 const std::string& file, const std::string& pool);

struct MoveOptions {
  std::string state_dir;
  std::string pool;   // Q; empty: the CMS pool's backup pool
  std::string from;   // the export file
  bool force = false;
  bool what_if = false;
  std::string author = "tandemctl cms move";
  std::chrono::milliseconds master_wait{20000};  // step 6 bound; 0 skips step 6
  StepProgress progress;
};
struct MoveReport {
  std::string to_pool, to_store, old_store;
  bool old_answers = false, already_moved = false;
  int64_t imported = 0, epoch = 0, version = 0;
  std::vector<std::string> replicas_pointed, replicas_unreached;
  std::string master;
  std::vector<std::string> plan;  // what_if
  nlohmann::json toJson() const;
};
// Errors: InvalidArgument (Q cannot hold the CMS, bad export), DataLoss (checksum),
// FailedPrecondition (step 2 refusals, no clean database on Q, no master in time), the stores'
// errors. Nothing changes before step 3.
Result<MoveReport> move(const topology::Topology& t, const MoveOptions& o);

struct BootstrapOptions {
  std::string state_dir;
  std::string server;  // empty: every front end of the pool hosting the active CMS
  std::chrono::milliseconds wait{15000};  // for its file transfer agent heartbeat
};
struct BootstrapServer {
  std::string fqdn, pool;
  bool already = false;      // ran every CMS service against the current CMS before we came
  int64_t version = 0;       // its replica's version afterwards
  std::string agent;         // "file transfer agent", "master", "candidate (idle)", "replica only"
  std::string outcome;       // one sentence
};
struct BootstrapReport {
  std::string active_pool, active_store, master;
  int64_t current_version = 0;
  std::vector<BootstrapServer> servers;
  nlohmann::json toJson() const;
};
// Makes each server run its CMS services against the current CMS (replica brought to the
// current version, front ends of the CMS pool heard as file transfer agents) and checks it.
// Errors: NotFound (unknown server), Unavailable (CMS or the server's admin endpoint does not
// answer), FailedPrecondition (a CMS-pool front end does not heartbeat within `wait`).
Result<BootstrapReport> bootstrap(const topology::Topology& t, const BootstrapOptions& o);

}  // namespace tandem::cms
