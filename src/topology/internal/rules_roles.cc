// Validator: role-specific rules: edge pools and federation, chat pools (backup store,
// backup mirror, active servers), demo users and rooms.
//
// - Every next hop and every user's home pool is a front-end pool; every `edge_pool` an edge.
// - When there are edge pools, exactly one carries federation.
// - A chat pool's backup store is the log-shipping target of its store, in another site; an
//   active chat server runs in the primary store's site or a site marked `low_latency_to` it
//   (DESIGN.md §7, chat failover step 7).
#include <algorithm>
#include <set>

#include "topology/internal/checker.h"

namespace tandem::topology::internal {
namespace {

void checkEdgeLinks(Checker& c, const Pool& p) {
  if (p.role == PoolRole::kEdge) {
    int line = lineOf(p.key_lines, "next_hop", p.line);
    const Pool* hop = c.pool(p.next_hop, "next_hop", subjectOf(p), line);
    if (hop != nullptr && hop->role_known && hop->role != PoolRole::kFrontend) {
      c.add(line, "next-hop-not-frontend",
            "next hop `" + hop->fqdn + "` of " + subjectOf(p) + " is " +
                aPoolOfRole(hop->role) + "; an edge hands traffic to a front-end pool");
    }
  }
  if (p.role == PoolRole::kFrontend && !p.edge_pool.empty()) {
    int line = lineOf(p.key_lines, "edge_pool", p.line);
    const Pool* edge = c.pool(p.edge_pool, "edge_pool", subjectOf(p), line);
    if (edge != nullptr && edge->role_known && edge->role != PoolRole::kEdge) {
      c.add(line, "edge-pool-not-edge",
            "`edge_pool` of " + subjectOf(p) + " names `" + edge->fqdn + "`, " +
                aPoolOfRole(edge->role) + "; it must name an edge pool");
    }
  }
}

void checkFederation(Checker& c) {
  const Topology& t = c.topology();
  auto edges = t.poolsWithRole(PoolRole::kEdge);
  if (edges.empty()) return;  // no edge, no federation: a valid closed deployment
  const Pool* first = nullptr;
  for (const Pool* p : edges) {
    if (!p->federation) continue;
    if (first == nullptr) {
      first = p;
      continue;
    }
    c.add(lineOf(p->key_lines, "federation", p->line), "federation-multiple",
          subjectOf(*p) + " has `federation: true`, but " + subjectOf(*first) +
              " already carries federation; exactly one edge pool does (move it with "
              "`tandemctl federation route set`)");
  }
  if (first == nullptr) {
    c.add(edges.front()->line, "federation-none",
          "no edge pool carries federation; set `federation: true` on exactly one edge pool");
  }
}

void checkChatBackup(Checker& c, const Pool& p, const Store* primary) {
  int line = lineOf(p.key_lines, "backup_store", p.line);
  if (p.backup_store == p.store) {
    c.add(line, "chat-backup-same-site",
          "backup store of " + subjectOf(p) + " is its own store `" + p.store +
              "`; name the log-shipping target in another site");
    return;
  }
  const Store* backup = c.store(p.backup_store, "backup_store", subjectOf(p), line);
  if (backup == nullptr || primary == nullptr) return;
  if (!backup->site.empty() && backup->site == primary->site) {
    c.add(line, "chat-backup-same-site",
          "backup store `" + backup->name + "` of " + subjectOf(p) + " is in site `" +
              backup->site + "`, like its store `" + primary->name +
              "`; the backup store must be in another site");
  }
  if (!primary->log_shipping) {
    c.add(line, "chat-backup-no-log-shipping",
          subjectOf(p) + " has backup store `" + backup->name + "` but its store `" +
              primary->name + "` has no `log_shipping`; add `log_shipping: {to: " +
              backup->name + ", share: share/" + primary->name + "}` to `" + primary->name + "`");
  } else if (primary->log_shipping->to != backup->name &&
             primary->log_shipping->to != primary->name) {  // log-shipping-self said it
    c.add(line, "chat-backup-log-shipping-mismatch",
          "backup store of " + subjectOf(p) + " is `" + backup->name + "` but its store `" +
              primary->name + "` ships its logs to `" + primary->log_shipping->to +
              "`; they must be the same store");
  }
}

void checkChatBackupMirror(Checker& c, const Pool& p) {
  int line = lineOf(p.key_lines, "backup_mirror", p.line);
  if (p.backup_store.empty()) {
    c.add(line, "backup-mirror-without-backup-store",
          subjectOf(p) + " has a `backup_mirror` but no `backup_store`; the backup mirror "
          "mirrors the backup store after failover");
    return;
  }
  if (p.backup_mirror == p.backup_store) {
    c.add(line, "backup-mirror-self",
          "`backup_mirror` of " + subjectOf(p) + " is its backup store `" + p.backup_store +
              "` itself; name another store in the backup store's site");
    return;
  }
  const Store* m = c.store(p.backup_mirror, "backup_mirror", subjectOf(p), line);
  const Store* backup = c.topology().findStore(p.backup_store);
  if (m == nullptr || backup == nullptr) return;
  if (!m->site.empty() && !backup->site.empty() && m->site != backup->site) {
    c.add(line, "backup-mirror-other-site",
          "backup mirror `" + m->name + "` of " + subjectOf(p) + " is in site `" + m->site +
              "` but the backup store `" + backup->name + "` is in `" + backup->site +
              "`; a mirror must be in its principal's site");
  }
  if (!backup->mirror.empty() && backup->mirror != m->name) {
    c.add(line, "backup-mirror-mismatch",
          "backup mirror of " + subjectOf(p) + " is `" + m->name + "` but the backup store `" +
              backup->name + "` names `" + backup->mirror + "` as its mirror; use one store");
  }
}

void checkActiveServers(Checker& c, const Pool& p, const Store* primary) {
  const Topology& t = c.topology();
  std::set<std::string> seen;
  for (size_t i = 0; i < p.active_servers.size(); ++i) {
    const std::string& fqdn = p.active_servers[i];
    int line = lineOf(p.key_lines, "active_servers[" + std::to_string(i) + "]", p.line);
    if (!seen.insert(fqdn).second) {
      c.add(line, "active-server-repeated",
            "server `" + fqdn + "` is listed twice in `active_servers` of " + subjectOf(p));
      continue;
    }
    const Pool* owner = nullptr;
    const Server* s = t.findServer(fqdn, &owner);
    if (s == nullptr) {
      c.add(line, "unknown-reference",
            "`active_servers` of " + subjectOf(p) + " names server `" + fqdn +
                "`, which is not a server of any pool");
      continue;
    }
    if (owner != &p) {
      c.add(line, "active-server-not-in-pool",
            "active server `" + fqdn + "` of " + subjectOf(p) + " is a server of `" +
                owner->fqdn + "`; list only this pool's servers");
      continue;
    }
    if (primary == nullptr || s->site == primary->site) continue;
    const Site* site = t.findSite(s->site);
    if (site == nullptr || t.findSite(primary->site) == nullptr) continue;  // reported already
    const auto& near_sites = site->low_latency_to;
    bool near = std::find(near_sites.begin(), near_sites.end(), primary->site) != near_sites.end();
    if (!near) {
      c.add(line, "active-server-wrong-site",
            "active server `" + fqdn + "` of " + subjectOf(p) + " is in site `" + s->site +
                "`, but the primary store `" + primary->name + "` is in `" + primary->site +
                "` and `" + s->site + "` is not marked `low_latency_to` it");
    }
  }
}

void checkChat(Checker& c, const Pool& p) {
  const Topology& t = c.topology();
  int fe_line = lineOf(p.key_lines, "frontend_pool", p.line);
  const Pool* fe = c.pool(p.frontend_pool, "frontend_pool", subjectOf(p), fe_line);
  if (fe != nullptr && fe->role_known && fe->role != PoolRole::kFrontend) {
    c.add(fe_line, "chat-frontend-not-frontend",
          "`frontend_pool` of " + subjectOf(p) + " names `" + fe->fqdn + "`, " +
              aPoolOfRole(fe->role) + "; chat servers attach to a front-end pool");
  }
  const Store* primary = p.store.empty() ? nullptr : t.findStore(p.store);
  if (!p.backup_store.empty()) checkChatBackup(c, p, primary);
  if (!p.backup_mirror.empty()) checkChatBackupMirror(c, p);
  checkActiveServers(c, p, primary);
}

void checkUsersAndRooms(Checker& c) {
  const Topology& t = c.topology();
  for (const auto& u : t.users) {
    int line = lineOf(u.key_lines, "pool", u.line);
    const Pool* p = c.pool(u.pool, "pool", "user `" + u.name + "`", line);
    if (p != nullptr && p->role_known && p->role != PoolRole::kFrontend) {
      c.add(line, "user-pool-not-frontend",
            "user `" + u.name + "` has home pool `" + p->fqdn + "`, " +
                aPoolOfRole(p->role) + "; a home pool must be a front-end pool");
    }
  }
  bool all_roles_known = std::all_of(t.pools.begin(), t.pools.end(),
                                     [](const Pool& p) { return p.role_known; });
  if (!t.rooms.empty() && all_roles_known && t.poolsWithRole(PoolRole::kChat).empty()) {
    c.add(lineOf(t.key_lines, "rooms", 0), "rooms-without-chat-pool",
          "the topology lists rooms but has no chat pool to hold them; add a chat pool or "
          "remove `rooms`");
  }
}

}  // namespace

void checkRoles(Checker& c) {
  for (const auto& p : c.topology().pools) {
    if (!p.role_known) continue;
    checkEdgeLinks(c, p);
    if (p.role == PoolRole::kChat) checkChat(c, p);
  }
  checkFederation(c);
  checkUsersAndRooms(c);
}

}  // namespace tandem::topology::internal
