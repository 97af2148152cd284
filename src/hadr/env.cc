// The deployed topology, store agents and CMS as the HA/DR commands see them.
#include "hadr/env.h"

#include <future>

#include "rpc/client.h"
#include "topology/loader.h"

namespace tandem::hadr {

Result<std::unique_ptr<Env>> Env::load(const std::string& state_dir) {
  auto topo = topology::loadValidTopology(state_dir + "/topology.yaml");
  if (!topo) {
    if (topo.error().code() == StatusCode::kNotFound) {
      return fail(notFound("nothing is deployed in `" + state_dir +
                           "` (no topology.yaml); run `tandemctl deploy up FILE` first"));
    }
    return fail(topo.error().withContext("loading the deployed topology"));
  }
  return std::make_unique<Env>(std::move(*topo), state_dir);
}

Result<const topology::Store*> Env::store(const std::string& name) const {
  const topology::Store* s = topo_.findStore(name);
  if (s == nullptr) {
    return fail(notFound("store `" + name +
                         "` is not in the topology (see `tandemctl topology show`)"));
  }
  return s;
}

Result<const topology::Pool*> Env::chatPool(const std::string& fqdn) const {
  const topology::Pool* p = topo_.findPool(fqdn);
  if (p == nullptr) {
    return fail(notFound("pool `" + fqdn + "` is not in the topology (see `tandemctl topology show`)"));
  }
  if (p->role != topology::PoolRole::kChat) {
    return fail(invalidArgument("pool `" + fqdn + "` is a " + poolRoleName(p->role) +
                                " pool, not a persistent chat pool"));
  }
  if (p->backup_store.empty()) {
    return fail(failedPrecondition("chat pool `" + fqdn +
                                   "` has no backup_store in the topology: it has no disaster "
                                   "recovery to fail over to"));
  }
  return p;
}

Result<sqlagent::Client> Env::agent(const std::string& name) const {
  return sqlagent::Client::forStore(topo_, name, state_dir_);
}

namespace {
Result<sqlagent::Client> shortClient(const Env& env, const std::string& name,
                                     std::chrono::milliseconds bound) {
  auto s = env.store(name);
  if (!s) return fail(s.error());
  auto opts = rpc::clientOptionsFromStateDir(env.stateDir());
  if (!opts) return fail(opts.error());
  opts->timeout = bound;
  return sqlagent::Client((*s)->address, *opts);
}
}  // namespace

Status Env::probeAgent(const std::string& name, std::chrono::milliseconds bound) const {
  auto c = shortClient(*this, name, bound);
  if (!c) return c.error();
  Status st = c->health();
  if (!st.isOk()) {
    return unavailable("the agent of store `" + name + "` does not answer: " + st.message());
  }
  return st;
}

Result<sqlagent::AgentStatus> Env::agentStatus(const std::string& name,
                                               std::chrono::milliseconds bound) const {
  auto c = shortClient(*this, name, bound);
  if (!c) return fail(c.error());
  auto st = c->status();
  if (!st) {
    return fail(unavailable("the agent of store `" + name + "` does not answer: " +
                            st.error().message()));
  }
  return st;
}

std::vector<std::string> Env::reachableServers(const std::string& pool,
                                               std::chrono::milliseconds bound) const {
  std::vector<std::string> up;
  const topology::Pool* p = topo_.findPool(pool);
  if (p == nullptr) return up;
  auto opts = rpc::clientOptionsFromStateDir(state_dir_);
  if (!opts) return up;
  opts->timeout = bound;
  std::vector<std::future<bool>> probes;
  for (const auto& s : p->servers) {
    probes.push_back(std::async(std::launch::async, [addr = s.address, o = *opts] {
      rpc::AdminClient c(addr, 8443, o);
      return c.get("/health").has_value();
    }));
  }
  for (size_t i = 0; i < probes.size(); ++i) {
    if (probes[i].get()) up.push_back(p->servers[i].fqdn);
  }
  return up;
}

Result<cms::Client*> Env::cms() {
  if (!cms_) {
    auto c = cms::Client::connect(topo_, state_dir_, "tandemctl");
    if (!c) {
      return fail(unavailable(c.error().message()));
    }
    cms_ = std::move(*c);
  }
  return cms_.get();
}

std::string Env::cmsFailoverHint() const {
  const topology::Pool* cms_pool = topo_.cmsPool();
  if (cms_pool == nullptr || cms_pool->backup_pool.empty()) return "tandemctl cms failover";
  return "tandemctl cms failover --pool " + cms_pool->backup_pool;
}

Result<nlohmann::json> Env::setting(const std::string& key) {
  auto c = cms();
  if (!c) return fail(c.error());
  auto v = (*c)->getSetting(key);
  if (!v) {
    resetCms();
    return fail(v.error());
  }
  return v;
}

Status Env::setSettings(const nlohmann::json& changes) {
  auto c = cms();
  if (!c) return c.error();
  auto v = (*c)->setSettings(changes);
  if (!v) {
    resetCms();
    return v.error();
  }
  return Status::ok();
}

std::unique_ptr<JournalStore> Env::journalStore() {
  // The CMS journal is append-only: the newest entry of a key holds the whole document.
  auto get = [this](const std::string& key) -> Result<std::optional<nlohmann::json>> {
    auto c = cms();
    if (!c) return fail(unavailable(c.error().message()));
    auto entries = (*c)->journal(key);
    if (!entries) {
      resetCms();
      return fail(unavailable(entries.error().message()));
    }
    if (entries->empty()) return std::optional<nlohmann::json>{};
    const auto& last = entries->back();
    if (!last.contains("doc") || last["doc"].is_null()) return std::optional<nlohmann::json>{};
    return std::optional<nlohmann::json>(last["doc"]);
  };
  auto set = [this](const std::string& key, const nlohmann::json& doc) -> Status {
    auto c = cms();
    if (!c) return unavailable(c.error().message());
    nlohmann::json entry = {{"run", key}, {"doc", doc}};
    if (doc.is_object()) {
      entry["runbook"] = doc.value("runbook", "");
      entry["state"] = doc.value("state", "");
      entry["run_id"] = doc.value("run_id", "");
    }
    Status st = (*c)->appendJournal(entry);
    if (!st.isOk()) {
      resetCms();
      return unavailable(st.message());
    }
    return st;
  };
  auto cms_store = std::make_unique<FunctionJournalStore>("the CMS journal", get, set);
  return std::make_unique<FallbackJournalStore>(
      std::move(cms_store), std::make_unique<FileJournalStore>(state_dir_ + "/journal"));
}

}  // namespace tandem::hadr
