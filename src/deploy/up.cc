// deploy up and revive-site: prepare the state directory, start processes phase by phase, wait
// for their health (see deploy.h).
//
// Design:
// - Every check that can refuse (topology valid, same topology as what runs, addresses local,
//   ports free) runs before the first process starts, so a refusal changes nothing.
// - A process is "ours" only while its recorded pid is alive and runs tandemd (pids recycle).
// - A process that exits at once is reported with its log's last line; when tandemd says the
//   role is not built yet, that is "not-built" (reported, not a failure of the deploy).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "cms/client.h"
#include "common/files.h"
#include "common/process.h"
#include "deploy/deploy.h"
#include "deploy/internal/processes.h"
#include "deploy/plan.h"
#include "deploy/state_dir.h"
#include "topology/loader.h"

namespace tandem::deploy {

namespace fs = std::filesystem;
using internal::RunRecord;
using Clock = std::chrono::steady_clock;

namespace {

void say(const Progress& p, const std::string& line) {
  if (p) p(line);
}

std::string seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

// Fills `state` for a process that is no longer alive, from its log's last line.
void markEnded(ProcessState& state) {
  std::string last = internal::lastLogLine(state.log);
  state.up = false;
  state.healthy = false;
  if (last.find("not built") != std::string::npos) {
    state.state = "not-built";
    state.detail = "role not built: " + last;
  } else {
    state.state = "exited";
    state.detail =
        last.empty() ? "exited with an empty log (" + state.log + ")" : "exited: " + last;
  }
}

// The refusals that must come before anything starts.
Status checkBeforeStart(const std::vector<ProcessSpec>& plan, const std::string& state_dir) {
  for (const auto& spec : plan) {
    auto rec = internal::readRunRecord(state_dir, spec.name);
    if (rec && internal::isOurProcess(rec->pid)) continue;  // running: it holds its own ports
    Status st = internal::checkAddressIsLocal(spec.address);
    if (!st.isOk()) return st.withContext("`" + spec.name + "`");
    std::vector<int> ports = spec.ports;
    if (spec.kind == "store" && internal::livePostmaster(state_dir, spec.name)) {
      // Its own PostgreSQL still runs (the agent alone died): the agent takes it over.
      ports.erase(std::remove(ports.begin(), ports.end(), 5432), ports.end());
    }
    TANDEM_RETURN_IF_ERROR(internal::checkPortsFree(spec.name, spec.address, ports));
  }
  return Status::ok();
}

// Starts `spec` unless it already runs. Returns true when it started it.
Result<bool> startOne(const ProcessSpec& spec, const std::string& state_dir, ProcessState& state,
                      const Progress& progress) {
  auto rec = internal::readRunRecord(state_dir, spec.name);
  if (rec && internal::isOurProcess(rec->pid)) {
    state.pid = rec->pid;
    state.up = true;
    say(progress, "  " + spec.name + " already running (pid " + std::to_string(rec->pid) + ")");
    return false;
  }
  if (Status st = makeDirs(fs::path(spec.log).parent_path().string(), 0755); !st.isOk()) {
    return fail(st);
  }
  SpawnOptions o;
  o.log_file = spec.log;
  o.cwd = state_dir;
  auto pid = spawnDetached(spec.argv, o);
  if (!pid) return fail(pid.error().withContext("starting `" + spec.name + "`"));
  RunRecord r{spec.name, spec.kind, spec.site, spec.role,         spec.address,
              spec.log,  *pid,      spec.argv, internal::nowUtc()};
  if (Status st = internal::writeRunRecord(state_dir, r); !st.isOk()) return fail(st);
  state.pid = *pid;
  state.up = true;
  say(progress, "  started " + spec.name + " (" + spec.role + ", " + spec.site + ", " +
                    spec.address + "), pid " + std::to_string(*pid));
  return true;
}

// Polls the phase's processes until each is healthy or ended, or the deadline passes.
void waitPhase(const std::vector<const ProcessSpec*>& specs, std::vector<ProcessState*>& states,
               const std::string& state_dir, std::chrono::seconds timeout,
               const Progress& progress) {
  auto start = Clock::now();
  auto deadline = start + timeout;
  std::map<std::string, std::string> last_error;
  // A process without an admin API counts as healthy once it has stayed up this long.
  const auto settle = std::chrono::seconds(2);
  while (true) {
    bool pending = false;
    for (size_t i = 0; i < specs.size(); ++i) {
      ProcessState& st = *states[i];
      if (!st.state.empty()) continue;  // decided
      internal::reapIfChild(st.pid);
      if (!internal::isOurProcess(st.pid)) {
        markEnded(st);
        say(progress,
            "  " + st.name + (st.state == "not-built" ? " not started: " : " ") + st.detail);
        continue;
      }
      Status h = Status::ok();
      if (specs[i]->has_admin) {
        h = internal::probeHealth(state_dir, st.address, std::chrono::milliseconds(1000));
      } else if (Clock::now() - start < settle) {
        h = unavailable("still settling");
      }
      if (h.isOk()) {
        st.healthy = true;
        st.state = "healthy";
        say(progress, "  " + st.name + " healthy (" + seconds(Clock::now() - start) + ")");
      } else {
        last_error[st.name] = h.message();
        pending = true;
      }
    }
    if (!pending) return;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  for (auto* st : states) {
    if (!st->state.empty()) continue;
    st->state = "unhealthy";
    st->detail = "not healthy after " + std::to_string(timeout.count()) +
                 " s: " + last_error[st->name] +
                 "; its log ends: " + internal::lastLogLine(st->log);
    say(progress, "  " + st->name + " " + st->detail);
  }
}

// Publishes the deployed topology to the CMS (version 1 on a new deployment; a new version when
// the file changed; nothing when the CMS already holds this text). Needs the CMS pool's store up.
// Returns the outcome sentence; `ok` tells whether the CMS holds the topology afterwards.
std::string publishToCms(const topology::Topology& topology, const std::string& state_dir,
                         const std::vector<ProcessState>& processes, bool& ok) {
  ok = false;
  const topology::Pool* pool = topology.cmsPool();
  if (pool == nullptr) return "the topology has no CMS pool: nothing published";
  for (const auto& p : processes) {
    if (p.kind == "store" && p.name == pool->store && !p.healthy) {
      return "topology not published to the CMS: its store `" + pool->store + "` is not healthy (" +
             p.state + ")";
    }
  }
  auto text = readFile(state_dir + "/topology.yaml");
  if (!text) return "topology not published to the CMS: " + text.error().message();
  // The store answers /health a moment before PostgreSQL takes writes: retry for a while.
  auto deadline = Clock::now() + std::chrono::seconds(30);
  Status last;
  while (true) {
    auto client = cms::Client::connect(topology, state_dir, "deploy");
    if (client) {
      auto current = (*client)->current();
      if (current && current->document.value("topology_yaml", "") == *text) {
        ok = true;
        return "the CMS already holds this topology (version " + std::to_string(current->number) +
               ")";
      }
      if (current || current.error().code() == StatusCode::kNotFound) {
        auto v = (*client)->publish(*text, "topology.yaml");
        if (v) {
          ok = true;
          return "published the topology to the CMS as version " + std::to_string(v->number);
        }
        last = v.error();
      } else {
        last = current.error();
      }
    } else {
      last = client.error();
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return "topology not published to the CMS: " + last.message();
}

}  // namespace

Result<UpReport> up(const UpOptions& options) {
  const std::string& dir = options.state_dir;
  std::string file = options.topology_file.empty() ? dir + "/topology.yaml" : options.topology_file;
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    if (options.topology_file.empty()) {
      return fail(notFound("nothing is deployed in `" + dir +
                           "`: give a topology file (tandemctl deploy up FILE)"));
    }
    return fail(notFound("topology file `" + file + "` does not exist"));
  }
  auto topo = topology::loadValidTopology(file);
  if (!topo) {
    return fail(invalidArgument(topo.error().message() + " (tandemctl topology validate " + file +
                                " lists every problem)"));
  }
  if (!options.only_site.empty() && topo->findSite(options.only_site) == nullptr) {
    return fail(
        invalidArgument("site `" + options.only_site + "` is not in the deployed topology"));
  }
  auto plan = planProcesses(*topo, dir, options.tandemd);
  // A different topology must not be laid over processes that run from another one.
  auto deployed = readFile(dir + "/topology.yaml");
  auto wanted = readFile(file);
  if (deployed && wanted && *deployed != *wanted) {
    for (const auto& r : internal::readRunRecords(dir)) {
      if (internal::isOurProcess(r.pid)) {
        return fail(failedPrecondition(
            "a different topology is running in `" + dir + "` (`" + r.name +
            "` is up); run `tandemctl deploy down` first or use another --state-dir"));
      }
    }
  }
  if (!options.only_site.empty()) {
    std::erase_if(plan, [&](const ProcessSpec& p) { return p.site != options.only_site; });
  }
  if (Status st = checkBeforeStart(plan, dir); !st.isOk()) return fail(st);
  if (Status st = prepareStateDir(*topo, dir); !st.isOk()) return fail(st);
  if (Status st = installTopology(file, dir); !st.isOk()) return fail(st);

  UpReport report;
  report.processes.reserve(plan.size());
  for (const auto& spec : plan) report.processes.push_back(internal::stateOf(spec));
  for (int phase = 0; phase <= static_cast<int>(Phase::kEdges); ++phase) {
    std::vector<const ProcessSpec*> specs;
    std::vector<ProcessState*> states;
    for (size_t i = 0; i < plan.size(); ++i) {
      if (static_cast<int>(plan[i].phase) != phase) continue;
      specs.push_back(&plan[i]);
      states.push_back(&report.processes[i]);
    }
    if (phase == static_cast<int>(Phase::kFrontends) && options.only_site.empty()) {
      bool published = false;
      report.cms_note = publishToCms(*topo, dir, report.processes, published);
      say(options.progress, "[cms] " + report.cms_note);
      if (!published && topo->cmsPool() != nullptr) report.failed.push_back("cms");
    }
    if (specs.empty()) continue;
    say(options.progress, std::string("[") + phaseName(static_cast<Phase>(phase)) + "]");
    for (size_t i = 0; i < specs.size(); ++i) {
      auto started = startOne(*specs[i], dir, *states[i], options.progress);
      if (!started) return fail(started.error());
      if (*started)
        ++report.started;
      else
        ++report.already_running;
    }
    waitPhase(specs, states, dir, options.phase_timeout, options.progress);
  }
  for (const auto& p : report.processes) {
    if (p.state == "not-built")
      report.not_built.push_back(p.name);
    else if (!p.healthy)
      report.failed.push_back(p.name);
  }
  return report;
}

Result<UpReport> reviveSite(const std::string& state_dir, const std::string& site,
                            const std::string& tandemd, Progress progress) {
  UpOptions o;
  o.state_dir = state_dir;
  o.tandemd = tandemd;
  o.only_site = site;
  o.progress = std::move(progress);
  return up(o);
}

}  // namespace tandem::deploy
