// CMS failover (the five steps in failover.h) and `cms sync`.
#include "cms/failover.h"

#include <future>
#include <map>

#include "cms/internal/principal.h"
#include "cms/internal/sync.h"
#include "cms/internal/xds.h"
#include "rpc/client.h"

namespace tandem::cms {
namespace {

using internal::Location;
using internal::Xds;

struct CopyState {
  Location loc;
  std::unique_ptr<Xds> xds;  // null when unreachable or absent
  std::string problem;
  int64_t epoch = -1;
  std::optional<Version> latest;
};

std::vector<CopyState> locate(const topology::Topology& t, const std::string& secret) {
  std::vector<CopyState> out;
  for (const auto& loc : internal::locationsOf(t)) {
    CopyState c;
    c.loc = loc;
    auto x = Xds::open(loc, secret, false);
    if (!x) {
      c.problem = x.error().message();
    } else {
      auto e = (*x)->epoch();
      auto l = (*x)->latest(true);
      if (!e || !l) {
        c.problem = (!e ? e.error() : l.error()).message();
      } else {
        c.epoch = *e;
        c.latest = *l;
        c.xds = std::move(*x);
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

nlohmann::json FailoverReport::toJson() const {
  return {{"from_store", from_store}, {"from_pool", from_pool},
          {"from_reachable", from_reachable}, {"to_store", to_store},
          {"to_pool", to_pool}, {"epoch", epoch},
          {"version", version}, {"versions_lost", versions_lost},
          {"master", master}, {"already_active", already_active},
          {"plan", plan}};
}

std::map<std::string, nlohmann::json> askReplicas(const topology::Topology& t,
                                                  const std::string& state_dir, bool full,
                                                  std::chrono::milliseconds timeout) {
  std::map<std::string, nlohmann::json> out;
  auto secret = internal::readSecret(state_dir);
  if (!secret) return out;
  rpc::ClientOptions o;
  o.ca_file = state_dir + "/pki/ca.pem";
  o.token = *secret;
  o.timeout = timeout;
  std::vector<std::pair<std::string, std::future<Result<nlohmann::json>>>> jobs;
  const std::string path = full ? "/cms/replica?full=1" : "/cms/replica";
  for (const auto& pool : t.pools)
    for (const auto& s : pool.servers)
      jobs.emplace_back(s.fqdn, std::async(std::launch::async, [o, path, addr = s.address] {
                          return rpc::AdminClient(addr, 8443, o).get(path);
                        }));
  for (auto& [fqdn, f] : jobs) {
    auto r = f.get();
    if (r) out[fqdn] = *r;
  }
  return out;
}

Result<FailoverReport> failover(const topology::Topology& t, const FailoverOptions& o) {
  auto secret = internal::readSecret(o.state_dir);
  if (!secret) return fail(secret.error());
  const int total = o.what_if ? 2 : 5;
  auto step_start = std::chrono::steady_clock::now();
  auto report_step = [&](int i, const std::string& name, const std::string& outcome) {
    if (o.progress) o.progress(i, total, name, outcome, since(step_start));
    step_start = std::chrono::steady_clock::now();
  };

  std::string target_pool = o.target_pool;
  if (!o.target_store.empty()) {
    auto pool = internal::poolOfPrincipal(
        t, o.target_store, o.store_named_as, o.target_pool, *secret,
        [&t](const std::string& pool, const topology::Store& st, const std::string& principal) {
          const std::string kind = principal == st.mirror ? "Mirror" : "Backup";
          return "`tandemctl cms failover --pool " + pool + " --store " + principal +
                 "` (cmdlet: `Invoke-CsManagementServerFailover -" + kind + "SqlServerFqdn " +
                 principal + "." + t.domain + " -" + kind + "SqlInstanceName rtc`)";
        });
    if (!pool) return fail(pool.error());
    target_pool = *pool;
  }

  // 1 locate the CMS copies.
  std::vector<CopyState> copies = locate(t, *secret);
  if (copies.empty())
    return fail(failedPrecondition("the topology has no pool with `cms: true`, so there is no CMS"));
  if (copies.size() < 2)
    return fail(failedPrecondition("CMS pool `" + copies[0].loc.pool +
                                   "` has no backup pool with its own store to fail over to"));
  // The replicas know the newest epoch any CMS reached: a copy below it was failed over or
  // moved past (fenced), so it is never the active one, whatever it still says.
  auto replicas = askReplicas(t, o.state_dir, true, std::chrono::milliseconds(1500));
  int64_t replica_epoch = 0;
  for (const auto& [fqdn, r] : replicas)
    if (r.contains("full") && r["full"].is_object())
      replica_epoch = std::max(replica_epoch, r["full"].value("epoch", int64_t{0}));
  CopyState* active = nullptr;
  for (auto& c : copies)
    if (c.xds && c.epoch >= 1 && c.epoch >= replica_epoch && (!active || c.epoch > active->epoch))
      active = &c;
  CopyState* target = nullptr;
  if (!target_pool.empty()) {
    for (auto& c : copies)
      if (c.loc.pool == target_pool) target = &c;
    if (!target)
      return fail(invalidArgument("pool `" + target_pool + "` holds no CMS copy; choose `" +
                                  copies[0].loc.pool + "` or `" + copies[1].loc.pool + "`"));
  } else {
    target = (active == &copies[1]) ? &copies[0] : &copies[1];
  }
  FailoverReport rep;
  rep.to_store = target->loc.store;
  rep.to_pool = target->loc.pool;
  if (active) {
    rep.from_store = active->loc.store;
    rep.from_pool = active->loc.pool;
    rep.from_reachable = true;
  } else {
    CopyState& other = (target == &copies[0]) ? copies[1] : copies[0];
    rep.from_store = other.loc.store;
    rep.from_pool = other.loc.pool;
  }
  std::string located;
  for (const auto& c : copies) {
    located += (located.empty() ? "" : "; ") + std::string("store `") + c.loc.store + "` (" +
               c.loc.role + ", pool " + c.loc.pool + "): " +
               (c.xds ? "epoch " + std::to_string(c.epoch) + ", version " +
                            std::to_string(c.latest ? c.latest->number : 0)
                      : c.problem);
  }
  report_step(1, "Locate the CMS copies", "found " + located);
  if (!target->xds) {
    // The target must answer; create xds there if the store is up but holds no copy.
    auto x = o.what_if ? Xds::open(target->loc, *secret, false) : Xds::open(target->loc, *secret, true);
    if (!x && !(o.what_if && x.error().code() == StatusCode::kNotFound))
      return fail(unavailable("cannot fail the CMS over to store `" + target->loc.store +
                              "`: " + target->problem + "; bring the store up first "
                              "(`tandemctl db status`)"));
    if (x) {
      target->xds = std::move(*x);
      auto e = target->xds->epoch();
      target->epoch = e ? *e : -1;
    }
  }
  if (active == target) {
    rep.already_active = true;
    rep.epoch = target->epoch;
    rep.version = target->latest ? target->latest->number : 0;
  }

  // 2 newest known version: the old active's, else the newest a replica holds.
  std::optional<Version> newest;
  int64_t max_epoch = std::max<int64_t>(target->epoch, 0);
  for (const auto& c : copies) {
    max_epoch = std::max(max_epoch, c.epoch);
    if (c.latest && (!newest || c.latest->number > newest->number)) newest = c.latest;
  }
  for (const auto& [fqdn, r] : replicas) {
    if (!r.contains("full")) continue;
    auto v = versionFromJson(r["full"]);
    if (!v || v->number == 0) continue;
    max_epoch = std::max(max_epoch, v->epoch);
    if (!newest || v->number > newest->number) newest = *v;
  }
  int64_t target_latest = target->latest ? target->latest->number : 0;
  // Versions the new active will not hold: those newer than anything the target or a replica
  // has. Unknowable when the old active is gone; 0 by construction when it answers (step 2).
  rep.versions_lost = 0;
  // The first active CMS holds epoch 1 and may be unreachable now, with no replica telling us
  // so (none was pushed yet): never hand out an epoch that could tie with it.
  rep.epoch = rep.already_active ? target->epoch : std::max<int64_t>(max_epoch + 1, 2);
  rep.version = rep.already_active ? target_latest
                                   : std::max(target_latest, newest ? newest->number : 0) + 1;
  if (o.what_if) {
    if (rep.already_active) {
      rep.plan.push_back("nothing to do: store `" + rep.to_store + "` already holds the active CMS");
    } else {
      rep.plan.push_back(active ? "copy the versions store `" + rep.to_store + "` lacks from "
                                      "store `" + rep.from_store + "` (it answers: nothing lost)"
                                : "seed store `" + rep.to_store + "` from the newest replica "
                                  "(version " + std::to_string(newest ? newest->number : 0) +
                                  "; the old active does not answer)");
      rep.plan.push_back("raise the epoch of store `" + rep.to_store + "` to " +
                         std::to_string(rep.epoch));
      rep.plan.push_back("publish failover version " + std::to_string(rep.version));
      rep.plan.push_back("wait for a server of pool `" + rep.to_pool + "` to become CMS master");
    }
    report_step(2, "Plan", std::to_string(rep.plan.size()) + " steps");
    return rep;
  }
  if (rep.already_active) {
    report_step(2, "Copy the last versions", "skipped: store `" + rep.to_store +
                                                 "` is already the active CMS");
    report_step(3, "Raise the epoch", "skipped: epoch is " + std::to_string(rep.epoch));
    report_step(4, "Publish a failover version", "skipped");
  } else {
    if (active) {
      auto copied = internal::syncStandby(*active->xds, *target->xds);
      if (!copied) return fail(copied.error().withContext("copying the last CMS versions"));
      report_step(2, "Copy the last versions",
                  "copied " + std::to_string(*copied) + " versions from store `" +
                      rep.from_store + "` (nothing lost)");
    } else {
      report_step(2, "Copy the last versions",
                  "store `" + rep.from_store + "` does not answer; store `" + rep.to_store +
                      "` holds version " + std::to_string(target_latest) +
                      ", the newest replica version " +
                      std::to_string(newest ? newest->number : 0) + " is carried over");
    }
    // 3 raise the epoch.
    Status st = target->xds->setEpoch(rep.epoch);
    if (!st.isOk()) return fail(st.withContext("raising the CMS epoch"));
    report_step(3, "Raise the epoch", "store `" + rep.to_store + "` is the active CMS (epoch " +
                                          std::to_string(rep.epoch) + ")");
    // 4 failover version.
    Version v;
    v.number = rep.version;
    v.epoch = rep.epoch;
    v.author = o.author;
    v.kind = "failover";
    v.summary = "CMS failed over to store `" + rep.to_store + "` (pool " + rep.to_pool + ")";
    v.document = newest ? newest->document : nlohmann::json::object();
    if (!v.document.contains("topology_yaml"))
      return fail(failedPrecondition("no copy of the CMS and no replica holds a published "
                                     "version; publish the topology first"));
    auto ins = target->xds->insert(v);
    if (!ins) return fail(ins.error().withContext("writing the failover version"));
    report_step(4, "Publish a failover version", "version " + std::to_string(v.number) +
                                                     " written (epoch " + std::to_string(v.epoch) + ")");
  }
  // 5 wait for a master in the target pool.
  auto deadline = std::chrono::steady_clock::now() + o.master_wait;
  for (;;) {
    auto l = target->xds->lease();
    const topology::Pool* pool = nullptr;
    if (l && l->valid && t.findServer(l->holder, &pool) && pool && pool->fqdn == rep.to_pool) {
      rep.master = l->holder;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (o.master_wait.count() > 0) {
    if (rep.master.empty())
      return fail(failedPrecondition(
          "store `" + rep.to_store + "` is now the active CMS, but no server of pool `" +
          rep.to_pool + "` took the master lease within " +
          std::to_string(o.master_wait.count() / 1000) +
          " s; start its front ends (`tandemctl cms status` shows the master)"));
    report_step(5, "Wait for a master", "server " + rep.master + " is CMS master");
  }
  return rep;
}

Result<int64_t> syncStandbyNow(const topology::Topology& t, const std::string& state_dir) {
  auto secret = internal::readSecret(state_dir);
  if (!secret) return fail(secret.error());
  auto active = internal::findActive(t, *secret, false);
  if (!active) return fail(active.error());
  for (const auto& loc : internal::locationsOf(t)) {
    if (loc.store == active->xds->location().store) continue;
    auto standby = Xds::open(loc, *secret, true);
    if (!standby) return fail(standby.error().withContext("CMS standby"));
    return internal::syncStandby(*active->xds, **standby);
  }
  return fail(failedPrecondition("the CMS pool has no backup pool, so there is no standby copy"));
}

}  // namespace tandem::cms
