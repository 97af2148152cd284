// Validator: rules every pool follows (site, servers, store) and front-end pool rules (pool
// pairing, the CMS).
//
// - A pool's store is in the pool's site (a chat pool's site is the site of its primary store).
// - Front-end pools are paired symmetrically across sites; exactly one front-end pool hosts
//   the CMS.
#include <map>

#include "topology/internal/checker.h"

namespace tandem::topology::internal {
namespace {

void checkServers(Checker& c, const Pool& p) {
  if (p.servers.empty() && p.key_lines.count("servers") != 0) {
    c.add(lineOf(p.key_lines, "servers", p.line), "pool-no-servers",
          subjectOf(p) + " has no servers; list at least one");
  }
  for (const auto& s : p.servers) {
    if (s.key_lines.count("site") == 0) continue;  // defaulted to the pool's site
    int line = lineOf(s.key_lines, "site", s.line);
    std::string subject = "server `" + s.fqdn + "`";
    if (c.site(s.site, "site", subject, line) == nullptr) continue;
    if (p.role != PoolRole::kChat && !p.site.empty() && s.site != p.site) {
      c.add(line, "server-site-mismatch",
            subject + " is in site `" + s.site + "` but its pool `" + p.fqdn + "` is in `" +
                p.site + "`; only chat pools stretch over several sites");
    }
  }
}

void checkStoreOfPool(Checker& c, const Pool& p) {
  const Topology& t = c.topology();
  int line = lineOf(p.key_lines, "store", p.line);
  const Store* s = c.store(p.store, "store", subjectOf(p), line);
  if (s == nullptr) return;
  if (s->witness_only) {
    c.add(line, "witness-only-used",
          "store `" + s->name + "` is witness-only and holds no database, so it cannot be the "
          "store of " + subjectOf(p));
    return;
  }
  const Store* principal = t.principalOf(s->name);
  if (principal != nullptr && principal != s) {  // a store mirroring itself: mirror-self
    c.add(line, "store-is-mirror",
          "store `" + s->name + "` is the mirror of `" + principal->name + "`; " + subjectOf(p) +
              " must use the principal (`" + principal->name + "`)");
  }
  for (const auto& other : t.stores) {
    if (other.log_shipping && other.log_shipping->to == s->name && other.name != s->name) {
      c.add(line, "store-is-backup",
            "store `" + s->name + "` is the log-shipping backup of `" + other.name +
                "` (a restoring standby); " + subjectOf(p) + " needs a writable store");
      break;
    }
  }
  // An unknown site was reported as unknown-reference; comparing it would only add noise.
  bool sites_known = t.findSite(p.site) != nullptr && t.findSite(s->site) != nullptr;
  if (sites_known && s->site != p.site) {
    c.add(line, "store-other-site",
          subjectOf(p) + " is in site `" + p.site + "` but its store `" + s->name +
              "` is in `" + s->site + "`; a pool's store must be in the pool's site");
  }
}

// Two front-end pools on one store would share one `rtc`; two chat pools, one `mgc`.
void checkSharedStores(Checker& c) {
  std::map<std::pair<std::string, PoolRole>, const Pool*> user_of;
  for (const auto& p : c.topology().pools) {
    if (p.store.empty() || !p.role_known || p.role == PoolRole::kEdge) continue;
    auto [it, inserted] = user_of.emplace(std::make_pair(p.store, p.role), &p);
    if (!inserted) {
      c.add(lineOf(p.key_lines, "store", p.line), "store-shared",
            "store `" + p.store + "` is already the store of " + subjectOf(*it->second) +
                "; two " + roleWord(p.role) + " pools cannot share one store");
    }
  }
}

void checkPairing(Checker& c, const Pool& p) {
  int line = lineOf(p.key_lines, "backup_pool", p.line);
  if (p.backup_pool == p.fqdn) {
    c.add(line, "pairing-self",
          subjectOf(p) + " names itself as its backup pool; pair it with a front-end pool in "
          "another site");
    return;
  }
  const Pool* b = c.pool(p.backup_pool, "backup_pool", subjectOf(p), line);
  if (b == nullptr) return;
  if (!b->role_known) return;
  if (b->role != PoolRole::kFrontend) {
    c.add(line, "pairing-not-frontend",
          "backup pool `" + b->fqdn + "` of " + subjectOf(p) + " is " +
              aPoolOfRole(b->role) + "; only front-end pools can be paired");
    return;
  }
  if (!p.site.empty() && b->site == p.site) {
    c.add(line, "pairing-same-site",
          subjectOf(p) + " and its backup pool `" + b->fqdn + "` are both in site `" + p.site +
              "`; a backup pool must be in another site to survive the loss of this one");
  }
  if (b->backup_pool != p.fqdn) {
    c.add(line, "pairing-not-symmetric",
          subjectOf(p) + " names `" + b->fqdn + "` as its backup pool, but `" + b->fqdn +
              "` names " +
              (b->backup_pool.empty() ? std::string("no backup pool")
                                      : "`" + b->backup_pool + "`") +
              "; set `backup_pool: " + p.fqdn + "` on `" + b->fqdn + "`");
  }
}

void checkCms(Checker& c) {
  const Topology& t = c.topology();
  const Pool* first = nullptr;
  for (const auto& p : t.pools) {
    if (!p.cms) continue;
    if (first == nullptr) {
      first = &p;
      continue;
    }
    c.add(lineOf(p.key_lines, "cms", p.line), "cms-multiple",
          subjectOf(p) + " has `cms: true`, but " + subjectOf(*first) +
              " already hosts the CMS; exactly one pool hosts the CMS active master");
  }
  if (first == nullptr && !t.pools.empty()) {
    c.add(lineOf(t.key_lines, "pools", 0), "cms-none",
          "no pool hosts the CMS; set `cms: true` on exactly one front-end pool");
  }
}

}  // namespace

void checkPools(Checker& c) {
  for (const auto& p : c.topology().pools) {
    c.site(p.site, "site", subjectOf(p), lineOf(p.key_lines, "site", p.line));
    checkServers(c, p);
    if (!p.role_known) continue;
    if (p.role != PoolRole::kEdge) checkStoreOfPool(c, p);
    if (p.role == PoolRole::kFrontend && !p.backup_pool.empty()) checkPairing(c, p);
  }
  checkSharedStores(c);
  checkCms(c);
}

}  // namespace tandem::topology::internal
