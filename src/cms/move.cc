// cms install-db, import, move and bootstrap (the steps in move.h, docs/runbooks/cms.md).
#include "cms/move.h"

#include <future>
#include <thread>

#include "cms/export.h"
#include "cms/failover.h"
#include "cms/internal/principal.h"
#include "cms/internal/sync.h"
#include "cms/internal/xds.h"
#include "rpc/client.h"

namespace tandem::cms {
namespace {

using internal::Location;
using internal::Xds;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

rpc::ClientOptions adminOptions(const std::string& state_dir, const std::string& secret) {
  rpc::ClientOptions o;
  o.ca_file = state_dir + "/pki/ca.pem";
  o.token = secret;
  o.timeout = std::chrono::seconds(2);
  return o;
}

const topology::Server* findServer(const topology::Topology& t, const std::string& fqdn,
                                   const topology::Pool** pool) {
  return t.findServer(fqdn, pool);
}

// PUT /cms/replica with `version` on every server, in parallel: (reached, unreached).
std::pair<std::vector<std::string>, std::vector<std::string>> pushEverywhere(
    const topology::Topology& t, const rpc::ClientOptions& opts, const nlohmann::json& version) {
  std::vector<std::pair<std::string, std::future<Result<nlohmann::json>>>> jobs;
  for (const auto& pool : t.pools)
    for (const auto& s : pool.servers)
      jobs.emplace_back(s.fqdn, std::async(std::launch::async, [&opts, &version, a = s.address] {
                          return rpc::AdminClient(a, 8443, opts).put("/cms/replica", version);
                        }));
  std::pair<std::vector<std::string>, std::vector<std::string>> out;
  for (auto& [fqdn, f] : jobs) (f.get() ? out.first : out.second).push_back(fqdn);
  return out;
}

// Waits until a server of `pool` holds the master lease of `xds` ("" when none in time).
std::string waitForMaster(const topology::Topology& t, Xds& xds, const std::string& pool,
                          std::chrono::milliseconds wait) {
  auto deadline = Clock::now() + wait;
  for (;;) {
    auto l = xds.lease();
    const topology::Pool* p = nullptr;
    if (l && l->valid && t.findServer(l->holder, &p) && p && p->fqdn == pool) return l->holder;
    if (Clock::now() >= deadline) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::string installHint(const std::string& store) {
  return "`tandemctl cms install-db --store " + store + " --clean`";
}

}  // namespace

// ---- install-db ---------------------------------------------------------------------------------

nlohmann::json InstallDbReport::toJson() const {
  return {{"store", store}, {"pool", pool}, {"existed", existed}, {"dropped", dropped},
          {"created", created}, {"outcome", outcome}};
}

Result<InstallDbReport> installDb(const topology::Topology& t, const InstallDbOptions& o) {
  auto secret = internal::readSecret(o.state_dir);
  if (!secret) return fail(secret.error());
  auto pool = internal::poolOfPrincipal(
      t, o.store, "", "", *secret,
      [](const std::string&, const topology::Store&, const std::string& principal) {
        return installHint(principal);
      });
  if (!pool) return fail(pool.error());
  Location loc = *internal::locationOfPool(t, *pool);
  InstallDbReport rep;
  rep.store = o.store;
  rep.pool = *pool;
  auto existing = Xds::open(loc, *secret, false);
  if (!existing && existing.error().code() != StatusCode::kNotFound) return fail(existing.error());
  if (existing) {
    rep.existed = true;
    auto latest = (*existing)->latest(false);
    if (!latest) return fail(latest.error());
    auto active = internal::findActive(t, *secret, false);
    const bool holds_active = active && active->xds->location().store == loc.store;
    if (holds_active && !o.force)
      return fail(failedPrecondition(
          "store `" + o.store + "` holds the ACTIVE CMS (epoch " + std::to_string(active->epoch) +
          "); a clean install would drop it. Fail the CMS over first (`tandemctl cms failover`), "
          "or pass --force if you really mean to drop it"));
    if (!*latest) {
      rep.outcome = "store `" + o.store + "` already holds an empty CMS database";
      if (!o.clean) return rep;
    } else if (!o.clean) {
      return fail(failedPrecondition(
          "store `" + o.store + "` already holds a CMS copy (newest version " +
          std::to_string((*latest)->number) + "); pass --clean to replace it with an empty one"));
    }
    existing->reset();
    if (o.what_if) {
      rep.outcome = "would drop the CMS database on store `" + o.store + "` and create it empty";
      return rep;
    }
    Status st = internal::dropXds(loc, *secret);
    if (!st.isOk()) return fail(st);
    rep.dropped = true;
  } else if (o.what_if) {
    rep.outcome = "would create an empty CMS database on store `" + o.store + "`";
    return rep;
  }
  auto created = Xds::open(loc, *secret, true);
  if (!created) return fail(created.error().withContext("creating the CMS database"));
  rep.created = true;
  rep.outcome = std::string(rep.dropped ? "replaced the CMS database" : "created a CMS database") +
                " on store `" + o.store + "` (pool " + rep.pool + "): empty, not active";
  return rep;
}

// ---- import -------------------------------------------------------------------------------------

Result<int64_t> importExportFile(const topology::Topology& t, const std::string& state_dir,
                                 const std::string& file, const std::string& pool) {
  auto f = readExport(file);
  if (!f) return fail(f.error());
  auto secret = internal::readSecret(state_dir);
  if (!secret) return fail(secret.error());
  std::string problems;
  for (const auto& loc : internal::locationsOf(t)) {
    if (!pool.empty() && loc.pool != pool) continue;
    auto x = Xds::open(loc, *secret, false);
    if (!x) {
      problems += "; " + x.error().message();
      continue;
    }
    auto latest = (*x)->latest(false);
    if (pool.empty() && latest && *latest) {
      problems += "; store `" + loc.store + "` is not empty";
      continue;
    }
    return internal::importInto(**x, *f);
  }
  if (!pool.empty() && !internal::locationOfPool(t, pool))
    return fail(invalidArgument("pool `" + pool + "` cannot hold the CMS: it is neither the CMS "
                                "pool nor its backup pool"));
  return fail(failedPrecondition("no empty CMS database to import into" + problems +
                                 "; create one with `tandemctl cms install-db --store S --clean`"));
}

// ---- move ---------------------------------------------------------------------------------------

nlohmann::json MoveReport::toJson() const {
  return {{"to_pool", to_pool}, {"to_store", to_store}, {"old_store", old_store},
          {"old_answers", old_answers}, {"already_moved", already_moved},
          {"imported_versions", imported}, {"epoch", epoch}, {"version", version},
          {"replicas_pointed", replicas_pointed}, {"replicas_unreached", replicas_unreached},
          {"master", master}, {"plan", plan}};
}

Result<MoveReport> move(const topology::Topology& t, const MoveOptions& o) {
  auto secret = internal::readSecret(o.state_dir);
  if (!secret) return fail(secret.error());
  const int total = o.what_if ? 2 : 6;
  auto step_start = Clock::now();
  auto step = [&](int i, const std::string& name, const std::string& outcome) {
    if (o.progress) o.progress(i, total, name, outcome, since(step_start));
    step_start = Clock::now();
  };
  std::vector<Location> locs = internal::locationsOf(t);
  if (locs.empty())
    return fail(failedPrecondition("the topology has no pool with `cms: true`, so there is no CMS"));
  std::string pool = o.pool;
  if (pool.empty() && locs.size() > 1) pool = locs[1].pool;
  auto target_loc = internal::locationOfPool(t, pool);
  if (!target_loc)
    return fail(invalidArgument("pool `" + pool + "` cannot hold the CMS: only the CMS pool `" +
                                locs[0].pool + "` and its backup pool can (topology `cms: true`)"));
  MoveReport rep;
  rep.to_pool = pool;
  rep.to_store = target_loc->store;

  // 1 read the export.
  auto f = readExport(o.from);
  if (!f) return fail(f.error());
  step(1, "Read the export", std::to_string(f->versions.size()) + " versions, newest " +
                                 std::to_string(f->latestNumber()) + " (epoch " +
                                 std::to_string(f->epoch) + ", exported " +
                                 formatUtc(f->exported_at) + " from store `" + f->store + "`)");

  // 2 check the old CMS and the target.
  auto target = Xds::open(*target_loc, *secret, false);
  if (!target)
    return fail(failedPrecondition("store `" + rep.to_store + "` holds no clean CMS database (" +
                                   target.error().message() + "); run " +
                                   installHint(rep.to_store) + " first"));
  auto target_epoch = (*target)->epoch();
  if (!target_epoch) return fail(target_epoch.error());
  int64_t max_epoch = std::max<int64_t>(f->epoch, *target_epoch);
  int64_t max_version = f->latestNumber();
  std::optional<Version> newest = f->versions.back();
  int64_t old_epoch = -1;
  for (const auto& loc : locs) {
    if (loc.store == target_loc->store) continue;
    auto x = Xds::open(loc, *secret, false);
    auto e = x ? (*x)->epoch() : Result<int64_t>(-1);
    if (!e) continue;
    if (*e >= 1) {
      rep.old_answers = true;
      rep.old_store = loc.store;
    } else if (rep.old_store.empty()) {
      rep.old_store = loc.store;
    }
    old_epoch = std::max(old_epoch, *e);
  }
  max_epoch = std::max(max_epoch, old_epoch);
  rep.already_moved = *target_epoch >= 1 && *target_epoch > old_epoch;
  for (const auto& [fqdn, r] : askReplicas(t, o.state_dir, true, std::chrono::milliseconds(1500))) {
    auto v = r.contains("full") ? versionFromJson(r["full"]) : Result<Version>(fail(notFound("")));
    if (!v || v->number == 0) continue;
    max_epoch = std::max(max_epoch, v->epoch);
    max_version = std::max(max_version, v->number);
    if (v->number > newest->number) newest = *v;
  }
  if (!rep.already_moved && !o.force) {
    if (rep.old_answers)
      return fail(failedPrecondition(
          "the CMS on store `" + rep.old_store + "` still answers; fail it over with `tandemctl "
          "cms failover --pool " + pool + "` (nothing lost), or pass --force to move it anyway "
          "(the old copy is then fenced by epoch)"));
    return fail(failedPrecondition(
        "the CMS on store `" + rep.old_store + "` does not answer, so it cannot agree to the "
        "move; rerun with --force (the old copy is fenced by epoch and never becomes master "
        "again)"));
  }
  rep.epoch = rep.already_moved ? *target_epoch : std::max<int64_t>(max_epoch + 1, 2);
  rep.version = max_version + 1;
  step(2, "Check the old CMS",
       rep.already_moved ? "store `" + rep.to_store + "` is already the active CMS (epoch " +
                               std::to_string(rep.epoch) + ")"
       : rep.old_answers ? "store `" + rep.old_store + "` answers; moving anyway (--force)"
                         : "store `" + rep.old_store + "` does not answer; moving (--force)");
  if (o.what_if) {
    rep.plan = {"import " + std::to_string(f->versions.size()) + " versions into store `" +
                    rep.to_store + "`",
                "raise the epoch of store `" + rep.to_store + "` to " + std::to_string(rep.epoch) +
                    " and publish move version " + std::to_string(rep.version),
                "point every server's replica at the new CMS",
                "wait for a server of pool `" + pool + "` to become CMS master"};
    if (rep.already_moved) rep.plan = {"push the current version to every replica, wait for a master"};
    return rep;
  }

  // 3-4 import, new epoch, move version.
  Version v;
  if (rep.already_moved) {
    step(3, "Import the export", "skipped: already imported");
    auto cur = (*target)->latest(true);
    if (!cur || !*cur) return fail(cur ? notFound("the moved CMS holds no version") : cur.error());
    v = **cur;
    rep.version = v.number;
    step(4, "Take a new epoch", "skipped: epoch is " + std::to_string(rep.epoch));
  } else {
    auto n = internal::importInto(**target, *f);
    if (!n) return fail(n.error());
    rep.imported = *n;
    step(3, "Import the export", "imported " + std::to_string(*n) + " versions into store `" +
                                     rep.to_store + "`");
    Status st = (*target)->setEpoch(rep.epoch);
    if (!st.isOk()) return fail(st.withContext("raising the CMS epoch"));
    v.number = rep.version;
    v.epoch = rep.epoch;
    v.author = o.author;
    v.kind = "move";
    v.summary = "CMS moved to store `" + rep.to_store + "` (pool " + pool + ") from an export";
    v.document = newest->document;
    auto ins = (*target)->insert(v);
    if (!ins) return fail(ins.error().withContext("writing the move version"));
    v = *ins;
    step(4, "Take a new epoch", "store `" + rep.to_store + "` is the active CMS (epoch " +
                                    std::to_string(rep.epoch) + ", version " +
                                    std::to_string(v.number) + "); older copies are fenced");
  }

  // 5 point every replica.
  auto pushed = pushEverywhere(t, adminOptions(o.state_dir, *secret), toJson(v));
  rep.replicas_pointed = pushed.first;
  rep.replicas_unreached = pushed.second;
  step(5, "Point every replica", std::to_string(pushed.first.size()) + " replicas hold version " +
                                     std::to_string(v.number) +
                                     (pushed.second.empty() ? "" : ", " +
                                          std::to_string(pushed.second.size()) +
                                          " servers do not answer (the master pushes when they return)"));

  // 6 wait for a master.
  if (o.master_wait.count() == 0) return rep;  // the caller checks (unit tests)
  rep.master = waitForMaster(t, **target, pool, o.master_wait);
  if (rep.master.empty())
    return fail(failedPrecondition(
        "store `" + rep.to_store + "` is now the active CMS, but no server of pool `" + pool +
        "` took the master lease in time; start its front ends, then `tandemctl cms bootstrap`"));
  step(6, "Wait for a master", "server " + rep.master + " is CMS master");
  return rep;
}

// ---- bootstrap ----------------------------------------------------------------------------------

nlohmann::json BootstrapReport::toJson() const {
  nlohmann::json servers = nlohmann::json::array();
  for (const auto& s : this->servers)
    servers.push_back({{"fqdn", s.fqdn}, {"pool", s.pool}, {"already", s.already},
                       {"version", s.version}, {"agent", s.agent}, {"outcome", s.outcome}});
  return {{"active_pool", active_pool}, {"active_store", active_store}, {"master", master},
          {"current_version", current_version}, {"servers", servers}};
}

Result<BootstrapReport> bootstrap(const topology::Topology& t, const BootstrapOptions& o) {
  auto secret = internal::readSecret(o.state_dir);
  if (!secret) return fail(secret.error());
  auto active = internal::findActive(t, *secret, false);
  if (!active) return fail(active.error());
  Xds& xds = *active->xds;
  auto cur = xds.latest(true);
  if (!cur) return fail(cur.error());
  if (!*cur) return fail(notFound("the CMS holds no version yet; nothing to bootstrap against"));
  BootstrapReport rep;
  rep.active_pool = xds.location().pool;
  rep.active_store = xds.location().store;
  rep.current_version = (*cur)->number;
  std::vector<std::string> names;
  if (!o.server.empty()) {
    if (!findServer(t, o.server, nullptr))
      return fail(notFound("server `" + o.server + "` is not in the topology"));
    names.push_back(o.server);
  } else if (const auto* p = t.findPool(rep.active_pool)) {
    for (const auto& s : p->servers) names.push_back(s.fqdn);
  }
  const rpc::ClientOptions opts = adminOptions(o.state_dir, *secret);
  for (const auto& name : names) {
    const topology::Pool* pool = nullptr;
    const topology::Server* srv = findServer(t, name, &pool);
    BootstrapServer b;
    b.fqdn = name;
    b.pool = pool->fqdn;
    rpc::AdminClient admin(srv->address, 8443, opts);
    auto held = admin.get("/cms/replica");
    if (!held)
      return fail(unavailable("server `" + name + "` does not answer on its admin endpoint (" +
                              held.error().message() + "); start it first"));
    const bool current = held->value("version", int64_t{-1}) == (*cur)->number &&
                         held->value("epoch", int64_t{-1}) == (*cur)->epoch;
    if (!current) {
      auto put = admin.put("/cms/replica", toJson(**cur));
      if (!put) return fail(put.error().withContext("pushing the current version to `" + name + "`"));
      held = put;
    }
    b.version = held->value("version", int64_t{0});
    if (b.version != (*cur)->number)
      return fail(failedPrecondition("server `" + name + "` keeps version " +
                                     std::to_string(b.version) + " instead of the current " +
                                     std::to_string((*cur)->number)));
    bool agent_ok = true;
    if (pool->role != topology::PoolRole::kFrontend) {
      b.agent = "replica only";
    } else if (pool->fqdn != rep.active_pool) {
      b.agent = "master candidate (idle: the CMS is in pool " + rep.active_pool + ")";
    } else {
      auto deadline = Clock::now() + o.wait;
      agent_ok = false;
      for (bool first = true;; first = false) {
        auto agents = xds.agents(std::chrono::seconds(10));
        if (agents && std::find(agents->begin(), agents->end(), name) != agents->end()) {
          agent_ok = true;
          if (!first) b.agent = "file transfer agent (started heartbeating)";
          else b.agent = "file transfer agent";
          break;
        }
        if (Clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      }
      if (!agent_ok)
        return fail(failedPrecondition(
            "server `" + name + "` holds version " + std::to_string(b.version) +
            " but does not heartbeat as a CMS file transfer agent; restart it (its log says why)"));
    }
    b.already = current && b.agent.find("started") == std::string::npos;
    b.outcome = b.already ? "already runs the CMS services: replica at version " +
                                std::to_string(b.version) + ", " + b.agent
                          : "now runs the CMS services: replica at version " +
                                std::to_string(b.version) + ", " + b.agent;
    rep.servers.push_back(std::move(b));
  }
  auto l = xds.lease();
  if (l && l->valid) rep.master = l->holder;
  return rep;
}

}  // namespace tandem::cms
