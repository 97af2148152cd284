// tandemctl cms (status, replication-status, failover, sync), config (get, set, history) and
// topology publish/diff: the operator's view of the central management store (docs/cms.md).
#include <iostream>
#include <memory>

#include "cms/client.h"
#include "cms/failover.h"
#include "cms/settings.h"
#include "common/clock.h"
#include "common/files.h"
#include "ctl/cms_move_cmds.h"
#include "ctl/commands.h"
#include "topology/loader.h"

namespace tandem::ctl {

Result<topology::Topology> deployedTopology(const Context& ctx) {
  auto t = topology::loadValidTopology(ctx.state_dir + "/topology.yaml");
  if (!t && t.error().code() == StatusCode::kNotFound)
    return fail(notFound("no deployed topology in `" + ctx.state_dir +
                         "` (run `tandemctl deploy up FILE` or pass --state-dir)"));
  return t;
}

namespace {

namespace topo = tandem::topology;

std::string utc(const std::optional<SystemTime>& t) { return t ? formatUtc(*t) : "-"; }
nlohmann::json utcJson(const std::optional<SystemTime>& t) {
  return t ? nlohmann::json(formatUtc(*t)) : nlohmann::json();
}
std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "-" : out;
}

Result<std::unique_ptr<cms::Client>> connectCms(const Context& ctx) {
  auto t = deployedTopology(ctx);
  if (!t) return fail(t.error());
  return cms::Client::connect(*t, ctx.state_dir, "tandemctl");
}

// ---- cms status -------------------------------------------------------------------------------

int runStatus(Context& ctx) {
  auto c = connectCms(ctx);
  if (!c) return reportError(c.error(), "tandemctl cms failover --what-if");
  auto s = (*c)->status();
  if (!s) return reportError(s.error());
  if (ctx.json) {
    printJson({{"active_master", s->master.empty() ? nlohmann::json() : nlohmann::json(s->master)},
               {"file_transfer_agents", s->file_transfer_agents},
               {"current_version", s->current_version},
               {"current_version_created_at", utcJson(s->current_version_created)},
               {"active_store", s->active_store},
               {"active_pool", s->active_pool},
               {"epoch", s->epoch},
               {"standby",
                {{"store", s->standby_store},
                 {"version", s->standby_version < 0 ? nlohmann::json() : nlohmann::json(s->standby_version)},
                 {"synced_at", utcJson(s->standby_synced_at)},
                 {"error", s->standby_error}}}});
    return kExitOk;
  }
  Table t({"FIELD", "VALUE"});
  t.addRow({"Active master", s->master.empty() ? "(none: lease expired)" : s->master});
  t.addRow({"File transfer agents", joined(s->file_transfer_agents)});
  t.addRow({"Current version", std::to_string(s->current_version) + " (" +
                                   utc(s->current_version_created) + ")"});
  t.addRow({"Active store", s->active_store + " (pool " + s->active_pool + ", epoch " +
                                std::to_string(s->epoch) + ")"});
  if (!s->standby_store.empty()) {
    std::string sb = s->standby_store + ": ";
    if (s->standby_version < 0) sb += "never synced";
    else sb += "version " + std::to_string(s->standby_version) + ", " +
               std::to_string(s->current_version - s->standby_version) + " behind, synced " +
               utc(s->standby_synced_at);
    if (!s->standby_error.empty()) sb += " (last error: " + s->standby_error + ")";
    t.addRow({"Standby", sb});
  }
  std::cout << t.render();
  return kExitOk;
}

// ---- cms replication-status -------------------------------------------------------------------

int runReplicationStatus(Context& ctx, const std::string& only) {
  auto t = deployedTopology(ctx);
  if (!t) return reportError(t.error());
  auto c = cms::Client::connect(*t, ctx.state_dir, "tandemctl");
  std::vector<cms::ReplicaReport> reps;
  Status problem;
  if (c) {
    auto r = (*c)->replicationStatus();
    if (r) reps = *r;
    else problem = r.error();
  } else {
    problem = c.error();
  }
  if (!problem.isOk()) {
    // The CMS master is unreachable: ask the replicas themselves what they hold.
    auto asked = cms::askReplicas(*t, ctx.state_dir, false, std::chrono::milliseconds(1500));
    for (const auto& pool : t->pools)
      for (const auto& srv : pool.servers) {
        cms::ReplicaReport r;
        r.fqdn = srv.fqdn;
        r.pool = pool.fqdn;
        auto it = asked.find(srv.fqdn);
        if (it != asked.end()) {
          r.version = it->second.value("version", int64_t{0});
          r.epoch = it->second.value("epoch", int64_t{0});
          r.last_report = realClock().wallNow();
          r.last_update_created = parseUtc(it->second.value("created_at", std::string()));
          r.product_version = it->second.value("product_version", std::string());
        } else {
          r.last_error = "admin endpoint does not answer";
        }
        reps.push_back(r);
      }
  }
  std::erase_if(reps, [&](const cms::ReplicaReport& r) { return !only.empty() && r.fqdn != only; });
  const std::string sentence =
      problem.isOk() ? "" : "CMS master unreachable, so whether replicas are up to date is unknown "
                            "(versions below come from the servers): " + problem.message();
  if (ctx.json) {
    nlohmann::json doc = {{"master_reachable", problem.isOk()},
                          {"problem", sentence.empty() ? nlohmann::json() : nlohmann::json(sentence)},
                          {"replicas", nlohmann::json::array()}};
    for (const auto& r : reps)
      doc["replicas"].push_back(
          {{"fqdn", r.fqdn}, {"pool", r.pool},
           {"up_to_date", problem.isOk() ? nlohmann::json(r.up_to_date) : nlohmann::json()},
           {"version", r.version}, {"epoch", r.epoch}, {"last_status_report", utcJson(r.last_report)},
           {"last_update_creation", utcJson(r.last_update_created)},
           {"product_version", r.product_version}, {"last_error", r.last_error}});
    printJson(doc);
    return problem.isOk() ? kExitOk : kExitFailed;
  }
  Table tab({"REPLICA", "POOL", "UP TO DATE", "VERSION", "LAST STATUS REPORT",
             "LAST UPDATE CREATION", "PRODUCT VERSION", "LAST ERROR"});
  for (const auto& r : reps)
    tab.addRow({r.fqdn, r.pool, problem.isOk() ? (r.up_to_date ? "true" : "false") : "unknown",
                std::to_string(r.version), utc(r.last_report), utc(r.last_update_created),
                r.product_version.empty() ? "-" : r.product_version,
                r.last_error.empty() ? "-" : r.last_error});
  std::cout << tab.render();
  if (!problem.isOk()) return reportError(unavailable(sentence), "tandemctl cms failover --what-if");
  return kExitOk;
}

// ---- cms failover / sync ----------------------------------------------------------------------

struct FailoverArgs {
  std::string pool, store, named_as;
  bool what_if = false, yes = false;
};

int runFailover(Context& ctx, const FailoverArgs& a) {
  auto t = deployedTopology(ctx);
  if (!t) return reportError(t.error());
  const bool what_if = a.what_if, yes = a.yes;
  cms::FailoverOptions o;
  o.state_dir = ctx.state_dir;
  o.target_pool = a.pool;
  o.target_store = a.store;
  o.store_named_as = a.named_as;
  o.what_if = true;
  o.progress = stepPrinter(ctx);
  auto progress = o.progress;
  if (!what_if) o.progress = nullptr;  // the real run prints its own steps
  auto plan = cms::failover(*t, o);
  if (!plan) return reportError(plan.error());
  o.progress = progress;
  if (what_if || plan->already_active) {
    if (ctx.json) {
      if (what_if) printJson(plan->toJson());
    } else {
      std::cout << "CMS failover to store `" << plan->to_store << "` (pool " << plan->to_pool
                << ")" << (what_if ? " would:" : ": nothing to do, it is already active") << "\n";
      if (what_if)
        for (size_t i = 0; i < plan->plan.size(); ++i)
          std::cout << "  " << i + 1 << ". " << plan->plan[i] << "\n";
    }
    if (what_if) return kExitOk;
  }
  if (!plan->already_active &&
      !confirm("Make store `" + plan->to_store + "` (pool " + plan->to_pool +
                   ") the active CMS, replacing store `" + plan->from_store + "`?",
               yes))
    return kExitRefused;
  o.what_if = false;
  auto done = cms::failover(*t, o);
  if (!done) return reportError(done.error(), "tandemctl cms status");
  if (ctx.json) {
    printJson(done->toJson());
  } else {
    std::cout << "CMS is active on store `" << done->to_store << "` (pool " << done->to_pool
              << ", epoch " << done->epoch << "), version " << done->version << ", master "
              << (done->master.empty() ? "(none yet)" : done->master) << "\n";
  }
  return kExitOk;
}

int runSync(Context& ctx) {
  auto t = deployedTopology(ctx);
  if (!t) return reportError(t.error());
  auto n = cms::syncStandbyNow(*t, ctx.state_dir);
  if (!n) return reportError(n.error(), "tandemctl cms status");
  if (ctx.json) printJson({{"copied_versions", *n}});
  else std::cout << "copied " << *n << " CMS versions to the standby copy\n";
  return kExitOk;
}

// ---- config get / set / history --------------------------------------------------------------

int runConfigGet(Context& ctx, const std::string& key) {
  auto c = connectCms(ctx);
  if (!c) return reportError(c.error());
  auto v = (*c)->current();
  if (!v) return reportError(v.error());
  const nlohmann::json& settings = v->document["settings"];
  if (!key.empty()) {
    if (!settings.contains(key)) {
      return reportError(notFound("setting `" + key + "` is not set in CMS version " +
                                  std::to_string(v->number)),
                         "tandemctl config get");
    }
    if (ctx.json) printJson({{"key", key}, {"value", settings[key]}, {"version", v->number}});
    else std::cout << settings[key].dump() << "\n";
    return kExitOk;
  }
  if (ctx.json) {
    printJson({{"version", v->number}, {"settings", settings}});
    return kExitOk;
  }
  Table t({"KEY", "VALUE"});
  for (const auto& [k, val] : settings.items()) t.addRow({k, val.dump()});
  std::cout << t.render();
  return kExitOk;
}

int runConfigSet(Context& ctx, const std::string& key, const std::string& text, bool what_if) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) value = text;  // a bare word is a string: FailedOver
  auto c = connectCms(ctx);
  if (!c) return reportError(c.error());
  auto before = (*c)->current();
  auto v = (*c)->setSetting(key, value, what_if);
  if (!v) return reportError(v.error(), "tandemctl config get");
  bool unchanged = before && before->number == v->number && !what_if;
  if (ctx.json) {
    printJson({{"version", v->number}, {"summary", v->summary}, {"what_if", what_if},
               {"changed", !unchanged}});
  } else if (unchanged) {
    std::cout << key << " is already " << value.dump() << " (version " << v->number << ")\n";
  } else {
    std::cout << (what_if ? "would write version " : "wrote version ") << v->number << ": "
              << v->summary << "\n";
  }
  return kExitOk;
}

int runHistory(Context& ctx, int limit) {
  auto c = connectCms(ctx);
  if (!c) return reportError(c.error());
  auto h = (*c)->history(limit);
  if (!h) return reportError(h.error());
  if (ctx.json) {
    nlohmann::json doc = nlohmann::json::array();
    for (const auto& v : *h)
      doc.push_back({{"version", v.number}, {"epoch", v.epoch}, {"created_at", formatUtc(v.created_at)},
                     {"author", v.author}, {"kind", v.kind}, {"summary", v.summary}});
    printJson(doc);
    return kExitOk;
  }
  Table t({"VERSION", "CREATED", "AUTHOR", "KIND", "SUMMARY"});
  for (const auto& v : *h)
    t.addRow({std::to_string(v.number), formatUtc(v.created_at), v.author, v.kind, v.summary});
  std::cout << t.render();
  return kExitOk;
}

// ---- topology publish / diff ------------------------------------------------------------------

// Prints every problem (as `topology validate` does); returns the file text when valid.
Result<std::string> readValidFile(const std::string& file) {
  auto text = readFile(file);
  if (!text) return fail(text.error());
  topo::LoadResult checked = topo::checkTopology(*text, file);
  if (!checked.problems.empty()) {
    for (const auto& p : checked.problems) std::cout << p.toString() << "\n";
    return fail(invalidArgument("topology file `" + file + "` has " +
                                std::to_string(checked.problems.size()) +
                                " problems; nothing was published"));
  }
  return *text;
}

Result<std::unique_ptr<cms::Client>> connectForFile(const Context& ctx, const std::string& text,
                                                    const std::string& file) {
  auto t = deployedTopology(ctx);
  if (!t) {  // not deployed by `deploy up` here: the file itself says where the CMS is
    topo::LoadResult l = topo::parseTopology(text, file);
    return cms::Client::connect(l.topology, ctx.state_dir, "tandemctl");
  }
  return cms::Client::connect(*t, ctx.state_dir, "tandemctl");
}

int runPublish(Context& ctx, const std::string& file) {
  auto text = readValidFile(file);
  if (!text) return reportError(text.error(), "tandemctl topology validate " + file);
  auto c = connectForFile(ctx, *text, file);
  if (!c) return reportError(c.error());
  auto v = (*c)->publish(*text, file);
  if (!v) return reportError(v.error());
  if (ctx.json) printJson({{"version", v->number}, {"summary", v->summary}});
  else std::cout << "published " << file << " as CMS version " << v->number << "\n";
  return kExitOk;
}

}  // namespace

// `topology show` without FILE: the newest published topology, read back through the validator
// (a version is only ever stored valid, so a problem here means the CMS holds something odd).
int showPublishedTopology(Context& ctx) {
  auto c = connectCms(ctx);
  if (!c) return reportError(c.error());
  auto cur = (*c)->current();
  if (!cur) {
    if (cur.error().code() == StatusCode::kNotFound)
      return reportError(notFound("the CMS holds no published topology yet"),
                         "tandemctl topology publish FILE");
    return reportError(cur.error());
  }
  const nlohmann::json& doc = cur->document;
  if (!doc.contains("topology_yaml") || !doc["topology_yaml"].is_string())
    return reportError(internalError("CMS version " + std::to_string(cur->number) +
                                     " carries no topology text"));
  std::string source = "CMS version " + std::to_string(cur->number);
  topo::LoadResult checked = topo::checkTopology(doc["topology_yaml"].get<std::string>(), source);
  if (!checked.problems.empty()) {
    for (const auto& p : checked.problems) std::cerr << p.toString() << "\n";
    return reportError(internalError(source + " holds a topology that no longer validates"));
  }
  if (!ctx.json) {
    std::cout << "published topology: " << source << ", " << formatUtc(cur->created_at) << ", by "
              << cur->author << "\n\n";
  }
  printTopology(checked.topology, ctx.json);
  return kExitOk;
}

namespace {

// The model without what only locates it in a file (line numbers, the file name), so that a
// diff shows changes of meaning only.
nlohmann::json withoutFilePositions(const nlohmann::json& j) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items())
      if (k != "line" && k != "key_lines" && k != "file") out[k] = withoutFilePositions(v);
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(withoutFilePositions(v));
    return out;
  }
  return j;
}

int runDiff(Context& ctx, const std::string& file) {
  auto text = readValidFile(file);
  if (!text) return reportError(text.error(), "tandemctl topology validate " + file);
  auto c = connectForFile(ctx, *text, file);
  if (!c) return reportError(c.error());
  auto cur = (*c)->current();
  nlohmann::json before = nlohmann::json::object(), before_settings = nlohmann::json::object();
  int64_t number = 0;
  if (cur) {
    before = cur->document["topology"];
    before_settings = cur->document["settings"];
    number = cur->number;
  } else if (cur.error().code() != StatusCode::kNotFound) {
    return reportError(cur.error());
  }
  auto doc = cms::makeTopologyDocument(*text, file, before_settings);
  if (!doc) return reportError(doc.error());
  nlohmann::json patch = nlohmann::json::diff(withoutFilePositions(before),
                                              withoutFilePositions((*doc)["topology"]));
  auto settings = cms::diffSettings(before_settings, (*doc)["settings"]);
  if (ctx.json) {
    printJson({{"published_version", number}, {"topology_changes", patch}, {"setting_changes", settings}});
    return kExitOk;
  }
  if (patch.empty() && settings.empty()) {
    std::cout << file << ": no change from published version " << number << "\n";
    return kExitOk;
  }
  std::cout << file << " against published version " << number << ":\n";
  for (const auto& op : patch) {
    const std::string kind = op["op"];
    const std::string sign = kind == "add" ? "+" : kind == "remove" ? "-" : "~";
    std::cout << "  " << sign << " " << op["path"].get<std::string>();
    if (op.contains("value")) std::cout << ": " << op["value"].dump();
    std::cout << "\n";
  }
  for (const auto& s : settings) std::cout << "  setting " << s << "\n";
  return kExitOk;
}

// Invoke-CsManagementServerFailover (seed 004 steps 1, 5b, 5c): the SQL server named is checked
// by `cms failover --store` (principal now, named with the right parameter).
Result<std::vector<std::string>> translateManagementServerFailover(
    const std::map<std::string, std::string>& p) {
  std::vector<std::string> out = {"cms", "failover"};
  const bool backup = p.count("BackupSqlServerFqdn"), mirror = p.count("MirrorSqlServerFqdn");
  if (backup && mirror)
    return fail(invalidArgument("give -BackupSqlServerFqdn or -MirrorSqlServerFqdn, not both: "
                                "the one that `Get-CsDatabaseMirrorState` shows as principal"));
  for (const char* kind : {"Backup", "Mirror"}) {
    const std::string server = std::string(kind) + "SqlServerFqdn";
    const std::string instance = std::string(kind) + "SqlInstanceName";
    auto s = p.find(server);
    auto i = p.find(instance);
    if (i != p.end() && s == p.end())
      return fail(invalidArgument("-" + instance + " needs -" + server));
    if (s == p.end()) continue;
    if (i != p.end()) {
      Status st = checkSqlInstanceName(instance, s->second, i->second);
      if (!st.isOk()) return fail(st);
    }
    out.insert(out.end(), {"--store", s->second.substr(0, s->second.find('.')),
                           "--store-named-as", kind == std::string("Backup") ? "backup" : "mirror"});
  }
  if (p.count("WhatIf")) out.push_back("--what-if");
  auto confirm = p.find("Confirm");
  if (p.count("Force") || (confirm != p.end() && confirm->second == "$false"))
    out.push_back("--yes");
  return out;
}

void registerCmsCmdlets() {
  registerCmdlet({"Get-CsManagementStoreReplicationStatus",
                  "cms replication-status (cms status with -CentralManagementStoreStatus)",
                  {{"CentralManagementStoreStatus", true}, {"ReplicaFqdn"}},
                  [](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    if (p.count("CentralManagementStoreStatus"))
                      return std::vector<std::string>{"cms", "status"};
                    std::vector<std::string> out = {"cms", "replication-status"};
                    if (auto it = p.find("ReplicaFqdn"); it != p.end())
                      out.insert(out.end(), {"--replica", stripIdentityPrefix(it->second)});
                    return out;
                  }});
  registerCmdlet({"Invoke-CsManagementServerFailover", "cms failover",
                  {{"BackupSqlServerFqdn"}, {"BackupSqlInstanceName"}, {"MirrorSqlServerFqdn"},
                   {"MirrorSqlInstanceName"}, {"Force", true}, {"WhatIf", true}, {"Confirm", true}},
                  translateManagementServerFailover});
  registerCmdlet({"Invoke-CsManagementStoreReplication", "cms sync", {{"ReplicaFqdn"}},
                  [](const std::map<std::string, std::string>&) -> Result<std::vector<std::string>> {
                    return std::vector<std::string>{"cms", "sync"};
                  }});
  registerCmdlet({"Publish-CsTopology", "topology publish", {{"FileName"}, {"Force", true}},
                  [](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    auto it = p.find("FileName");
                    if (it == p.end()) return fail(invalidArgument("Publish-CsTopology needs -FileName"));
                    return std::vector<std::string>{"topology", "publish", it->second};
                  }});
}

}  // namespace

void registerCmsCommands(CLI::App& app, Context& ctx) {
  CLI::App* cms = app.add_subcommand("cms", "Central management store: status, replication, failover");
  cms->require_subcommand(1);
  CLI::App* status = cms->add_subcommand("status", "Active master, file transfer agents, current version");
  addJsonFlag(status, ctx);
  status->callback([&ctx] { ctx.exit_code = runStatus(ctx); });

  auto replica = std::make_shared<std::string>();
  CLI::App* rs = cms->add_subcommand("replication-status", "Per replica: up to date, last report, version");
  rs->add_option("--replica", *replica, "Only this server's replica");
  addJsonFlag(rs, ctx);
  rs->callback([&ctx, replica] { ctx.exit_code = runReplicationStatus(ctx, *replica); });

  auto fa = std::make_shared<FailoverArgs>();
  CLI::App* fo = cms->add_subcommand("failover", "Make the standby copy (or --pool's) the active CMS");
  fo->add_option("--pool", fa->pool, "Pool whose store becomes the active CMS (default: the other)");
  fo->add_option("--store", fa->store,
                 "That pool's store or its mirror, whichever is principal now (checked)");
  fo->add_option("--store-named-as", fa->named_as,
                 "How a cmdlet named --store: backup (-BackupSqlServerFqdn) or mirror")
      ->check(CLI::IsMember({"backup", "mirror"}));
  addWhatIfFlag(fo, fa->what_if);
  addYesFlag(fo, fa->yes);
  addJsonFlag(fo, ctx);
  fo->callback([&ctx, fa] { ctx.exit_code = runFailover(ctx, *fa); });

  CLI::App* sync = cms->add_subcommand("sync", "Copy the versions the standby lacks now");
  addJsonFlag(sync, ctx);
  sync->callback([&ctx] { ctx.exit_code = runSync(ctx); });

  CLI::App* config = app.add_subcommand("config", "CMS settings: get, set, history");
  config->require_subcommand(1);
  auto key = std::make_shared<std::string>();
  CLI::App* get = config->add_subcommand("get", "Show one setting, or all");
  get->add_option("KEY", *key, "Setting key, e.g. chat.chat.example.test.state");
  addJsonFlag(get, ctx);
  get->callback([&ctx, key] { ctx.exit_code = runConfigGet(ctx, *key); });

  struct SetArgs { std::string key, value; bool what_if = false; };
  auto sa = std::make_shared<SetArgs>();
  CLI::App* set = config->add_subcommand("set", "Set a setting (a new CMS version)");
  set->add_option("KEY", sa->key, "Setting key")->required();
  set->add_option("VALUE", sa->value, "JSON value, or a bare word for a string")->required();
  addWhatIfFlag(set, sa->what_if);
  addJsonFlag(set, ctx);
  set->callback([&ctx, sa] { ctx.exit_code = runConfigSet(ctx, sa->key, sa->value, sa->what_if); });

  auto limit = std::make_shared<int>(20);
  CLI::App* hist = config->add_subcommand("history", "The newest CMS versions");
  hist->add_option("--limit", *limit, "How many versions")->capture_default_str();
  addJsonFlag(hist, ctx);
  hist->callback([&ctx, limit] { ctx.exit_code = runHistory(ctx, *limit); });

  // topology publish / diff hang under the topology noun (registered before us).
  CLI::App* topology = nullptr;
  try {
    topology = app.get_subcommand("topology");
  } catch (const CLI::Error&) {
    topology = app.add_subcommand("topology", "Topology files");
  }
  auto file = std::make_shared<std::string>();
  CLI::App* pub = topology->add_subcommand("publish", "Validate FILE and publish it as a new CMS version");
  pub->add_option("FILE", *file, "Topology file")->required();
  addJsonFlag(pub, ctx);
  pub->callback([&ctx, file] { ctx.exit_code = runPublish(ctx, *file); });
  auto dfile = std::make_shared<std::string>();
  CLI::App* diff = topology->add_subcommand("diff", "What publishing FILE would change");
  diff->add_option("FILE", *dfile, "Topology file")->required();
  addJsonFlag(diff, ctx);
  diff->callback([&ctx, dfile] { ctx.exit_code = runDiff(ctx, *dfile); });

  registerCmsMoveCommands(cms, ctx);
  registerCmsCmdlets();
}

}  // namespace tandem::ctl
