// The persistent chat disaster-recovery runbooks (DESIGN.md §7, docs/runbooks/persistent-chat.md):
// `tandemctl chat failover` and `tandemctl chat failback`, as Runbooks for the runner.
//
// The builders do no I/O; the steps do (through Env: store agents and the CMS). The Env must
// outlive the runbook. Each step is idempotent and checks its effect from outside.
#pragma once

#include <string>
#include <vector>

#include "hadr/env.h"
#include "hadr/runbook.h"

namespace tandem::hadr {

struct ChatFailoverOptions {
  std::string pool;  // the chat pool, e.g. "chat.example.test"
  // The front-end pool the chat servers attach to after failover. Empty: keep the current one,
  // which must then be reachable (if it was in the lost site, the gate refuses and names one).
  std::string frontend_pool;
  // Fail over although the primary store (or its mirror) still answers: commits the primary
  // acknowledges after the recovery are lost, and it is fenced first.
  bool force = false;
  // The active servers to set. Empty: every server of the pool in the new primary's site or in a
  // site marked low-latency to it.
  std::vector<std::string> active_servers;
  // Optional file of acknowledged message ids (one a line, or a JSON array) that clients
  // recorded: the report counts those missing from the recovered store.
  std::string acknowledged_ids_file;
};

// Steps (numbers as in docs/runbooks/persistent-chat.md):
//   1 removeLogShipping  2 copyLogBackups  3 applyUnappliedLogBackups  4 endConnections
//   5 recoverBackupStore  6 setPoolStateFailedOver  7 installBackupMirror  8 setActiveServers
Runbook chatFailoverRunbook(Env& env, const ChatFailoverOptions& options);

struct ChatFailbackOptions {
  std::string pool;
  // The active servers to set at the end. Empty: the servers of the pool in the primary's site
  // (the topology's active_servers when they are all there).
  std::vector<std::string> active_servers;
};

// Steps: 1 clearActiveServers  2 removeBackupMirroring  3 backUpBackupStore
//   4 restorePrimaryStore  5 configureLogShippingAndMirror  6 setActiveServers
//   7 setPoolStateNormal
Runbook chatFailbackRunbook(Env& env, const ChatFailbackOptions& options);

// The chat pool's servers that may be active for a primary store in `site`: servers in that
// site, or in a site whose low_latency_to lists it.
std::vector<std::string> eligibleChatServers(const topology::Topology& topo,
                                             const topology::Pool& pool, const std::string& site);

// CMS setting keys (docs/architecture.md).
std::string chatStateKey(const std::string& pool);
std::string chatActiveServersKey(const std::string& pool);
std::string chatFrontendPoolKey(const std::string& pool);

}  // namespace tandem::hadr
