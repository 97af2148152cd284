// Which processes a topology needs on this machine, in start order (see plan.h).
#include "deploy/plan.h"

#include <algorithm>

namespace tandem::deploy {

using topology::PoolRole;

const char* phaseName(Phase phase) {
  switch (phase) {
    case Phase::kStores:
      return "stores";
    case Phase::kFrontends:
      return "front ends";
    case Phase::kChat:
      return "chat";
    case Phase::kEdges:
      return "edges";
  }
  return "?";
}

std::string complianceName(const std::string& chat_pool_fqdn) {
  return "compliance-" + chat_pool_fqdn;
}

namespace {

std::vector<std::string> daemonArgv(const std::string& tandemd, const std::string& role,
                                    const std::string& state_dir, const std::string& flag,
                                    const std::string& name) {
  return {tandemd,       "--role",  role, "--topology", state_dir + "/topology.yaml",
          "--state-dir", state_dir, flag, name};
}

Phase phaseOf(PoolRole role) {
  switch (role) {
    case PoolRole::kFrontend:
      return Phase::kFrontends;
    case PoolRole::kChat:
      return Phase::kChat;
    case PoolRole::kEdge:
      return Phase::kEdges;
  }
  return Phase::kEdges;
}

std::vector<int> portsOf(PoolRole role) {
  // docs/architecture.md "Processes, addresses and ports".
  switch (role) {
    case PoolRole::kFrontend:
      return {8443, 5222, 5223, 5270, 5347};
    case PoolRole::kChat:
      return {8443};
    case PoolRole::kEdge:
      return {8443, 5269};
  }
  return {8443};
}

}  // namespace

std::vector<ProcessSpec> planProcesses(const topology::Topology& topology,
                                       const std::string& state_dir, const std::string& tandemd) {
  std::vector<ProcessSpec> out;
  for (const auto& store : topology.stores) {
    ProcessSpec p;
    p.name = store.name;
    p.kind = "store";
    p.site = store.site;
    p.role = "sqlagent";
    p.address = store.address;
    p.phase = Phase::kStores;
    p.argv = daemonArgv(tandemd, "sqlagent", state_dir, "--store", store.name);
    p.log = state_dir + "/stores/" + store.name + "/agent.log";
    p.ports = store.witness_only ? std::vector<int>{8443} : std::vector<int>{8443, 5432};
    out.push_back(std::move(p));
  }
  for (const auto& pool : topology.pools) {
    for (const auto& server : pool.servers) {
      ProcessSpec p;
      p.name = server.fqdn;
      p.kind = "server";
      p.site = server.site.empty() ? pool.site : server.site;
      p.role = topology::poolRoleName(pool.role);
      p.pool = pool.fqdn;
      p.address = server.address;
      p.phase = phaseOf(pool.role);
      p.argv = daemonArgv(tandemd, p.role, state_dir, "--server", server.fqdn);
      p.log = state_dir + "/servers/" + server.fqdn + "/server.log";
      p.ports = portsOf(pool.role);
      out.push_back(std::move(p));
    }
    if (pool.role == PoolRole::kChat && !pool.servers.empty()) {
      const auto& first = pool.servers.front();
      ProcessSpec p;
      p.name = complianceName(pool.fqdn);
      p.kind = "server";
      p.site = first.site.empty() ? pool.site : first.site;
      p.role = "compliance";
      p.pool = pool.fqdn;
      p.address = first.address;
      p.phase = Phase::kChat;
      p.argv = daemonArgv(tandemd, "compliance", state_dir, "--server", first.fqdn);
      p.log = state_dir + "/servers/" + first.fqdn + "/compliance.log";
      p.has_admin = false;
      out.push_back(std::move(p));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const ProcessSpec& a, const ProcessSpec& b) {
    return static_cast<int>(a.phase) < static_cast<int>(b.phase);
  });
  return out;
}

}  // namespace tandem::deploy
