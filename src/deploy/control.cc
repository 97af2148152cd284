// deploy status, down and kill-site: reading and stopping what deploy started (see deploy.h).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

#include "common/process.h"
#include "deploy/deploy.h"
#include "deploy/internal/processes.h"
#include "deploy/plan.h"
#include "deploy/state_dir.h"
#include "topology/loader.h"

namespace tandem::deploy {

using internal::RunRecord;
using Clock = std::chrono::steady_clock;

nlohmann::json toJson(const ProcessState& p) {
  return {{"name", p.name},       {"kind", p.kind},       {"site", p.site},     {"role", p.role},
          {"pool", p.pool},       {"address", p.address}, {"pid", p.pid},       {"up", p.up},
          {"healthy", p.healthy}, {"state", p.state},     {"detail", p.detail}, {"log", p.log}};
}

namespace {

// The deployed topology's processes (tandemd path irrelevant here).
Result<std::vector<ProcessSpec>> deployedPlan(const std::string& state_dir) {
  if (!hasDeployment(state_dir)) {
    return fail(notFound("nothing is deployed in `" + state_dir +
                         "`; deploy a topology first (tandemctl deploy up FILE)"));
  }
  auto topo = topology::loadValidTopology(state_dir + "/topology.yaml");
  if (!topo) {
    return fail(topo.error().withContext("reading the deployed topology in `" + state_dir + "`"));
  }
  return planProcesses(*topo, state_dir, "tandemd");
}

Result<topology::Topology> deployedTopology(const std::string& state_dir) {
  if (!hasDeployment(state_dir)) {
    return fail(notFound("nothing is deployed in `" + state_dir +
                         "`; deploy a topology first (tandemctl deploy up FILE)"));
  }
  return topology::loadValidTopology(state_dir + "/topology.yaml");
}

ProcessState probe(const ProcessSpec& spec, const std::string& state_dir) {
  ProcessState s = internal::stateOf(spec);
  auto rec = internal::readRunRecord(state_dir, spec.name);
  if (!rec) {
    s.state = "not-started";
    s.detail = "never started by deploy";
    return s;
  }
  s.pid = rec->pid;
  s.up = internal::isOurProcess(rec->pid);
  if (!s.up) {
    std::string last = internal::lastLogLine(spec.log);
    s.state = last.find("not built") != std::string::npos ? "not-built" : "down";
    s.detail = last.empty() ? "not running" : "not running; its log ends: " + last;
    return s;
  }
  if (!spec.has_admin) {
    s.healthy = true;
    s.state = "healthy";
    return s;
  }
  Status h = internal::probeHealth(state_dir, spec.address, std::chrono::milliseconds(2000));
  s.healthy = h.isOk();
  s.state = s.healthy ? "healthy" : "unhealthy";
  s.detail = h.message();
  return s;
}

// SIGTERM to every live one, wait up to `grace`, then SIGKILL the rest. Returns (stopped, killed).
std::pair<int, int> stopAll(const std::vector<RunRecord>& recs, std::chrono::seconds grace,
                            const Progress& progress) {
  std::vector<const RunRecord*> live;
  for (const auto& r : recs) {
    if (internal::isOurProcess(r.pid)) live.push_back(&r);
  }
  if (live.empty()) return {0, 0};
  for (const auto* r : live) {
    // SIGTERM to the daemon only: the agent stops its own PostgreSQL cleanly.
    ::kill(r->pid, SIGTERM);
  }
  auto deadline = Clock::now() + grace;
  auto anyAlive = [&] {
    return std::any_of(live.begin(), live.end(), [](const RunRecord* r) {
      internal::reapIfChild(r->pid);
      return internal::isOurProcess(r->pid);
    });
  };
  while (anyAlive() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int killed = 0;
  for (const auto* r : live) {
    if (internal::isOurProcess(r->pid)) {
      if (progress)
        progress("  " + r->name + " did not stop within " + std::to_string(grace.count()) +
                 " s: SIGKILL");
      internal::signalTree(r->pid, SIGKILL);
      ++killed;
    } else if (progress) {
      progress("  stopped " + r->name);
    }
  }
  return {static_cast<int>(live.size()) - killed, killed};
}

}  // namespace

Result<std::vector<ProcessState>> status(const std::string& state_dir) {
  auto plan = deployedPlan(state_dir);
  if (!plan) return fail(plan.error());
  std::vector<std::future<ProcessState>> futures;
  for (const auto& spec : *plan) {
    futures.push_back(std::async(std::launch::async, probe, spec, state_dir));
  }
  std::vector<ProcessState> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

Result<DownReport> down(const std::string& state_dir, bool purge, Progress progress,
                        std::chrono::seconds grace) {
  if (!hasDeployment(state_dir)) {
    return fail(notFound("nothing is deployed in `" + state_dir + "`"));
  }
  DownReport report;
  auto recs = internal::readRunRecords(state_dir);
  // Servers first (edges, chat, front ends), store agents last: what uses a store goes first.
  std::vector<RunRecord> servers, stores;
  for (auto& r : recs) (r.kind == "store" ? stores : servers).push_back(r);
  for (const auto* group : {&servers, &stores}) {
    auto [stopped, killed] = stopAll(*group, grace, progress);
    report.stopped += stopped;
    report.killed += killed;
  }
  // No postmaster may outlive the deployment, whatever its agent managed to do.
  std::vector<std::string> store_names;
  for (const auto& r : stores) store_names.push_back(r.name);
  if (auto plan = deployedPlan(state_dir)) {
    for (const auto& p : *plan) {
      if (p.kind == "store" &&
          std::find(store_names.begin(), store_names.end(), p.name) == store_names.end()) {
        store_names.push_back(p.name);
      }
    }
  }
  Status first_error;
  for (const auto& name : store_names) {
    if (!internal::livePostmaster(state_dir, name)) continue;
    if (progress) progress("  stopping the PostgreSQL of store " + name +
                           " (an agent leaves its cluster running when it stops)");
    Status st = internal::stopPostmaster(state_dir, name, std::chrono::seconds(30));
    if (st.isOk())
      ++report.postmasters;
    else if (first_error.isOk())
      first_error = st;
  }
  if (!first_error.isOk()) return fail(first_error);
  if (purge) {
    if (Status st = purgeStateDir(state_dir); !st.isOk()) return fail(st);
    report.purged = true;
  }
  return report;
}

Result<KillReport> killSite(const std::string& state_dir, const std::string& site) {
  auto topo = deployedTopology(state_dir);
  if (!topo) return fail(topo.error());
  if (topo->findSite(site) == nullptr) {
    std::string names;
    for (const auto& s : topo->sites) names += (names.empty() ? "" : ", ") + s.name;
    return fail(invalidArgument("site `" + site +
                                "` is not in the deployed topology (sites: " + names + ")"));
  }
  KillReport report;
  std::vector<int> pids;
  for (const auto& r : internal::readRunRecords(state_dir)) {
    if (r.site == site && internal::isOurProcess(r.pid)) {
      pids.push_back(r.pid);
      report.killed.push_back(r.name);
    }
  }
  for (const auto& store : topo->stores) {
    if (store.site != site) continue;
    if (auto pm = internal::livePostmaster(state_dir, store.name)) {
      pids.push_back(*pm);
      ++report.postmasters;
    }
  }
  // All at once, as a power cut would: no process gets to notice another one's death first.
  for (int pid : pids) internal::signalTree(pid, SIGKILL);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  auto anyAlive = [&] {
    return std::any_of(pids.begin(), pids.end(), [](int pid) {
      internal::reapIfChild(pid);
      return isProcessAlive(pid);
    });
  };
  while (anyAlive() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (anyAlive()) {
    return fail(unavailable("some processes of site `" + site + "` survived SIGKILL for 10 s"));
  }
  return report;
}

}  // namespace tandem::deploy
