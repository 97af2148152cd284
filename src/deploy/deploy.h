// Local deployment of a topology: every store agent and server of a topology file as processes on
// this machine, each on its own loopback address (DESIGN.md §8, docs/deploy.md).
//
// `up` prepares the state directory (secret, CA, certificates), then starts the processes in
// phases (store agents, front ends, chat servers and compliance adapters, edges), waiting for each
// one's GET /health before the next phase. `status` reads the run records and asks each process
// for /health; `down` stops everything (SIGTERM, then SIGKILL; PostgreSQL stopped cleanly);
// `killSite` is a data-centre outage (SIGKILL of every process of a site at once, postmasters
// included); `reviveSite` starts that site's processes again.
//
// Every function blocks (starting, stopping, polling /health against deadlines). They are not
// safe to run concurrently on one state directory; different state directories are independent.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace tandem::deploy {

// One process of the deployment as `deploy status` reports it.
struct ProcessState {
  std::string name;  // store name, server FQDN or compliance-<chat pool>
  std::string kind;  // "store" | "server"
  std::string site, role, pool, address, log;
  int pid = 0;           // the last pid deploy started; 0 when never started
  bool up = false;       // the process is alive
  bool healthy = false;  // /health answered ok (compliance adapters: alive)
  // "healthy" | "starting" (alive, /health not ok yet) | "unhealthy" (alive, /health failing
  // past the deadline) | "down" | "not-built" (tandemd says the role is not built yet) |
  // "exited" (ended by itself; `detail` has its log's last line) | "not-started"
  std::string state;
  std::string detail;  // one sentence on why it is not healthy; "" when healthy
};
nlohmann::json toJson(const ProcessState& p);

// Called with one progress line at a time (for stderr); may be empty.
using Progress = std::function<void(const std::string&)>;

struct UpOptions {
  // The topology to deploy. Empty: the one already deployed (`<state_dir>/topology.yaml`).
  std::string topology_file;
  // Absolute path of the state directory (created when absent).
  std::string state_dir;
  // The tandemd binary to start.
  std::string tandemd;
  // Non-empty: start only this site's processes (revive-site).
  std::string only_site;
  // How long each phase waits for its processes' health. Longer tolerates slow machines; the
  // phase after waits that long at most before going on without the stragglers.
  std::chrono::seconds phase_timeout{120};
  Progress progress;
};

struct UpReport {
  std::vector<ProcessState> processes;  // every process in scope, in start order
  int started = 0;                      // processes started by this call
  int already_running = 0;              // processes found running and left alone
  std::vector<std::string> not_built;   // roles tandemd does not have yet: reported, not fatal
  std::vector<std::string> failed;      // exited, or not healthy by the deadline
  std::string cms_note;                 // what happened to the CMS publication (one sentence)
};

// Deploys (idempotent: only what is not running starts). Errors: NotFound when there is no
// topology to deploy; InvalidArgument with the first topology problem; FailedPrecondition when a
// different topology is running in `state_dir`, an address is not local, or a port is taken
// (nothing was started then); Unavailable when the state directory cannot be written. Processes
// that fail after starting do not make it an error: they are listed in `failed`.
Result<UpReport> up(const UpOptions& options);

// Every process of the deployed topology with its live state. Errors: NotFound when nothing is
// deployed in `state_dir`. Probes /health of every live process (2 s bound each, in parallel).
Result<std::vector<ProcessState>> status(const std::string& state_dir);

struct DownReport {
  int stopped = 0;      // ended after SIGTERM
  int killed = 0;       // needed SIGKILL
  int postmasters = 0;  // PostgreSQL postmasters left by their agent and stopped here
  bool purged = false;
};

// Stops every process (edges, chat, front ends, then store agents; SIGTERM, then SIGKILL after
// `grace`), then any postmaster still running in `stores/*/pgdata` (pg_ctl stop as postgres,
// SIGKILL as a last resort). With `purge`, removes everything inside `state_dir` too. Errors:
// NotFound when nothing is deployed; Unavailable when a postmaster survives.
Result<DownReport> down(const std::string& state_dir, bool purge, Progress progress,
                        std::chrono::seconds grace = std::chrono::seconds(20));

struct KillReport {
  std::vector<std::string> killed;  // process names that were alive and got SIGKILL
  int postmasters = 0;              // PostgreSQL postmasters killed with them
};

// A data-centre outage: SIGKILL, at once, of every live process of `site` and of the postmasters
// of its stores; returns once they are gone (10 s bound). Errors: NotFound when nothing is
// deployed; InvalidArgument when the deployed topology has no such site.
Result<KillReport> killSite(const std::string& state_dir, const std::string& site);

// Starts again whatever of `site` is not running (the agents decide their roles from their own
// persisted state). Same result and errors as up() restricted to the site, plus InvalidArgument
// for an unknown site.
Result<UpReport> reviveSite(const std::string& state_dir, const std::string& site,
                            const std::string& tandemd, Progress progress);

// `revive-site --purge`: the site comes back rebuilt empty, as after losing a data centre.
// Kills whatever of `site` still runs (as killSite), removes its stores' data and its servers'
// state (`stores/<store>/`, `servers/<fqdn>/`), then reviveSite(): the agents create empty
// clusters (mirrors are rebuilt from their principal). Same result and errors as reviveSite,
// plus Unavailable naming a directory that could not be removed. Destroys that site's data.
Result<UpReport> reviveSitePurged(const std::string& state_dir, const std::string& site,
                                  const std::string& tandemd, Progress progress);

}  // namespace tandem::deploy
