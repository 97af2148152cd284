// CMS failover and standby sync: operator actions on the two copies of xds (`tandemctl cms
// failover`, `tandemctl cms sync`).
//
// `cms failover` makes the copy on the target pool's store the active CMS. Steps (docs/cms.md):
//   1 locate the CMS copies      which stores answer, their epoch and newest version
//   2 copy the last versions     from the old active when it still answers (nothing lost), else
//                                the newest version any server's replica holds (RPO = versions
//                                the standby had not received and no replica held)
//   3 raise the epoch            target epoch = highest epoch seen + 1: it is now the active CMS,
//                                and the old copy (if it comes back) is its standby
//   4 publish a failover version number = highest seen + 1, so every replica takes it
//   5 wait for a master          a server of the target pool holds the master lease (<= 15 s)
// Idempotent: rerunning after the target became active only re-verifies. Blocks on the stores and
// the servers' admin endpoints; not thread-safe (one operator command).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "topology/topology.h"

namespace tandem::cms {

struct FailoverOptions {
  std::string state_dir;
  // The pool whose store becomes the active CMS: the CMS pool or its backup pool. Empty: the one
  // that is not active now (or the backup pool when the active one cannot be determined).
  std::string target_pool;
  // The store to fail over to (seed 004 steps 5b/5c): the target pool's store or its mirror,
  // whichever is the principal now (refused otherwise, naming the one to give); `target_pool`
  // may stay empty, it follows from the store. Empty: no check, the pool's store and mirror are
  // used as one (the connection finds the writable member).
  std::string target_store;
  // How the operator named target_store: "" (`--store`), "backup" (-BackupSqlServerFqdn: must be
  // the pool's own store) or "mirror" (-MirrorSqlServerFqdn: must be that store's mirror).
  std::string store_named_as;
  bool what_if = false;  // run step 1 and the read-only parts, print the plan, change nothing
  std::string author = "tandemctl cms failover";
  std::chrono::milliseconds master_wait{15000};  // step 5 bound; 0 skips the wait
  // Called after each step: (index 1-based, total, name, outcome sentence, seconds).
  std::function<void(int, int, const std::string&, const std::string&, double)> progress;
};

struct FailoverReport {
  std::string from_store, from_pool;  // the previous active ("" when none answered)
  bool from_reachable = false;
  std::string to_store, to_pool;
  int64_t epoch = 0;            // the target's epoch afterwards (planned with what_if)
  int64_t version = 0;          // the failover version written (planned with what_if)
  int64_t versions_lost = 0;    // always 0: step 2 carries over the newest version anyone holds
  std::string master;           // master after step 5 ("" when none appeared in time)
  bool already_active = false;
  std::vector<std::string> plan;  // what_if: the steps it would take
  nlohmann::json toJson() const;
};

// Errors: InvalidArgument (target is not the CMS pool or its backup pool, or target_store is
// not that pool's store or mirror, or named with the other parameter), FailedPrecondition
// (target_store is not the principal now: the message says what to type instead), Unavailable (the
// target's store does not answer), the stores' errors; nothing is changed before step 3, so a
// failure in steps 1-2 leaves both copies as they were.
Result<FailoverReport> failover(const topology::Topology& topology, const FailoverOptions& options);

// `cms sync`: copies every version the standby lacks now (what the master does every 2 s).
// Returns the number of versions copied. Errors: Unavailable when either copy does not answer.
Result<int64_t> syncStandbyNow(const topology::Topology& topology, const std::string& state_dir);

// The newest version every server's replica holds, asked over the admin endpoints in parallel
// (best effort; servers that do not answer are skipped): fqdn -> GET /cms/replica?full=1 body.
std::map<std::string, nlohmann::json> askReplicas(const topology::Topology& topology,
                                                  const std::string& state_dir, bool full,
                                                  std::chrono::milliseconds timeout);

}  // namespace tandem::cms
