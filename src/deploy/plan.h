// The processes a topology needs on this machine, in the order `deploy up` starts them.
//
// Pure functions of the topology and the state directory: no I/O, thread-safe. One sqlagent per
// store (principals, mirrors, witnesses, backup stores), one server process per server FQDN, and
// one compliance adapter per chat pool on its first chat server's address.
#pragma once

#include <string>
#include <vector>

#include "topology/topology.h"

namespace tandem::deploy {

// The start phases, in order. Each phase waits for its processes' health before the next starts.
enum class Phase { kStores = 0, kFrontends = 1, kChat = 2, kEdges = 3 };
const char* phaseName(Phase phase);  // "stores" | "front ends" | "chat" | "edges"

struct ProcessSpec {
  std::string name;  // store name, server FQDN, or "compliance-<chat pool fqdn>"
  std::string kind;  // "store" | "server"
  std::string site;
  std::string role;     // sqlagent | frontend | chat | compliance | edge
  std::string pool;     // the pool FQDN; empty for stores
  std::string address;  // the address its admin API (port 8443) and services bind
  Phase phase = Phase::kStores;
  std::vector<std::string> argv;  // tandemd command line
  std::string log;                // absolute path of its log file
  // False for the compliance adapter: it shares its chat server's address, so /health on that
  // address answers for the chat server; the adapter counts as healthy while it runs.
  bool has_admin = true;
  // TCP ports it binds on `address` (checked free before it starts).
  std::vector<int> ports;
};

// The name of a chat pool's compliance adapter process.
std::string complianceName(const std::string& chat_pool_fqdn);

// Every process of `topology`, in start order (phase, then file order). `tandemd` is the daemon
// binary; `state_dir` must be absolute. Requires: a validated topology.
std::vector<ProcessSpec> planProcesses(const topology::Topology& topology,
                                       const std::string& state_dir, const std::string& tandemd);

}  // namespace tandem::deploy
