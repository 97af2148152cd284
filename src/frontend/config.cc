// FrontendConfig from the topology.
#include "frontend/config.h"

#include "common/files.h"

namespace tandem::frontend {

std::vector<std::string> poolStoreAddresses(const topology::Topology& t,
                                            const std::string& pool_fqdn) {
  std::vector<std::string> out;
  const topology::Pool* p = t.findPool(pool_fqdn);
  if (!p) return out;
  if (const topology::Store* s = t.findStore(p->store)) {
    out.push_back(s->address);
    if (!s->mirror.empty()) {
      if (const topology::Store* m = t.findStore(s->mirror)) out.push_back(m->address);
    }
  }
  return out;
}

Result<FrontendConfig> configFromTopology(const topology::Topology& t,
                                          const std::string& server_fqdn,
                                          const std::string& state_dir) {
  const topology::Pool* pool = nullptr;
  const topology::Server* server = t.findServer(server_fqdn, &pool);
  if (!server || !pool || pool->role != topology::PoolRole::kFrontend) {
    return fail(StatusCode::kNotFound, "server `" + server_fqdn +
                                           "` is not a front-end server of topology `" + t.file +
                                           "`; check --server");
  }
  FrontendConfig c;
  c.domain = t.domain;
  c.server_fqdn = server_fqdn;
  c.address = server->address;
  c.pool_fqdn = pool->fqdn;
  c.site = server->site.empty() ? pool->site : server->site;
  c.topology_file = t.file;
  c.state_dir = state_dir;
  auto token = readFile(state_dir + "/secret/token");
  if (!token) {
    return fail(StatusCode::kNotFound, "the deployment secret `" + state_dir +
                                           "/secret/token` is missing; run `tandemctl deploy up`");
  }
  c.token = *token;
  while (!c.token.empty() && (c.token.back() == '\n' || c.token.back() == ' ')) c.token.pop_back();
  c.cert_file = state_dir + "/pki/" + server_fqdn + ".pem";
  c.key_file = state_dir + "/pki/" + server_fqdn + ".key";
  c.ca_file = state_dir + "/pki/ca.pem";
  c.store_addresses = poolStoreAddresses(t, pool->fqdn);
  for (const auto* p : t.poolsWithRole(topology::PoolRole::kFrontend)) {
    for (const auto& s : p->servers) c.frontend_pools[p->fqdn].push_back({s.fqdn, s.address, p->fqdn});
    c.pool_store_addresses[p->fqdn] = poolStoreAddresses(t, p->fqdn);
  }
  for (const auto* p : t.poolsWithRole(topology::PoolRole::kChat)) {
    c.chat_pools[p->fqdn] = {p->fqdn, p->frontend_pool, p->active_servers};
  }
  for (const auto& u : t.users) {
    c.directory[u.name] = u.pool;
    if (u.pool == pool->fqdn) c.demo_users.push_back(u);
  }
  return c;
}

}  // namespace tandem::frontend
