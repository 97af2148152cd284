// Backup links from the topology.
#include "backup/link.h"

#include <algorithm>
#include <cctype>

namespace tandem::backup {

namespace {

std::vector<std::string> storeAddresses(const topology::Topology& t, const std::string& store) {
  std::vector<std::string> out;
  if (const topology::Store* s = t.findStore(store)) {
    out.push_back(s->address);
    if (const topology::Store* m = s->mirror.empty() ? nullptr : t.findStore(s->mirror)) {
      out.push_back(m->address);
    }
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

const char* moduleName(Module m) { return m == Module::kUserData ? "UserData" : "Cms"; }

Result<Module> parseModule(const std::string& name) {
  if (lower(name) == "userdata") return Module::kUserData;
  if (lower(name) == "cms") return Module::kCms;
  return fail(invalidArgument("backup module `" + name +
                              "` is unknown; the modules are UserData "
                              "and Cms"));
}

std::string Link::slotName() const {
  std::string s = "tandem_backup_";
  for (char c : target_store)
    s += std::isalnum(static_cast<unsigned char>(c)) ? std::tolower(c) : '_';
  return s;
}

std::string Link::describe() const {
  return pool + " -> " + backup_pool + " (" + source_store + "/" + source_db + " -> " +
         target_store + "/" + copy_db + ")";
}

Result<Link> linkFor(const topology::Topology& t, const std::string& pool,
                     const std::string& password) {
  const topology::Pool* p = t.findPool(pool);
  if (p == nullptr || p->role != topology::PoolRole::kFrontend) {
    return fail(invalidArgument("`" + pool + "` is not a front-end pool of the topology"));
  }
  const topology::Pool* q = p->backup_pool.empty() ? nullptr : t.findPool(p->backup_pool);
  if (q == nullptr) {
    return fail(invalidArgument("front-end pool `" + pool +
                                "` has no backup pool; set "
                                "`backup_pool:` in the topology"));
  }
  if (p->store.empty() || q->store.empty()) {
    return fail(invalidArgument("pools `" + pool + "` and `" + q->fqdn + "` both need a store"));
  }
  Link l;
  l.pool = p->fqdn;
  l.backup_pool = q->fqdn;
  l.source_store = p->store;
  l.target_store = q->store;
  l.source_addresses = storeAddresses(t, p->store);
  l.target_addresses = storeAddresses(t, q->store);
  l.password = password;
  return l;
}

Result<Link> importLinkFor(const topology::Topology& t, const std::string& pool,
                           const std::string& password) {
  const topology::Pool* q = t.findPool(pool);
  if (q == nullptr || q->backup_pool.empty()) {
    return fail(invalidArgument("front-end pool `" + pool + "` has no backup pool"));
  }
  return linkFor(t, q->backup_pool, password);
}

}  // namespace tandem::backup
