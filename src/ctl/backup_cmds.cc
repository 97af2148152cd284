// tandemctl backup: the Backup Service between paired front-end pools (docs/backup-service.md).
//   backup status --pool P [--module M]           Get-CsBackupServiceStatus
//   backup sync --pool P [--module M]             Invoke-CsBackupServiceSync
//   backup verify --pool P                        Debug-CsInterPoolReplication
//   backup repair --pool P (--user U | --full)
//   backup relationship --pool P                  Get-CsPoolBackupRelationship
//   backup config show|set --pool P [--sync-interval S]   Set-CsBackupServiceConfiguration
// `--pool` always names the pool whose users' data is copied (P); the copy is in its backup
// pool's store. tandemctl reads and acts on both stores directly (src/backup), so the commands
// work while the front-end servers are down.
#include <iostream>

#include "backup/cms_module.h"
#include "backup/userdata.h"
#include "ctl/commands.h"
#include "topology/loader.h"

namespace tandem::ctl {
namespace {

struct Args {
  std::string pool;
  std::string module;  // "" = both
  int timeout_s = 30;
  std::string user;
  bool full = false;
  bool what_if = false;
  int sync_interval_s = 0;
};

struct Loaded {
  topology::Topology topology;
  backup::Link link;
};

Result<Loaded> load(const Context& ctx, const Args& a) {
  auto t = topology::loadValidTopology(ctx.state_dir + "/topology.yaml");
  if (!t)
    return fail(t.error().withContext("reading the deployed topology (run `tandemctl deploy up`)"));
  auto token = readDeploymentToken(ctx.state_dir);
  if (!token) return fail(token.error());
  auto link = backup::linkFor(*t, a.pool, *token);
  if (!link) return fail(link.error());
  return Loaded{std::move(*t), std::move(*link)};
}

bool wants(const Args& a, backup::Module m) {
  if (a.module.empty()) return true;
  auto parsed = backup::parseModule(a.module);
  return parsed && *parsed == m;
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

// ---- status ----------------------------------------------------------------------------------

// The fields every module reports.
nlohmann::json stateJson(const char* module, const backup::ModuleState& m) {
  return {{"module", module},
          {"export_state", backup::exportStateName(m.export_state)},
          {"export_reason", m.export_reason},
          {"import_state", backup::importStateName(m.import_state)},
          {"import_reason", m.import_reason}};
}

nlohmann::json userDataJson(const backup::UserDataStatus& s) {
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json j = stateJson("UserData", s.state);
  j.update(nlohmann::json{
      {"last_exported", {{"position", s.exported_lsn}, {"at", s.exported_at}}},
      {"last_imported", {{"position", s.imported_lsn}, {"at", s.imported_at}}},
      {"lag_changes", nullptr},
      {"lag_bytes", opt(s.observation.lag_bytes)},
      {"lag_seconds", opt(s.observation.lag_s)},
      {"retained_wal_bytes", opt(s.retained_wal_bytes)},
      {"full_copies", s.resyncs},
      {"last_full_copy", {{"at", s.last_resync_at}, {"reason", s.last_resync_reason}}},
      {"sync_interval_s", s.sync_interval_s}});
  return j;
}

nlohmann::json cmsJson(const backup::CmsModuleStatus& s) {
  nlohmann::json j = stateJson("Cms", s.state);
  j.update(nlohmann::json{
      {"last_exported", {{"position", s.current_version}, {"at", s.current_version_at}}},
      {"last_imported", {{"position", s.standby_version}, {"at", s.standby_synced_at}}},
      {"lag_changes", s.lag_changes ? nlohmann::json(*s.lag_changes) : nlohmann::json()},
      {"lag_bytes", nullptr},
      {"lag_seconds", nullptr},
      {"active_store", s.active_store},
      {"standby_store", s.standby_store}});
  return j;
}

int status(Context& ctx, const Args& a) {
  auto l = load(ctx, a);
  if (!l) return reportError(l.error());
  nlohmann::json modules = nlohmann::json::array();
  if (wants(a, backup::Module::kUserData)) modules.push_back(userDataJson(backup::status(l->link)));
  if (wants(a, backup::Module::kCms)) {
    modules.push_back(cmsJson(backup::cmsStatus(l->topology, ctx.state_dir, a.pool)));
  }
  nlohmann::json doc = {
      {"pool", l->link.pool}, {"backup_pool", l->link.backup_pool}, {"modules", modules}};
  if (ctx.json) {
    printJson(doc);
    return kExitOk;
  }
  std::cout << "pool " << l->link.pool << " -> backup pool " << l->link.backup_pool << "\n";
  Table t({"MODULE", "EXPORT", "IMPORT", "LAST EXPORTED", "LAST IMPORTED", "LAG", "REASON"});
  for (const auto& m : modules) {
    auto pos = [](const nlohmann::json& j) {
      std::string p =
          j["position"].is_string() ? j["position"].get<std::string>() : j["position"].dump();
      return p + " " + j["at"].get<std::string>();
    };
    std::string lag = m["lag_changes"].is_null() ? "" : m["lag_changes"].dump() + " changes";
    if (!m["lag_bytes"].is_null()) lag += m["lag_bytes"].dump() + " B";
    if (!m["lag_seconds"].is_null()) lag += " " + m["lag_seconds"].dump() + " s";
    std::string reason = m["export_reason"].get<std::string>();
    if (!m["import_reason"].get<std::string>().empty()) {
      reason += (reason.empty() ? "" : "; ") + m["import_reason"].get<std::string>();
    }
    t.addRow({m["module"], m["export_state"], m["import_state"], pos(m["last_exported"]),
              pos(m["last_imported"]), orDash(lag), orDash(reason)});
  }
  std::cout << t.render();
  return kExitOk;
}

// ---- sync, verify, repair --------------------------------------------------------------------

int sync(Context& ctx, const Args& a) {
  auto l = load(ctx, a);
  if (!l) return reportError(l.error());
  const auto timeout = std::chrono::seconds(a.timeout_s);
  nlohmann::json done = nlohmann::json::array();
  auto started = std::chrono::steady_clock::now();
  if (wants(a, backup::Module::kUserData)) {
    if (Status st = backup::sync(l->link, timeout); !st) return reportError(st);
    done.push_back("UserData");
  }
  if (!a.module.empty() && wants(a, backup::Module::kCms)) {
    if (Status st = backup::cmsSync(l->topology, ctx.state_dir, a.pool); !st)
      return reportError(st);
    done.push_back("Cms");
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (ctx.json) {
    printJson({{"pool", a.pool}, {"synced", done}, {"seconds", s}});
  } else {
    std::cout << "everything pool " << a.pool << " committed before the sync is applied in pool "
              << l->link.backup_pool << "'s copy (" << done.dump() << ", " << s << " s)\n";
  }
  return kExitOk;
}

int verify(Context& ctx, const Args& a) {
  auto l = load(ctx, a);
  if (!l) return reportError(l.error());
  auto r = backup::verify(l->link, std::chrono::seconds(a.timeout_s));
  if (!r) return reportError(r.error());
  nlohmann::json counts = nlohmann::json::array(), diffs = nlohmann::json::array();
  for (const auto& c : r->counts) {
    counts.push_back({{"table", c.table}, {"pool_rows", c.pool_rows}, {"copy_rows", c.copy_rows}});
  }
  for (const auto& d : r->differences) {
    diffs.push_back({{"user", d.user},
                     {"table", d.table},
                     {"how", d.how},
                     {"pool_rows", d.pool_rows},
                     {"copy_rows", d.copy_rows}});
  }
  const bool clean = r->differences.empty();
  if (ctx.json) {
    printJson({{"pool", a.pool},
               {"backup_pool", l->link.backup_pool},
               {"clean", clean},
               {"counts", counts},
               {"differences", diffs}});
  } else {
    Table t({"TABLE", "POOL ROWS", "COPY ROWS"});
    for (const auto& c : r->counts) {
      t.addRow({c.table, std::to_string(c.pool_rows), std::to_string(c.copy_rows)});
    }
    std::cout << t.render();
    if (clean) {
      std::cout << "no difference: the copy in pool " << l->link.backup_pool
                << "'s store equals pool " << a.pool << "'s data\n";
    } else {
      Table d({"USER", "TABLE", "HOW", "POOL ROWS", "COPY ROWS"});
      for (const auto& x : r->differences) {
        d.addRow(
            {x.user, x.table, x.how, std::to_string(x.pool_rows), std::to_string(x.copy_rows)});
      }
      std::cout << d.render() << r->differences.size()
                << " difference(s); fix with `tandemctl backup repair --pool " << a.pool
                << " --user U` or `--full`\n";
    }
  }
  return clean ? kExitOk : kExitFailed;
}

int repair(Context& ctx, const Args& a) {
  if (a.user.empty() == !a.full) {
    return reportError(invalidArgument("name one user with --user U, or --full for a full copy"));
  }
  auto l = load(ctx, a);
  if (!l) return reportError(l.error());
  const std::string plan = a.full
                               ? "make a full copy of pool " + a.pool + "'s data into store " +
                                     l->link.target_store + " (one transaction; streaming resumes)"
                               : "rewrite user " + a.user + "'s rows of pool " + a.pool +
                                     " in its copy in store " + l->link.target_store;
  if (a.what_if) {
    std::cout << "what if: " << plan << "\n";
    return kExitOk;
  }
  auto started = std::chrono::steady_clock::now();
  if (a.full) {
    auto r = backup::reconcile(l->link, true, "backup repair --full");
    if (!r) return reportError(r.error());
  } else if (Status st = backup::repairUser(l->link, a.user, std::chrono::seconds(a.timeout_s));
             !st) {
    return reportError(st);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (ctx.json) {
    printJson({{"pool", a.pool}, {"done", plan}, {"seconds", s}});
  } else {
    std::cout << "done: " << plan << " (" << s << " s)\n";
  }
  return kExitOk;
}

// ---- relationship and config -----------------------------------------------------------------

int relationship(Context& ctx, const Args& a) {
  auto l = load(ctx, a);
  if (!l) return reportError(l.error());
  const auto* p = l->topology.findPool(l->link.pool);
  const auto* q = l->topology.findPool(l->link.backup_pool);
  auto interval = backup::syncInterval(l->link);
  nlohmann::json doc = {
      {"pool", p->fqdn},
      {"site", p->site},
      {"store", l->link.source_store},
      {"backup_pool", q->fqdn},
      {"backup_site", q->site},
      {"backup_store", l->link.target_store},
      {"copy_database", l->link.copy_db},
      {"slot", l->link.slotName()},
      {"modules", p->cms ? nlohmann::json({"UserData", "Cms"}) : nlohmann::json({"UserData"})},
      {"sync_interval_s", interval ? nlohmann::json(*interval) : nlohmann::json()}};
  if (ctx.json) {
    printJson(doc);
    return kExitOk;
  }
  Table t({"POOL", "SITE", "BACKUP POOL", "BACKUP SITE", "COPY", "MODULES", "SYNC INTERVAL"});
  t.addRow(
      {p->fqdn, p->site, q->fqdn, q->site, l->link.target_store + "/" + l->link.copy_db,
       p->cms ? "UserData, Cms" : "UserData",
       interval ? std::to_string(*interval) + " s" : "- (" + interval.error().message() + ")"});
  std::cout << t.render();
  return kExitOk;
}

int configShow(Context& ctx, const Args& a) {
  auto l = load(ctx, a);
  if (!l) return reportError(l.error());
  auto interval = backup::syncInterval(l->link);
  if (!interval) return reportError(interval.error());
  if (ctx.json) {
    printJson({{"pool", a.pool}, {"sync_interval_s", *interval}});
  } else {
    std::cout << "pool " << a.pool << ": sync interval " << *interval << " s\n";
  }
  return kExitOk;
}

int configSet(Context& ctx, const Args& a) {
  auto l = load(ctx, a);
  if (!l) return reportError(l.error());
  if (a.what_if) {
    std::cout << "what if: set pool " << a.pool << "'s sync interval to " << a.sync_interval_s
              << " s\n";
    return kExitOk;
  }
  if (Status st = backup::setSyncInterval(l->link, a.sync_interval_s); !st) return reportError(st);
  std::cout << "pool " << a.pool << ": sync interval " << a.sync_interval_s << " s\n";
  return kExitOk;
}

// ---- registration ----------------------------------------------------------------------------

Args g_args;

CLI::App* verb(CLI::App* noun, Context& ctx, const std::string& name, const std::string& help,
               int (*fn)(Context&, const Args&)) {
  auto* cmd = noun->add_subcommand(name, help);
  cmd->add_option("--pool", g_args.pool, "The pool whose users' data is copied")->required();
  addJsonFlag(cmd, ctx);
  cmd->callback([&ctx, fn] { ctx.exit_code = fn(ctx, g_args); });
  return cmd;
}

std::string poolParam(const std::map<std::string, std::string>& p) {
  for (const char* k : {"PoolFqdn", "Identity"}) {
    if (auto it = p.find(k); it != p.end()) return stripIdentityPrefix(it->second);
  }
  return "";
}

// "00:05:00" (a TimeSpan) or seconds.
std::string seconds(const std::string& v) {
  int h = 0, m = 0, s = 0;
  if (std::sscanf(v.c_str(), "%d:%d:%d", &h, &m, &s) == 3)
    return std::to_string(h * 3600 + m * 60 + s);
  return v;
}

void registerCmdlets() {
  auto simple = [](const char* name, const char* maps_to, std::vector<std::string> words,
                   bool with_module) {
    std::vector<CmdletParam> params = {{"PoolFqdn"}};
    if (with_module) params.push_back({"BackupModule"});
    registerCmdlet({name, maps_to, params,
                    [words, name](const std::map<std::string, std::string>& p)
                        -> Result<std::vector<std::string>> {
                      std::string pool = poolParam(p);
                      if (pool.empty())
                        return fail(invalidArgument(std::string(name) + " needs -PoolFqdn"));
                      std::vector<std::string> out = words;
                      out.insert(out.end(), {"--pool", pool});
                      if (auto m = p.find("BackupModule"); m != p.end()) {
                        out.insert(out.end(), {"--module", m->second});
                      }
                      return out;
                    }});
  };
  simple("Get-CsBackupServiceStatus", "backup status", {"backup", "status"}, true);
  simple("Invoke-CsBackupServiceSync", "backup sync", {"backup", "sync"}, true);
  simple("Debug-CsInterPoolReplication", "backup verify", {"backup", "verify"}, false);
  simple("Get-CsPoolBackupRelationship", "backup relationship", {"backup", "relationship"}, false);
  registerCmdlet(
      {"Set-CsBackupServiceConfiguration",
       "backup config set",
       {{"PoolFqdn"}, {"Identity"}, {"SyncInterval"}, {"WhatIf", true}},
       [](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
         std::string pool = poolParam(p);
         auto si = p.find("SyncInterval");
         if (pool.empty() || si == p.end()) {
           return fail(invalidArgument(
               "Set-CsBackupServiceConfiguration needs -PoolFqdn and -SyncInterval"));
         }
         std::vector<std::string> out = {
             "backup", "config", "set", "--pool", pool, "--sync-interval", seconds(si->second)};
         if (p.count("WhatIf")) out.push_back("--what-if");
         return out;
       }});
}

}  // namespace

void registerBackupCommands(CLI::App& app, Context& ctx) {
  auto* noun = app.add_subcommand("backup",
                                  "The Backup Service: each pool's data copied to its "
                                  "backup pool (docs/backup-service.md)");
  noun->require_subcommand(1);
  auto* st = verb(noun, ctx, "status", "Export/import state, positions and lag per module", status);
  st->add_option("--module", g_args.module, "UserData or Cms (default: both)");
  auto* sy =
      verb(noun, ctx, "sync", "Return once everything committed before it is in the copy", sync);
  sy->add_option("--module", g_args.module, "UserData or Cms (default: UserData)");
  sy->add_option("--timeout", g_args.timeout_s, "Seconds to wait")->capture_default_str();
  auto* ve = verb(noun, ctx, "verify", "Compare the pool's data with its copy, per user", verify);
  ve->add_option("--timeout", g_args.timeout_s, "Seconds to wait for the sync")
      ->capture_default_str();
  auto* re = verb(noun, ctx, "repair", "Fix the copy: one user, or a full copy", repair);
  re->add_option("--user", g_args.user, "The user (localpart) to rewrite in the copy");
  re->add_flag("--full", g_args.full, "Replace the whole copy in one transaction");
  re->add_option("--timeout", g_args.timeout_s, "Seconds to wait for the sync")
      ->capture_default_str();
  addWhatIfFlag(re, g_args.what_if);
  verb(noun, ctx, "relationship", "The pool's backup pool, stores and modules", relationship);
  auto* cfg = noun->add_subcommand("config", "The Backup Service's settings of a pool's copy");
  cfg->require_subcommand(1);
  verb(cfg, ctx, "show", "Show the sync interval", configShow);
  auto* set = verb(cfg, ctx, "set", "Set the sync interval (seconds, 1-3600)", configSet);
  set->add_option("--sync-interval", g_args.sync_interval_s, "Seconds between health checks")
      ->required();
  addWhatIfFlag(set, g_args.what_if);
  registerCmdlets();
}

}  // namespace tandem::ctl
