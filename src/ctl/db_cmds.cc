// tandemctl db commands: mirror state/install/remove, manual failover, connections, log shipping,
// full backup and restore — each one call to a store's sqlagent (sqlagent/client.h), except
// `db failover`, a runbook (hadr/db_ops.h). Cmdlet aliases at the end.
#include <iostream>
#include <memory>

#include "ctl/commands.h"
#include "ctl/runbook_cmds.h"
#include "hadr/db_ops.h"
#include "hadr/env.h"

namespace tandem::ctl {
namespace {

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

struct Target {
  std::string store;
  std::string pool;  // alternative: the pool whose store is meant
};

// The store named by --store, or the store of --pool (front-end back end, chat primary store).
Result<std::string> resolveStore(const hadr::Env& env, const Target& t) {
  if (!t.store.empty()) {
    auto s = env.store(t.store);
    if (!s) return fail(s.error());
    return t.store;
  }
  if (t.pool.empty()) return fail(invalidArgument("name the store with --store (or its pool with --pool)"));
  const topology::Pool* p = env.topology().findPool(t.pool);
  if (p == nullptr) return fail(notFound("pool `" + t.pool + "` is not in the topology"));
  if (p->store.empty()) return fail(invalidArgument("pool `" + t.pool + "` has no store"));
  return p->store;
}

void addTarget(CLI::App* cmd, Target& t, bool pool_too = true) {
  cmd->add_option("--store", t.store, "Store name (as in the topology)");
  if (pool_too) cmd->add_option("--pool", t.pool, "Pool whose store is meant (instead of --store)");
}

// Loads the Env and the store, then runs `fn(env, store)`.
template <typename Fn>
int withStore(Context& ctx, const Target& t, Fn fn) {
  auto env = hadr::Env::load(ctx.state_dir);
  if (!env) return reportError(env.error());
  auto store = resolveStore(**env, t);
  if (!store) return reportError(store.error());
  return fn(**env, *store);
}

// An action on one agent: --what-if prints the plan; otherwise the agent's outcome sentence.
int agentAction(Context& ctx, hadr::Env& env, const std::string& store, bool what_if,
                const std::string& plan,
                const std::function<Result<std::string>(sqlagent::Client&)>& act) {
  if (what_if) {
    Status reach = env.probeAgent(store);
    if (ctx.json) {
      printJson({{"store", store}, {"what_if", plan}, {"reachable", reach.isOk()}});
    } else {
      std::cout << "what if: " << plan << (reach.isOk() ? "" : " (" + reach.message() + ")") << "\n";
    }
    return reach.isOk() ? kExitOk : reportError(failedPrecondition(reach.message()));
  }
  auto agent = env.agent(store);
  if (!agent) return reportError(agent.error());
  auto r = act(*agent);
  if (!r) return reportError(r.error().withContext("store `" + store + "`"));
  if (ctx.json) {
    printJson({{"store", store}, {"outcome", *r}});
  } else {
    std::cout << *r << "\n";
  }
  return kExitOk;
}

// ---- mirror ---------------------------------------------------------------------------------

int mirrorState(Context& ctx, const Target& t) {
  return withStore(ctx, t, [&](hadr::Env& env, const std::string& store) -> int {
    auto members = hadr::mirrorState(env, store);
    if (!members) return reportError(members.error());
    if (ctx.json) {
      nlohmann::json doc = {{"store", store}, {"members", nlohmann::json::array()}};
      for (const auto& m : *members) doc["members"].push_back(hadr::toJson(m));
      printJson(doc);
      return kExitOk;
    }
    Table table({"STORE", "ROLE", "STATUS", "LAG", "PARTNER"});
    for (const auto& m : *members) {
      std::string lag = m.reachable ? std::to_string(m.lag_bytes) + " B, " +
                                          std::to_string(m.lag_seconds).substr(0, 4) + " s"
                                    : "-";
      table.addRow({m.store, m.reachable ? orDash(m.role) : "unreachable",
                    m.reachable ? orDash(m.status) : "DISCONNECTED", lag, orDash(m.partner)});
    }
    std::cout << table.render();
    for (const auto& m : *members) {
      if (!m.reachable) std::cerr << "note: " << m.error << "\n";
      if (!m.divergence.empty()) std::cerr << "note: store `" << m.store << "` " << m.divergence << "\n";
      if (m.reachable && m.role == "Principal" && m.status == "SUSPENDED") {
        std::cerr << "note: store `" << m.store << "` serves exposed: its witness granted it to "
                  << "commit without mirror `" << m.partner << "`, which will not be failed over "
                  << "to automatically until it is SYNCHRONIZED again\n";
      }
    }
    return kExitOk;
  });
}

// ---- connections ----------------------------------------------------------------------------

int connectionsList(Context& ctx, const Target& t) {
  return withStore(ctx, t, [&](hadr::Env& env, const std::string& store) -> int {
    auto agent = env.agent(store);
    if (!agent) return reportError(agent.error());
    auto list = agent->connections();
    if (!list) return reportError(list.error().withContext("store `" + store + "`"));
    if (ctx.json) {
      nlohmann::json doc = {{"store", store}, {"connections", nlohmann::json::array()}};
      for (const auto& c : *list) {
        doc["connections"].push_back({{"pid", c.pid}, {"user", c.user}, {"database", c.database},
                                      {"client_addr", c.client_addr}, {"application", c.application},
                                      {"state", c.state}, {"backend_start", c.backend_start}});
      }
      printJson(doc);
      return kExitOk;
    }
    Table table({"PID", "USER", "DATABASE", "FROM", "APPLICATION", "STATE", "SINCE"});
    for (const auto& c : *list) {
      table.addRow({std::to_string(c.pid), c.user, orDash(c.database), orDash(c.client_addr),
                    orDash(c.application), orDash(c.state), orDash(c.backend_start)});
    }
    std::cout << table.render();
    return kExitOk;
  });
}

struct EndArgs {
  Target t;
  bool all = false;
  int pid = 0;
  bool what_if = false, yes = false;
};

int connectionsEnd(Context& ctx, const EndArgs& a) {
  if (a.all == (a.pid != 0)) {
    return reportError(invalidArgument("give exactly one of --all or --pid N"));
  }
  return withStore(ctx, a.t, [&](hadr::Env& env, const std::string& store) -> int {
    std::string what = a.all ? "end every client connection to store `" + store + "`"
                             : "end connection " + std::to_string(a.pid) + " to store `" + store + "`";
    if (!a.what_if && !confirm("This will " + what + ".", a.yes)) return static_cast<int>(kExitRefused);
    return agentAction(ctx, env, store, a.what_if, what, [&](sqlagent::Client& c) -> Result<std::string> {
      auto n = c.endConnections(a.all, a.pid);
      if (!n) return fail(n.error());
      return "ended " + std::to_string(*n) + " connection" + (*n == 1 ? "" : "s") + " to store `" + store + "`";
    });
  });
}

// ---- log shipping ---------------------------------------------------------------------------

int logShippingStatus(Context& ctx, const Target& t) {
  return withStore(ctx, t, [&](hadr::Env& env, const std::string& store) -> int {
    auto agent = env.agent(store);
    if (!agent) return reportError(agent.error());
    auto s = agent->logShippingStatus();
    if (!s) return reportError(s.error().withContext("store `" + store + "`"));
    if (ctx.json) {
      printJson(s->raw);
      return kExitOk;
    }
    Table table({"STORE", "ROLE", "LOG", "NAME", "TIME"});
    table.addRow({s->store, s->role, "last backed up", orDash(s->last_backed_up), orDash(s->last_backed_up_time)});
    table.addRow({"", "", "last copied", orDash(s->last_copied), orDash(s->last_copied_time)});
    table.addRow({"", "", "last restored", orDash(s->last_restored), orDash(s->last_restored_time)});
    std::cout << table.render();
    std::cout << "copy job " << (s->copy_job ? "running" : "stopped") << ", restore job "
              << (s->restore_job ? "running" : "stopped") << ", lag " << s->lag_seconds << " s"
              << (s->share.empty() ? "" : ", share " + s->share) << "\n";
    return kExitOk;
  });
}

}  // namespace

// ---- registration ---------------------------------------------------------------------------

namespace {

struct Args {
  Target t;
  std::string other;  // --mirror / --to / --from-stanza
  bool what_if = false, yes = false, resume = false, force = false, flag = false, overwrite = false;
};

void registerMirror(CLI::App* db, Context& ctx) {
  CLI::App* mirror = db->add_subcommand("mirror", "Mirror state, install and remove");
  mirror->require_subcommand(1);

  auto st = std::make_shared<Target>();
  CLI::App* state = mirror->add_subcommand("state", "Both members of a mirrored pair: role, status, lag, partner");
  addTarget(state, *st);
  addJsonFlag(state, ctx);
  state->callback([&ctx, st] { ctx.exit_code = mirrorState(ctx, *st); });

  auto in = std::make_shared<Args>();
  CLI::App* install = mirror->add_subcommand("install", "Make a store the synchronous mirror of a principal");
  addTarget(install, in->t, false);
  install->add_option("--mirror", in->other, "The store that becomes the mirror")->required();
  addWhatIfFlag(install, in->what_if);
  addJsonFlag(install, ctx);
  install->callback([&ctx, in] {
    ctx.exit_code = withStore(ctx, in->t, [&](hadr::Env& env, const std::string& store) -> int {
      return agentAction(ctx, env, store, in->what_if,
                         "base-backup `" + in->other + "` from `" + store + "` and make it its synchronous mirror",
                         [&](sqlagent::Client& c) { return c.installMirror(in->other); });
    });
  });

  auto rm = std::make_shared<Args>();
  CLI::App* remove = mirror->add_subcommand("remove", "Stop mirroring; the principal serves alone");
  addTarget(remove, rm->t, false);
  addWhatIfFlag(remove, rm->what_if);
  addJsonFlag(remove, ctx);
  remove->callback([&ctx, rm] {
    ctx.exit_code = withStore(ctx, rm->t, [&](hadr::Env& env, const std::string& store) -> int {
      return agentAction(ctx, env, store, rm->what_if,
                         "make `" + store + "` serve alone (no synchronous mirror)",
                         [&](sqlagent::Client& c) { return c.removeMirror(); });
    });
  });
}

void registerFailover(CLI::App* db, Context& ctx) {
  auto fo = std::make_shared<Args>();
  CLI::App* failover = db->add_subcommand(
      "failover", "Promote the mirror of a store and fence the old principal (runbook, 3 steps)");
  addTarget(failover, fo->t);
  failover->add_flag("--force", fo->force, "Promote although the principal does not answer");
  addWhatIfFlag(failover, fo->what_if);
  addYesFlag(failover, fo->yes);
  failover->add_flag("--resume", fo->resume, "Continue a run that stopped or died");
  addJsonFlag(failover, ctx);
  failover->callback([&ctx, fo] {
    ctx.exit_code = withStore(ctx, fo->t, [&](hadr::Env& env, const std::string& store) -> int {
      hadr::Runbook rb = hadr::dbFailoverRunbook(env, store, fo->force);
      return runRunbookCommand(ctx, env, rb, {fo->what_if, fo->resume, fo->yes},
                               "Fail store `" + store + "` over to its mirror (fence the principal)?");
    });
  });
}

void registerConnections(CLI::App* db, Context& ctx) {
  CLI::App* conns = db->add_subcommand("connections", "List or end client connections to a store");
  conns->require_subcommand(1);
  auto lt = std::make_shared<Target>();
  CLI::App* list = conns->add_subcommand("list", "Who is connected, from where, since when, doing what");
  addTarget(list, *lt, false);
  addJsonFlag(list, ctx);
  list->callback([&ctx, lt] { ctx.exit_code = connectionsList(ctx, *lt); });

  auto ea = std::make_shared<EndArgs>();
  CLI::App* end = conns->add_subcommand("end", "End client connections (--all or --pid N)");
  addTarget(end, ea->t, false);
  end->add_flag("--all", ea->all, "Every client connection");
  end->add_option("--pid", ea->pid, "One backend process id");
  addWhatIfFlag(end, ea->what_if);
  addYesFlag(end, ea->yes);
  addJsonFlag(end, ctx);
  end->callback([&ctx, ea] { ctx.exit_code = connectionsEnd(ctx, *ea); });
}

void registerLogShipping(CLI::App* db, Context& ctx) {
  CLI::App* ls = db->add_subcommand("log-shipping", "Log shipping status, configure, remove");
  ls->require_subcommand(1);
  auto st = std::make_shared<Target>();
  CLI::App* status = ls->add_subcommand("status", "Last backed-up, copied and restored log, and the lag");
  addTarget(status, *st, false);
  addJsonFlag(status, ctx);
  status->callback([&ctx, st] { ctx.exit_code = logShippingStatus(ctx, *st); });

  auto cf = std::make_shared<Args>();
  CLI::App* configure = ls->add_subcommand(
      "configure", "Ship the logs of --store to the backup store --to (reseeds it from a full backup)");
  addTarget(configure, cf->t, false);
  configure->add_option("--to", cf->other, "The backup store (restoring standby)")->required();
  addWhatIfFlag(configure, cf->what_if);
  addYesFlag(configure, cf->yes);
  addJsonFlag(configure, ctx);
  configure->callback([&ctx, cf] {
    ctx.exit_code = withStore(ctx, cf->t, [&](hadr::Env& env, const std::string& store) -> int {
      std::string plan = "take a full backup of `" + store + "`, reseed `" + cf->other +
                         "` from it and restore its logs from then on";
      if (!cf->what_if && !confirm("This will " + plan + " (replacing its data).", cf->yes)) {
        return static_cast<int>(kExitRefused);
      }
      // The reseed starts from the newest full backup of the primary: take one first, so it is
      // on the primary's current timeline.
      return agentAction(ctx, env, cf->other, cf->what_if, plan,
                         [&](sqlagent::Client& c) -> Result<std::string> {
                           auto primary = env.agent(store);
                           if (!primary) return fail(primary.error());
                           auto full = primary->fullBackup();
                           if (!full) return fail(full.error().withContext("full backup of `" + store + "`"));
                           auto r = c.configureLogShipping(store);
                           if (!r) return r;
                           return *full + "; " + *r;
                         });
    });
  });

  auto rm = std::make_shared<Args>();
  CLI::App* remove = ls->add_subcommand("remove", "Stop the copy and restore jobs; the store stays restoring");
  addTarget(remove, rm->t, false);
  addWhatIfFlag(remove, rm->what_if);
  addJsonFlag(remove, ctx);
  remove->callback([&ctx, rm] {
    ctx.exit_code = withStore(ctx, rm->t, [&](hadr::Env& env, const std::string& store) -> int {
      return agentAction(ctx, env, store, rm->what_if,
                         "stop the copy and restore jobs of `" + store + "`",
                         [&](sqlagent::Client& c) { return c.removeLogShipping(); });
    });
  });
}

void registerBackupRestore(CLI::App* db, Context& ctx) {
  auto bk = std::make_shared<Args>();
  CLI::App* backup = db->add_subcommand("backup", "Full backup of a store to its backup share");
  addTarget(backup, bk->t, false);
  backup->add_flag("--to-share", bk->flag, "To the backup share (the only destination)")->required();
  addWhatIfFlag(backup, bk->what_if);
  addJsonFlag(backup, ctx);
  backup->callback([&ctx, bk] {
    ctx.exit_code = withStore(ctx, bk->t, [&](hadr::Env& env, const std::string& store) -> int {
      return agentAction(ctx, env, store, bk->what_if,
                         "take a full backup of `" + store + "` to the share",
                         [&](sqlagent::Client& c) { return c.fullBackup(); });
    });
  });

  auto rs = std::make_shared<Args>();
  CLI::App* restore = db->add_subcommand("restore", "Restore a store from the share, left ready to use");
  addTarget(restore, rs->t, false);
  restore->add_flag("--from-share", rs->flag, "From the backup share (the only source)")->required();
  restore->add_flag("--overwrite", rs->overwrite, "Replace the store's current data");
  restore->add_option("--from-stanza", rs->other, "Restore another store's backup (e.g. the backup store's)");
  addWhatIfFlag(restore, rs->what_if);
  addYesFlag(restore, rs->yes);
  addJsonFlag(restore, ctx);
  restore->callback([&ctx, rs] {
    ctx.exit_code = withStore(ctx, rs->t, [&](hadr::Env& env, const std::string& store) -> int {
      std::string plan = "restore `" + store + "` from the latest full backup" +
                         (rs->other.empty() ? "" : " of `" + rs->other + "`") +
                         " on the share plus every later log" +
                         (rs->overwrite ? ", replacing its data" : "");
      if (!rs->what_if && rs->overwrite && !confirm("This will " + plan + ".", rs->yes)) {
        return static_cast<int>(kExitRefused);
      }
      return agentAction(ctx, env, store, rs->what_if, plan,
                         [&](sqlagent::Client& c) { return c.restore(rs->overwrite, rs->other); });
    });
  });
}

// The reference system's names take an FQDN where we name a store: its first label.
std::string storeFromFqdn(const std::string& fqdn) { return fqdn.substr(0, fqdn.find('.')); }

void registerDbCmdlets() {
  auto target = [](const std::map<std::string, std::string>& p, std::vector<std::string>& out) {
    if (auto it = p.find("SqlServerFqdn"); it != p.end()) {
      out.insert(out.end(), {"--store", storeFromFqdn(it->second)});
    } else if (auto it2 = p.find("PoolFqdn"); it2 != p.end()) {
      out.insert(out.end(), {"--pool", it2->second});
    }
  };
  std::vector<CmdletParam> common = {{"SqlServerFqdn"}, {"SqlInstanceName"}, {"DatabaseType"},
                                     {"Verbose", true}, {"Confirm", true}};
  auto with = [&](std::vector<CmdletParam> extra) {
    extra.insert(extra.end(), common.begin(), common.end());
    return extra;
  };
  registerCmdlet({"Install-CsMirrorDatabase", "db mirror install",
                  with({{"MirrorSqlServerFqdn"}, {"MirrorSqlInstanceName"}, {"FileShare"},
                        {"ConfiguredDatabases", true}, {"UseDefaultSqlPaths", true},
                        {"DropExistingDatabasesOnMirror", true}, {"WhatIf", true}}),
                  [target](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out = {"db", "mirror", "install"};
                    target(p, out);
                    auto m = p.find("MirrorSqlServerFqdn");
                    if (m == p.end()) return fail(invalidArgument("Install-CsMirrorDatabase needs -MirrorSqlServerFqdn"));
                    out.insert(out.end(), {"--mirror", storeFromFqdn(m->second)});
                    if (p.count("WhatIf")) out.push_back("--what-if");
                    return out;
                  }});
  registerCmdlet({"Uninstall-CsMirrorDatabase", "db mirror remove",
                  with({{"DropExistingDatabasesOnMirror", true}, {"WhatIf", true}}),
                  [target](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out = {"db", "mirror", "remove"};
                    target(p, out);
                    if (p.count("WhatIf")) out.push_back("--what-if");
                    return out;
                  }});
  registerCmdlet({"Invoke-CsDatabaseFailover", "db failover",
                  with({{"PoolFqdn"}, {"NewPrincipal"}, {"Force", true}, {"WhatIf", true}}),
                  [target](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out = {"db", "failover"};
                    target(p, out);
                    if (p.count("Force")) out.push_back("--force");
                    if (p.count("WhatIf")) out.push_back("--what-if");
                    return out;
                  }});
  registerCmdlet({"Get-CsDatabaseMirrorState", "db mirror state", with({{"PoolFqdn"}}),
                  [target](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out = {"db", "mirror", "state"};
                    target(p, out);
                    return out;
                  }});
}

}  // namespace

void registerDbCommands(CLI::App& app, Context& ctx) {
  CLI::App* db = app.add_subcommand("db", "SQL stores: mirroring, failover, connections, log shipping, backup");
  db->require_subcommand(1);
  registerMirror(db, ctx);
  registerFailover(db, ctx);
  registerConnections(db, ctx);
  registerLogShipping(db, ctx);
  registerBackupRestore(db, ctx);
  registerDbCmdlets();
}

}  // namespace tandem::ctl
