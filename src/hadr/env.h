// What the HA/DR commands and runbooks act on: the deployed topology, the state directory, the
// store agents (sqlagent::Client) and the CMS (cms::Client), with short reachability probes.
//
// An Env is created once per tandemctl command on the main thread; runbook steps use it from the
// runner's helper thread one step at a time. Within a step, several threads may call its const
// methods at once (they only read the topology and open their own connections); the CMS calls
// are not thread-safe. Every call blocks on the network. The CMS client is connected lazily and
// reconnected after an error.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cms/client.h"
#include "common/status.h"
#include "hadr/journal.h"
#include "sqlagent/client.h"
#include "topology/topology.h"

namespace tandem::hadr {

class Env {
 public:
  // Loads `<state_dir>/topology.yaml` (the deployed topology). NotFound with a hint to
  // `tandemctl deploy up` when nothing is deployed there; InvalidArgument when it does not load.
  static Result<std::unique_ptr<Env>> load(const std::string& state_dir);
  Env(topology::Topology topo, std::string state_dir)
      : topo_(std::move(topo)), state_dir_(std::move(state_dir)) {}

  const topology::Topology& topology() const { return topo_; }
  const std::string& stateDir() const { return state_dir_; }

  // The store, or NotFound "store `x` is not in the topology".
  Result<const topology::Store*> store(const std::string& name) const;
  // The chat pool, or NotFound / InvalidArgument when `fqdn` is not a chat pool.
  Result<const topology::Pool*> chatPool(const std::string& fqdn) const;

  // The agent client of a store (no I/O).
  Result<sqlagent::Client> agent(const std::string& store) const;
  // OK when the store's agent answers /health within `bound`; Unavailable naming it otherwise.
  Status probeAgent(const std::string& store,
                    std::chrono::milliseconds bound = std::chrono::seconds(2)) const;
  // The agent's /status with a short bound (for preconditions and verifications).
  Result<sqlagent::AgentStatus> agentStatus(const std::string& store,
                                            std::chrono::milliseconds bound = std::chrono::seconds(3)) const;
  // Servers of a front-end pool that answer /health within `bound` (each probed once).
  std::vector<std::string> reachableServers(const std::string& pool,
                                            std::chrono::milliseconds bound = std::chrono::seconds(2)) const;

  // The CMS client (connected on first use). Unavailable "CMS unreachable: ..." when neither
  // copy answers; the hint to fail it over is in cmsFailoverHint().
  Result<cms::Client*> cms();
  // Forgets the CMS connection (after an error) so the next cms() reconnects.
  void resetCms() { cms_.reset(); }
  // "tandemctl cms failover --pool <the CMS pool's backup pool>".
  std::string cmsFailoverHint() const;

  // A setting from the CMS (null when unset). Unavailable when the CMS is down.
  Result<nlohmann::json> setting(const std::string& key);
  // Stores settings in one version; a value it already has writes nothing.
  Status setSettings(const nlohmann::json& changes);

  // The journal store for runbooks: the CMS journal with `<state_dir>/journal/` as fallback.
  std::unique_ptr<JournalStore> journalStore();

 private:
  topology::Topology topo_;
  std::string state_dir_;
  std::unique_ptr<cms::Client> cms_;
};

// True for the roles of a writable store.
inline bool isWritableRole(const std::string& role) {
  return role == "Principal" || role == "Standalone";
}

}  // namespace tandem::hadr
