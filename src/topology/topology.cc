// The topology model: lookups, role names, share paths and the JSON form of `topology show`.
#include "topology/topology.h"

#include <nlohmann/json.hpp>

namespace tandem::topology {

int lineOf(const KeyLines& lines, const std::string& key, int fallback) {
  auto it = lines.find(key);
  return it == lines.end() ? fallback : it->second;
}

// ---- Lookups ---------------------------------------------------------------------------------
// Linear scans: a topology has tens of elements, and a Topology stays a plain copyable value.

const Site* Topology::findSite(const std::string& name) const {
  for (const auto& s : sites) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Store* Topology::findStore(const std::string& name) const {
  for (const auto& s : stores) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Pool* Topology::findPool(const std::string& fqdn) const {
  for (const auto& p : pools) {
    if (p.fqdn == fqdn) return &p;
  }
  return nullptr;
}

const Server* Topology::findServer(const std::string& fqdn, const Pool** pool) const {
  for (const auto& p : pools) {
    for (const auto& s : p.servers) {
      if (s.fqdn == fqdn) {
        if (pool != nullptr) *pool = &p;
        return &s;
      }
    }
  }
  if (pool != nullptr) *pool = nullptr;
  return nullptr;
}

const Pool* Topology::cmsPool() const {
  for (const auto& p : pools) {
    if (p.cms) return &p;
  }
  return nullptr;
}

std::vector<const Pool*> Topology::poolsWithRole(PoolRole role) const {
  std::vector<const Pool*> out;
  for (const auto& p : pools) {
    if (p.role == role) out.push_back(&p);
  }
  return out;
}

const Store* Topology::principalOf(const std::string& mirror_name) const {
  if (mirror_name.empty()) return nullptr;
  for (const auto& s : stores) {
    if (s.mirror == mirror_name) return &s;
  }
  return nullptr;
}

const char* poolRoleName(PoolRole role) {
  switch (role) {
    case PoolRole::kFrontend: return "frontend";
    case PoolRole::kChat: return "chat";
    case PoolRole::kEdge: return "edge";
  }
  return "frontend";
}

std::optional<PoolRole> parsePoolRole(const std::string& name) {
  if (name == "frontend") return PoolRole::kFrontend;
  if (name == "chat") return PoolRole::kChat;
  if (name == "edge") return PoolRole::kEdge;
  return std::nullopt;
}

const Site* siteOfServer(const Topology& topology, const std::string& server_fqdn) {
  const Pool* pool = nullptr;
  const Server* server = topology.findServer(server_fqdn, &pool);
  if (server == nullptr) return nullptr;
  return topology.findSite(server->site.empty() ? pool->site : server->site);
}

std::string resolveSharePath(const LogShipping& log_shipping, const std::string& state_dir) {
  const std::string& share = log_shipping.share;
  if (share.empty() || share.front() == '/') return share;
  if (state_dir.empty()) return share;
  std::string base = state_dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string rel = share;
  while (rel.size() > 2 && rel.compare(0, 2, "./") == 0) rel.erase(0, 2);
  return base == "/" ? "/" + rel : base + "/" + rel;
}

// ---- JSON (schema of `tandemctl topology show --json`, documented in docs/topology.md) ------

namespace {

// Optional references print as null rather than "" so that consumers can test for absence.
nlohmann::json orNull(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

nlohmann::json poolJson(const Pool& p) {
  nlohmann::json j;
  j["fqdn"] = p.fqdn;
  j["role"] = p.role_known ? nlohmann::json(poolRoleName(p.role)) : nlohmann::json(nullptr);
  j["site"] = p.site;
  switch (p.role) {
    case PoolRole::kFrontend:
      j["store"] = orNull(p.store);
      j["backup_pool"] = orNull(p.backup_pool);
      j["edge_pool"] = orNull(p.edge_pool);
      j["cms"] = p.cms;
      break;
    case PoolRole::kChat:
      j["store"] = orNull(p.store);
      j["backup_store"] = orNull(p.backup_store);
      j["backup_mirror"] = orNull(p.backup_mirror);
      j["frontend_pool"] = orNull(p.frontend_pool);
      j["active_servers"] = p.active_servers;
      break;
    case PoolRole::kEdge:
      j["next_hop"] = orNull(p.next_hop);
      j["federation"] = p.federation;
      break;
  }
  j["servers"] = nlohmann::json::array();
  for (const auto& s : p.servers) {
    j["servers"].push_back(
        {{"fqdn", s.fqdn}, {"address", s.address}, {"site", s.site}, {"line", s.line}});
  }
  j["line"] = p.line;
  return j;
}

}  // namespace

nlohmann::json toJson(const Topology& t) {
  nlohmann::json j;
  j["file"] = t.file;
  j["domain"] = t.domain;
  j["sites"] = nlohmann::json::array();
  for (const auto& s : t.sites) {
    j["sites"].push_back({{"name", s.name}, {"low_latency_to", s.low_latency_to}, {"line", s.line}});
  }
  j["stores"] = nlohmann::json::array();
  for (const auto& s : t.stores) {
    nlohmann::json st{{"name", s.name},       {"site", s.site},
                      {"address", s.address}, {"mirror", orNull(s.mirror)},
                      {"witness", orNull(s.witness)}, {"witness_only", s.witness_only}};
    if (s.log_shipping) {
      st["log_shipping"] = {{"to", s.log_shipping->to},
                            {"share", s.log_shipping->share},
                            {"interval_s", s.log_shipping->interval_s}};
    } else {
      st["log_shipping"] = nullptr;
    }
    st["line"] = s.line;
    j["stores"].push_back(std::move(st));
  }
  j["pools"] = nlohmann::json::array();
  for (const auto& p : t.pools) j["pools"].push_back(poolJson(p));
  // Demo passwords are left out on purpose: `show --json` output ends up in tickets and logs.
  j["users"] = nlohmann::json::array();
  for (const auto& u : t.users) {
    j["users"].push_back({{"name", u.name}, {"pool", u.pool}, {"line", u.line}});
  }
  j["rooms"] = nlohmann::json::array();
  for (const auto& r : t.rooms) {
    j["rooms"].push_back({{"name", r.name}, {"category", r.category}, {"line", r.line}});
  }
  return j;
}

}  // namespace tandem::topology
