// The sqlagent role: one agent per store (or witness) host, serving its admin API until stopped.
//
// runAgent() loads the topology, bootstraps or resumes the store in the role it last had
// (D/stores/<name>/agent.json), serves the endpoints listed in client.h on <address>:8443, and
// runs the monitor (witness votes, automatic failover, fencing, rejoin) and, on a backup store,
// the copy job. It blocks until `stop` becomes true (the daemon sets it on SIGTERM/SIGINT) and
// leaves PostgreSQL running: the cluster outlives its agent, as a database outlives its
// management service.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace tandem::sqlagent {

struct AgentOptions {
  std::string topology_file;  // --topology
  std::string state_dir;      // --state-dir
  std::string store;          // --store NAME
  // How long mirror and witness must both have lost the principal before the mirror promotes
  // itself, and a principal must have lost both before it fences itself. Default 10 s;
  // env TANDEM_PARTNER_TIMEOUT_S overrides it (tests, benchmarks). Shorter = faster failover,
  // more risk of failing over on a hiccup.
  std::chrono::milliseconds partner_timeout{std::chrono::seconds(10)};
  // How often the monitor checks partners, witness and the local cluster.
  std::chrono::milliseconds monitor_interval{std::chrono::seconds(1)};
};

// Runs the agent. Returns the process exit code: 0 after a clean stop, 1 when it cannot start
// (unknown store, unreadable topology or secret, admin port taken), with the reason logged.
int runAgent(const AgentOptions& options, const std::atomic<bool>& stop);

}  // namespace tandem::sqlagent
