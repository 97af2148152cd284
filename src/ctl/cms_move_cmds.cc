// tandemctl cms export / import / install-db / move / bootstrap (seed 004 step 6, docs/cms.md,
// docs/runbooks/cms.md) and the cmdlets Export-/Import-CsConfiguration, Install-CsDatabase,
// Move-CsManagementServer and `Bootstrapper /Setup`.
#include "ctl/cms_move_cmds.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "cms/export.h"

namespace tandem::ctl {
namespace {

using Params = std::map<std::string, std::string>;
using Argv = Result<std::vector<std::string>>;

std::string storeOf(const std::string& fqdn) { return fqdn.substr(0, fqdn.find('.')); }

// Prints `error:` and returns the exit code, or the success code after printing `doc`/`text`.
template <typename T>
int finish(Context& ctx, const Result<T>& r, const std::string& hint,
           const std::function<void(const T&)>& print_text,
           const std::function<nlohmann::json(const T&)>& to_json) {
  if (!r) return reportError(r.error(), hint);
  if (ctx.json) printJson(to_json(*r));
  else print_text(*r);
  return kExitOk;
}

// ---- export / import ----------------------------------------------------------------------------

int runExport(Context& ctx, const std::string& to) {
  auto t = deployedTopology(ctx);
  if (!t) return reportError(t.error());
  auto f = cms::exportActive(*t, ctx.state_dir);
  if (!f) return reportError(f.error(), "tandemctl cms status");
  Status st = cms::writeExport(to, *f);
  if (!st.isOk()) return reportError(st);
  if (ctx.json) {
    printJson({{"file", to}, {"versions", f->versions.size()}, {"newest_version", f->latestNumber()},
               {"epoch", f->epoch}, {"store", f->store}});
  } else {
    std::cout << "exported " << f->versions.size() << " CMS versions (newest "
              << f->latestNumber() << ", epoch " << f->epoch << ", store `" << f->store
              << "`) to " << to << "\n";
  }
  return kExitOk;
}

int runImport(Context& ctx, const std::string& from, const std::string& pool) {
  auto t = deployedTopology(ctx);
  if (!t) return reportError(t.error());
  auto n = cms::importExportFile(*t, ctx.state_dir, from, pool);
  return finish<int64_t>(
      ctx, n, "tandemctl cms install-db --store S --clean",
      [&](const int64_t& k) {
        std::cout << (k == 0 ? "the CMS store already holds this export: nothing imported"
                             : "imported " + std::to_string(k) + " CMS versions from " + from)
                  << " (not active: `tandemctl cms move` makes it the CMS)\n";
      },
      [](const int64_t& k) { return nlohmann::json{{"imported_versions", k}}; });
}

// ---- install-db / move / bootstrap --------------------------------------------------------------

int runInstallDb(Context& ctx, cms::InstallDbOptions o, bool yes) {
  auto t = deployedTopology(ctx);
  if (!t) return reportError(t.error());
  o.state_dir = ctx.state_dir;
  if (o.clean && !o.what_if) {
    cms::InstallDbOptions check = o;
    check.what_if = true;
    auto plan = cms::installDb(*t, check);
    if (!plan) return reportError(plan.error(), "tandemctl cms status");
    if (plan->existed && !confirm("This will drop the CMS database on store `" + o.store +
                                      "` and create it empty.", yes))
      return kExitRefused;
  }
  auto r = cms::installDb(*t, o);
  return finish<cms::InstallDbReport>(
      ctx, r, "tandemctl cms status",
      [](const cms::InstallDbReport& x) { std::cout << x.outcome << "\n"; },
      [](const cms::InstallDbReport& x) { return x.toJson(); });
}

int runMove(Context& ctx, cms::MoveOptions o, bool yes) {
  auto t = deployedTopology(ctx);
  if (!t) return reportError(t.error());
  o.state_dir = ctx.state_dir;
  const bool what_if = o.what_if;
  o.what_if = true;
  auto plan = cms::move(*t, o);
  if (!plan) return reportError(plan.error(), "tandemctl cms move --what-if --pool " + o.pool +
                                                  " --from " + o.from);
  if (what_if) {
    if (ctx.json) printJson(plan->toJson());
    else
      for (size_t i = 0; i < plan->plan.size(); ++i)
        std::cout << "  " << i + 1 << ". " << plan->plan[i] << "\n";
    return kExitOk;
  }
  if (!plan->already_moved &&
      !confirm("Make store `" + plan->to_store + "` the active CMS from " + o.from +
                   " (epoch " + std::to_string(plan->epoch) + "), fencing store `" +
                   plan->old_store + "`?",
               yes))
    return kExitRefused;
  o.what_if = false;
  o.progress = stepPrinter(ctx);
  auto r = cms::move(*t, o);
  return finish<cms::MoveReport>(
      ctx, r, "tandemctl cms status",
      [](const cms::MoveReport& x) {
        std::cout << "CMS is active on store `" << x.to_store << "` (pool " << x.to_pool
                  << ", epoch " << x.epoch << "), version " << x.version << ", master " << x.master
                  << "; RPO: versions newer than the export and every replica were lost (none "
                     "known)\n";
      },
      [](const cms::MoveReport& x) { return x.toJson(); });
}

int runBootstrap(Context& ctx, cms::BootstrapOptions o) {
  auto t = deployedTopology(ctx);
  if (!t) return reportError(t.error());
  o.state_dir = ctx.state_dir;
  auto r = cms::bootstrap(*t, o);
  return finish<cms::BootstrapReport>(
      ctx, r, "tandemctl cms status",
      [](const cms::BootstrapReport& x) {
        Table tab({"SERVER", "POOL", "CMS SERVICES", "REPLICA VERSION", "OUTCOME"});
        for (const auto& s : x.servers)
          tab.addRow({s.fqdn, s.pool, s.agent, std::to_string(s.version), s.outcome});
        std::cout << tab.render() << "CMS: store `" << x.active_store << "` (pool "
                  << x.active_pool << "), version " << x.current_version << ", master "
                  << (x.master.empty() ? "(none)" : x.master) << "\n";
      },
      [](const cms::BootstrapReport& x) { return x.toJson(); });
}

// ---- cmdlets -------------------------------------------------------------------------------------

Argv needFile(const Params& p, const std::string& cmdlet, const std::string& param) {
  auto it = p.find(param);
  if (it == p.end() || it->second.empty())
    return fail(invalidArgument(cmdlet + " needs -" + param + " FILE"));
  return std::vector<std::string>{it->second};
}

void registerCmsMoveCmdlets() {
  registerCmdlet({"Export-CsConfiguration", "cms export --to F", {{"FileName"}, {"Force", true}},
                  [](const Params& p) -> Argv {
                    auto f = needFile(p, "Export-CsConfiguration", "FileName");
                    if (!f) return f;
                    // -Force overwrites an existing file: the export always replaces it.
                    return std::vector<std::string>{"cms", "export", "--to", (*f)[0]};
                  }});
  registerCmdlet({"Import-CsConfiguration", "cms import --from F",
                  {{"FileName"}, {"LocalStore", true}, {"Force", true}},
                  [](const Params& p) -> Argv {
                    if (p.count("LocalStore"))
                      return fail(invalidArgument(
                          "-LocalStore is not needed: every server's replica receives the CMS "
                          "from the master; check them with `tandemctl cms bootstrap`"));
                    auto f = needFile(p, "Import-CsConfiguration", "FileName");
                    if (!f) return f;
                    return std::vector<std::string>{"cms", "import", "--from", (*f)[0]};
                  }});
  registerCmdlet({"Install-CsDatabase", "cms install-db --store S [--clean]",
                  {{"CentralManagementDatabase", true}, {"Clean", true}, {"SqlServerFqdn"},
                   {"SqlInstanceName"}, {"UseDefaultSqlPaths", true}, {"Force", true},
                   {"WhatIf", true}},
                  [](const Params& p) -> Argv {
                    if (!p.count("CentralManagementDatabase"))
                      return fail(invalidArgument(
                          "Install-CsDatabase installs only -CentralManagementDatabase here; the "
                          "other databases are created by their components (`tandemctl deploy up`)"));
                    auto s = p.find("SqlServerFqdn");
                    if (s == p.end())
                      return fail(invalidArgument("Install-CsDatabase needs -SqlServerFqdn"));
                    if (auto i = p.find("SqlInstanceName"); i != p.end()) {
                      Status st = checkSqlInstanceName("SqlInstanceName", s->second, i->second);
                      if (!st.isOk()) return fail(st);
                    }
                    std::vector<std::string> out = {"cms", "install-db", "--store", storeOf(s->second)};
                    if (p.count("Clean")) out.push_back("--clean");
                    if (p.count("Force")) out.push_back("--yes");  // no prompt; never --force
                    if (p.count("WhatIf")) out.push_back("--what-if");
                    return out;
                  }});
  registerCmdlet({"Move-CsManagementServer", "cms move --from F [--force]",
                  {{"ConfigurationFileName"}, {"LisConfigurationFileName"}, {"Force", true},
                   {"WhatIf", true}},
                  [](const Params& p) -> Argv {
                    if (p.count("LisConfigurationFileName"))
                      return fail(invalidArgument(
                          "Tandem has no Location Information Service, so there is no LIS "
                          "configuration to move; leave out -LisConfigurationFileName"));
                    auto f = needFile(p, "Move-CsManagementServer", "ConfigurationFileName");
                    if (!f) return f;
                    std::vector<std::string> out = {"cms", "move", "--from", (*f)[0]};
                    if (p.count("Force")) out.insert(out.end(), {"--force", "--yes"});
                    if (p.count("WhatIf")) out.push_back("--what-if");
                    return out;
                  }});
  registerCmdlet({"Bootstrapper", "cms bootstrap (/Setup)", {{"Setup", true}},
                  [](const Params& p) -> Argv {
                    if (!p.count("Setup"))
                      return fail(invalidArgument("Bootstrapper needs /Setup"));
                    return std::vector<std::string>{"cms", "bootstrap"};
                  }});
}

}  // namespace

Status checkSqlInstanceName(const std::string& param, const std::string& server_fqdn,
                            const std::string& instance) {
  std::string lower = instance;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "rtc" || lower == storeOf(server_fqdn)) return Status::ok();
  return invalidArgument("-" + param + " `" + instance + "`: store `" + storeOf(server_fqdn) +
                         "` runs one PostgreSQL instance, which the runbooks call `rtc`; type -" +
                         param + " rtc");
}

cms::StepProgress stepPrinter(Context& ctx) {
  return [&ctx](int i, int n, const std::string& name, const std::string& outcome, double s) {
    if (ctx.json) return;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", s);
    std::cerr << "[" << i << "/" << n << "] " << name << " … " << outcome << " (" << secs
              << " s)\n";
  };
}

void registerCmsMoveCommands(CLI::App* cms, Context& ctx) {
  auto to = std::make_shared<std::string>();
  CLI::App* ex = cms->add_subcommand("export", "Write every CMS version to one checksummed file");
  ex->add_option("--to", *to, "The export file")->required();
  addJsonFlag(ex, ctx);
  ex->callback([&ctx, to] { ctx.exit_code = runExport(ctx, *to); });

  struct ImportArgs { std::string from, pool; };
  auto ia = std::make_shared<ImportArgs>();
  CLI::App* im = cms->add_subcommand("import", "Load an export into an empty CMS database");
  im->add_option("--from", ia->from, "The export file")->required();
  im->add_option("--pool", ia->pool, "Pool whose store holds the empty CMS database");
  addJsonFlag(im, ctx);
  im->callback([&ctx, ia] { ctx.exit_code = runImport(ctx, ia->from, ia->pool); });

  struct InstallArgs { cms::InstallDbOptions o; bool yes = false; };
  auto in = std::make_shared<InstallArgs>();
  CLI::App* inst = cms->add_subcommand("install-db", "Create an empty CMS database on a store");
  inst->add_option("--store", in->o.store, "The store (its principal now)")->required();
  inst->add_flag("--clean", in->o.clean, "Replace a CMS database already there");
  inst->add_flag("--force", in->o.force, "Even the one holding the ACTIVE CMS");
  addWhatIfFlag(inst, in->o.what_if);
  addYesFlag(inst, in->yes);
  addJsonFlag(inst, ctx);
  inst->callback([&ctx, in] { ctx.exit_code = runInstallDb(ctx, in->o, in->yes); });

  struct MoveArgs { cms::MoveOptions o; bool yes = false; };
  auto mv = std::make_shared<MoveArgs>();
  CLI::App* m = cms->add_subcommand("move", "Make the clean CMS on --pool's store active from an export");
  m->add_option("--pool", mv->o.pool, "Pool whose store takes the CMS (default: the CMS pool's backup pool)");
  m->add_option("--from", mv->o.from, "The export (e.g. the newest on the backup share)")->required();
  m->add_flag("--force", mv->o.force, "Move although the old CMS cannot agree (it is fenced by epoch)");
  addWhatIfFlag(m, mv->o.what_if);
  addYesFlag(m, mv->yes);
  addJsonFlag(m, ctx);
  m->callback([&ctx, mv] { ctx.exit_code = runMove(ctx, mv->o, mv->yes); });

  auto bo = std::make_shared<cms::BootstrapOptions>();
  CLI::App* b = cms->add_subcommand("bootstrap", "Run and check a server's CMS services against the current CMS");
  b->add_option("--server", bo->server, "The server (default: every front end of the CMS pool)");
  addJsonFlag(b, ctx);
  b->callback([&ctx, bo] { ctx.exit_code = runBootstrap(ctx, *bo); });

  registerCmsMoveCmdlets();
}

}  // namespace tandem::ctl
