// The deploy module's process mechanics: run records, liveness, free ports, /health probes,
// PostgreSQL postmasters and signals. Blocking, stateless, thread-safe.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "deploy/deploy.h"
#include "deploy/plan.h"

namespace tandem::deploy::internal {

// run/<name>.json: one per process deploy started (docs/architecture.md).
struct RunRecord {
  std::string name, kind, site, role, address, log;
  int pid = 0;
  std::vector<std::string> argv;
  std::string started_at;  // UTC ISO-8601
};
nlohmann::json toJson(const RunRecord& r);
std::string runRecordPath(const std::string& state_dir, const std::string& name);
Status writeRunRecord(const std::string& state_dir, const RunRecord& r);
// The record, or nullopt when there is none (or it cannot be parsed).
std::optional<RunRecord> readRunRecord(const std::string& state_dir, const std::string& name);
std::vector<RunRecord> readRunRecords(const std::string& state_dir);

// True while `pid` is alive and still runs `tandemd` (a recycled pid is not ours).
bool isOurProcess(int pid);

// The pid in `<state_dir>/stores/<store>/pgdata/postmaster.pid` while that process is alive and
// is a postgres; nullopt otherwise.
std::optional<int> livePostmaster(const std::string& state_dir, const std::string& store);

// Stops that postmaster with `pg_ctl stop -m fast` as `postgres`, then SIGKILL when it is still
// there after `timeout`. OK when none was running.
Status stopPostmaster(const std::string& state_dir, const std::string& store,
                      std::chrono::seconds timeout);

// OK when `address` is on a local interface (all of 127.0.0.0/8 is on Linux's loopback).
Status checkAddressIsLocal(const std::string& address);

// OK when nothing listens on address:port (nor on the wildcard address) for each port; otherwise
// FailedPrecondition naming `who`, the address and the port.
Status checkPortsFree(const std::string& who, const std::string& address,
                      const std::vector<int>& ports);

// GET https://address:8443/health with the state directory's CA and token. OK when it answers
// {"ok": true}; otherwise the reason (Unavailable, or the error the process returned).
Status probeHealth(const std::string& state_dir, const std::string& address,
                   std::chrono::milliseconds timeout);

// The last non-empty line of a log file ("" when unreadable or empty), at most 300 characters.
std::string lastLogLine(const std::string& path);

// Reaps `pid` if it is our exited child (so it does not linger as a zombie). Never blocks.
void reapIfChild(int pid);

// Sends `sig` to the process and to its process group when it leads one (deploy starts each
// daemon in its own session, so the group holds what the daemon started).
void signalTree(int pid, int sig);

// Now in UTC ISO-8601 ("2026-11-25T13:36:18Z").
std::string nowUtc();

// A planned process's identity (name, kind, site, role, pool, address, log) as a ProcessState
// whose run-time fields (pid, state, detail) are still empty.
ProcessState stateOf(const ProcessSpec& spec);

}  // namespace tandem::deploy::internal
