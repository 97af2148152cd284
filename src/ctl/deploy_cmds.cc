// tandemctl deploy: up, status, down, kill-site, revive-site, token, connect-info (docs/deploy.md).
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "common/files.h"
#include "ctl/commands.h"
#include "deploy/deploy.h"
#include "topology/loader.h"

namespace tandem::ctl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Daemons get absolute paths: they run with the state directory as their working directory.
std::string absoluteDir(const std::string& dir) {
  std::error_code ec;
  auto p = fs::absolute(dir, ec);
  return ec ? dir : p.lexically_normal().string();
}

// tandemd sits next to tandemctl (build/bin, or /usr/bin once installed).
std::string tandemdPath() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "tandemd";
  return (self.parent_path() / "tandemd").string();
}

void progressLine(const std::string& line) { std::cerr << line << std::endl; }

std::string shortDetail(const deploy::ProcessState& p) {
  if (p.healthy) return "";
  std::string d = p.detail;
  if (d.size() > 90) d = d.substr(0, 87) + "...";
  return d;
}

void printProcesses(const std::vector<deploy::ProcessState>& ps) {
  Table t({"NAME", "KIND", "SITE", "ROLE", "ADDRESS", "PID", "STATE", "DETAIL"});
  for (const auto& p : ps) {
    t.addRow({p.name, p.kind, p.site, p.role, p.address, p.pid > 0 ? std::to_string(p.pid) : "-",
              p.state, shortDetail(p)});
  }
  std::cout << t.render();
}

json processesJson(const std::vector<deploy::ProcessState>& ps) {
  json a = json::array();
  for (const auto& p : ps) a.push_back(deploy::toJson(p));
  return a;
}

// After up or revive-site: the table (or JSON), and the exit code.
int finishUp(Context& ctx, const std::string& dir, const Result<deploy::UpReport>& r,
             const std::string& verb) {
  if (!r) {
    return reportError(r.error(), r.error().code() == StatusCode::kNotFound
                                      ? "tandemctl deploy up FILE --state-dir " + dir
                                      : "");
  }
  if (ctx.json) {
    printJson({{"state_dir", dir},
               {"processes", processesJson(r->processes)},
               {"started", r->started},
               {"already_running", r->already_running},
               {"not_built", r->not_built},
               {"failed", r->failed},
               {"cms", r->cms_note}});
  } else {
    printProcesses(r->processes);
  }
  for (const auto& name : r->not_built) {
    std::cerr << "warning: " << name << " was not started: its role is not built yet\n";
  }
  if (!r->failed.empty()) {
    std::string names;
    for (const auto& n : r->failed) names += (names.empty() ? "" : ", ") + n;
    return reportError(unavailable(std::to_string(r->failed.size()) + " process" +
                                   (r->failed.size() == 1 ? "" : "es") + " of " + verb +
                                   " did not become healthy: " + names),
                       "read their logs (the LOG column of tandemctl deploy status --json)");
  }
  return kExitOk;
}

void registerUp(CLI::App* deploy, Context& ctx) {
  auto* cmd = deploy->add_subcommand("up",
                                     "Start every store agent and server of a topology on "
                                     "this machine (idempotent)");
  static std::string file;
  static bool yes = false;
  static int timeout_s = 120;
  cmd->add_option("FILE", file, "Topology file (default: the one already deployed)");
  cmd->add_option("--timeout", timeout_s, "Seconds each phase waits for health")
      ->capture_default_str();
  addYesFlag(cmd, yes);
  addJsonFlag(cmd, ctx);
  cmd->callback([&ctx] {
    deploy::UpOptions o;
    o.state_dir = absoluteDir(ctx.state_dir);
    o.topology_file = file.empty() ? "" : absoluteDir(file);
    o.tandemd = tandemdPath();
    o.phase_timeout = std::chrono::seconds(timeout_s);
    o.progress = progressLine;
    if (::access(o.tandemd.c_str(), X_OK) != 0) {
      ctx.exit_code = reportError(
          notFound("the daemon binary `" + o.tandemd + "` is missing; build it (scripts/build)"));
      return;
    }
    ctx.exit_code = finishUp(ctx, o.state_dir, deploy::up(o), "the deployment");
  });
}

void registerStatus(CLI::App* deploy, Context& ctx) {
  auto* cmd = deploy->add_subcommand("status", "Each process: site, role, address, pid, health");
  addJsonFlag(cmd, ctx);
  cmd->callback([&ctx] {
    std::string dir = absoluteDir(ctx.state_dir);
    auto r = deploy::status(dir);
    if (!r) {
      ctx.exit_code = reportError(r.error(), "tandemctl deploy up FILE --state-dir " + dir);
      return;
    }
    if (ctx.json) {
      printJson({{"state_dir", dir}, {"processes", processesJson(*r)}});
    } else {
      printProcesses(*r);
    }
  });
}

void registerDown(CLI::App* deploy, Context& ctx) {
  auto* cmd = deploy->add_subcommand("down",
                                     "Stop every process (and PostgreSQL) of the "
                                     "deployment; --purge also deletes its state");
  static bool purge = false, yes = false;
  cmd->add_flag("--purge", purge, "Also delete everything in the state directory (data, keys)");
  addYesFlag(cmd, yes);
  addJsonFlag(cmd, ctx);
  cmd->callback([&ctx] {
    std::string dir = absoluteDir(ctx.state_dir);
    if (purge &&
        !confirm("Stop the deployment in " + dir + " and delete all of its data, keys and logs?",
                 yes)) {
      ctx.exit_code = kExitRefused;
      return;
    }
    auto r = deploy::down(dir, purge, progressLine);
    if (!r) {
      ctx.exit_code = reportError(r.error());
      return;
    }
    if (ctx.json) {
      printJson({{"state_dir", dir},
                 {"stopped", r->stopped},
                 {"killed", r->killed},
                 {"postmasters_stopped", r->postmasters},
                 {"purged", r->purged}});
    } else {
      std::cout << "stopped " << r->stopped << " process" << (r->stopped == 1 ? "" : "es")
                << (r->killed ? ", killed " + std::to_string(r->killed) + " that did not stop" : "")
                << (r->postmasters
                        ? " and " + std::to_string(r->postmasters) + " PostgreSQL cluster" +
                              (r->postmasters == 1 ? "" : "s")
                        : "")
                << (r->purged ? "; deleted the state in " + dir : "") << "\n";
    }
  });
}

void registerKillSite(CLI::App* deploy, Context& ctx) {
  auto* cmd = deploy->add_subcommand(
      "kill-site", "Data-centre outage drill: kill -9 every process of SITE at once");
  static std::string site;
  static bool yes = false;
  cmd->add_option("SITE", site, "Site name, e.g. Site1")->required();
  addYesFlag(cmd, yes);
  addJsonFlag(cmd, ctx);
  cmd->callback([&ctx] {
    std::string dir = absoluteDir(ctx.state_dir);
    auto r = deploy::killSite(dir, site);
    if (!r) {
      ctx.exit_code = reportError(r.error());
      return;
    }
    if (ctx.json) {
      printJson({{"site", site}, {"killed", r->killed}, {"postmasters_killed", r->postmasters}});
      return;
    }
    if (r->killed.empty() && r->postmasters == 0) {
      std::cout << "nothing of site " << site << " was running\n";
      return;
    }
    std::string names;
    for (const auto& n : r->killed) names += (names.empty() ? "" : ", ") + n;
    std::cout << "killed site " << site << ": " << names << " and " << r->postmasters
              << " PostgreSQL postmaster" << (r->postmasters == 1 ? "" : "s") << "\n";
  });
}

void registerReviveSite(CLI::App* deploy, Context& ctx) {
  auto* cmd = deploy->add_subcommand("revive-site",
                                     "Start again every process of SITE that is "
                                     "not running");
  static std::string site;
  static bool purge = false;
  cmd->add_option("SITE", site, "Site name, e.g. Site1")->required();
  cmd->add_flag("--purge", purge,
                "Rebuild the site empty first (its stores' data and servers' state are deleted), "
                "as after losing a data centre");
  addJsonFlag(cmd, ctx);
  cmd->callback([&ctx] {
    std::string dir = absoluteDir(ctx.state_dir);
    auto r = purge ? deploy::reviveSitePurged(dir, site, tandemdPath(), progressLine)
                   : deploy::reviveSite(dir, site, tandemdPath(), progressLine);
    ctx.exit_code = finishUp(ctx, dir, r, "site " + site);
  });
}

void registerToken(CLI::App* deploy, Context& ctx) {
  auto* cmd = deploy->add_subcommand("token", "Print the deployment's admin token (for scripts)");
  cmd->callback([&ctx] {
    auto t = readDeploymentToken(absoluteDir(ctx.state_dir));
    if (!t) {
      ctx.exit_code = reportError(t.error());
      return;
    }
    std::cout << *t << "\n";
  });
}

void registerConnectInfo(CLI::App* deploy, Context& ctx) {
  auto* cmd = deploy->add_subcommand("connect-info",
                                     "How to sign in with a real XMPP client: addresses, CA, a "
                                     "demo user");
  addJsonFlag(cmd, ctx);
  cmd->callback([&ctx] {
    std::string dir = absoluteDir(ctx.state_dir);
    auto topo = topology::loadValidTopology(dir + "/topology.yaml");
    if (!topo) {
      ctx.exit_code = reportError(notFound("nothing is deployed in `" + dir + "`"),
                                  "tandemctl deploy up FILE --state-dir " + dir);
      return;
    }
    std::string ca = dir + "/pki/ca.pem";
    json fes = json::array();
    Table t({"SERVER", "POOL", "SITE", "ADDRESS", "PORT"});
    for (const auto* pool : topo->poolsWithRole(topology::PoolRole::kFrontend)) {
      for (const auto& s : pool->servers) {
        fes.push_back({{"server", s.fqdn},
                       {"pool", pool->fqdn},
                       {"site", s.site},
                       {"address", s.address},
                       {"port", 5222},
                       {"direct_tls_port", 5223}});
        t.addRow({s.fqdn, pool->fqdn, s.site, s.address, "5222"});
      }
    }
    json user = nullptr;
    std::string example;
    if (!topo->users.empty()) {
      const auto& u = topo->users.front();
      std::string jid = u.name + "@" + topo->domain;
      const auto* home = topo->findPool(u.pool);
      std::string addr = home && !home->servers.empty()
                             ? home->servers.front().address
                             : (fes.empty() ? "" : fes[0].value("address", ""));
      user = {{"jid", jid}, {"password", u.password}, {"pool", u.pool}};
      example = "profanity, then: /connect " + jid + " server " + addr +
                " port 5222 tls force   (password " + u.password +
                "; accept the deployment's certificate, or trust " + ca + ")";
    }
    if (ctx.json) {
      printJson({{"domain", topo->domain},
                 {"ca_file", ca},
                 {"frontends", fes},
                 {"user", user},
                 {"example", example}});
      return;
    }
    std::cout << "domain  " << topo->domain << "\nCA      " << ca << "\n\n" << t.render();
    if (!user.is_null()) {
      std::cout << "\nuser    " << user["jid"].get<std::string>() << "  password "
                << user["password"].get<std::string>() << "\nexample " << example << "\n";
    }
  });
}

}  // namespace

void registerDeployCommands(CLI::App& app, Context& ctx) {
  auto* deploy = app.add_subcommand("deploy", "Run a whole topology on this machine");
  deploy->require_subcommand(1);
  registerUp(deploy, ctx);
  registerStatus(deploy, ctx);
  registerDown(deploy, ctx);
  registerKillSite(deploy, ctx);
  registerReviveSite(deploy, ctx);
  registerToken(deploy, ctx);
  registerConnectInfo(deploy, ctx);
}

}  // namespace tandem::ctl
