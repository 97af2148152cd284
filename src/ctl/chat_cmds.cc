// tandemctl chat commands: state, active-servers, category, room, compliance (docs/persistent-
// chat.md). `chat failover|failback` are added to the same noun by runbook_cmds.cc.
//
// State and active servers are CMS settings (cms::Client); rooms are added and removed by the
// chat server that owns them (its admin endpoint, POST /rooms and /rooms/remove), so the live
// room follows; categories are written to the chat pool's `mgc` directly through src/store, and
// room list/show and the compliance status read `mgc`/`mgccomp`. The SQL mirrors
// chat/room_store.cc: ctl does not link the chat module yet (requested), so the few statements
// are repeated here.
#include <memory>

#include "cms/client.h"
#include "rpc/certs.h"
#include "rpc/client.h"
#include "ctl/commands.h"
#include "store/connection.h"
#include "topology/loader.h"

namespace tandem::ctl {

namespace {

namespace topo = tandem::topology;

struct ChatArgs {
  std::string pool, state, servers, name, category, description, creators, members;
  bool what_if = false, yes = false;
};

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text + ",") {
    if (c == ',' || c == ' ' || c == '"' || c == '\'') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "-" : out;
}

Result<topo::Topology> deployed(const Context& ctx) {
  auto t = topo::loadValidTopology(ctx.state_dir + "/topology.yaml");
  if (!t && t.error().code() == StatusCode::kNotFound) {
    return fail(notFound("no deployed topology in `" + ctx.state_dir +
                         "` (run `tandemctl deploy up FILE` or pass --state-dir)"));
  }
  return t;
}

// The chat pool named by --pool, or the only chat pool when --pool is omitted.
Result<const topo::Pool*> chatPool(const topo::Topology& t, const std::string& name) {
  auto pools = t.poolsWithRole(topo::PoolRole::kChat);
  if (name.empty() && pools.size() == 1) return pools[0];
  for (const auto* p : pools) {
    if (p->fqdn == name) return p;
  }
  if (name.empty()) return fail(invalidArgument("name the chat pool with --pool"));
  return fail(notFound("`" + name + "` is not a chat pool of the deployed topology"));
}

std::string stateKey(const std::string& pool) { return "chat." + pool + ".state"; }
std::string activeKey(const std::string& pool) { return "chat." + pool + ".active_servers"; }

Result<std::string> currentState(cms::Client& c, const std::string& pool) {
  auto v = c.getSetting(stateKey(pool));
  if (!v) return fail(v.error());
  return v->is_string() ? v->get<std::string>() : std::string("Normal");
}

Result<std::vector<std::string>> currentActive(cms::Client& c, const std::string& pool) {
  auto v = c.getSetting(activeKey(pool));
  if (!v) return fail(v.error());
  std::vector<std::string> out;
  if (v->is_array()) {
    for (const auto& s : *v) out.push_back(s.get<std::string>());
  }
  return out;
}

// Refuses servers outside the pool and servers whose site is neither the primary store's site
// (store in Normal, backup_store in FailedOver) nor marked low_latency_to it.
Status checkActiveServers(const topo::Topology& t, const topo::Pool& pool, const std::string& state,
                          const std::vector<std::string>& servers) {
  const std::string store_name = state == "FailedOver" ? pool.backup_store : pool.store;
  const auto* store = t.findStore(store_name);
  const std::string primary_site = store ? store->site : pool.site;
  for (const auto& s : servers) {
    const topo::Server* server = nullptr;
    for (const auto& cand : pool.servers) {
      if (cand.fqdn == s) server = &cand;
    }
    if (server == nullptr) {
      return failedPrecondition("`" + s + "` is not a server of chat pool `" + pool.fqdn +
                                "`; its servers are " + [&] {
                                  std::vector<std::string> names;
                                  for (const auto& c : pool.servers) names.push_back(c.fqdn);
                                  return joined(names);
                                }());
    }
    std::string site = server->site.empty() ? pool.site : server->site;
    if (site == primary_site) continue;
    const auto* st = t.findSite(site);
    bool low_latency = st && std::find(st->low_latency_to.begin(), st->low_latency_to.end(),
                                       primary_site) != st->low_latency_to.end();
    if (!low_latency) {
      return failedPrecondition("chat server `" + s + "` is in site " + site +
                                ", but the pool's primary store `" + store_name + "` (state " +
                                state + ") is in " + primary_site + " and " + site +
                                " is not marked low_latency_to it");
    }
  }
  return Status::ok();
}

// A connection to a database of the chat pool's current primary store (per the CMS state).
Result<std::unique_ptr<store::Connection>> chatDatabase(const Context& ctx, const topo::Topology& t,
                                                        const topo::Pool& pool,
                                                        const std::string& db) {
  auto token = readDeploymentToken(ctx.state_dir);
  if (!token) return fail(token.error());
  std::string state = "Normal";
  if (auto c = cms::Client::connect(t, ctx.state_dir, "tandemctl chat")) {
    if (auto s = currentState(**c, pool.fqdn)) state = *s;
  }
  bool failed_over = state == "FailedOver";
  const auto* st = t.findStore(failed_over ? pool.backup_store : pool.store);
  if (!st) return fail(notFound("chat pool `" + pool.fqdn + "` has no store for state " + state));
  std::vector<std::string> addresses{st->address};
  std::string mirror = st->mirror.empty() && failed_over ? pool.backup_mirror : st->mirror;
  if (const auto* m = t.findStore(mirror)) addresses.push_back(m->address);
  auto c = store::Connection::open(store::connectionString(addresses, db, *token));
  if (!c) return fail(c.error().withContext("chat pool `" + pool.fqdn + "`"));
  return c;
}

std::string arrayLiteral(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    out += (i ? ",\"" : "\"");
    for (char ch : v[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

int done(Context& ctx, const Status& st, const std::string& hint = "") {
  ctx.exit_code = st.isOk() ? kExitOk : reportError(st, hint);
  return ctx.exit_code;
}

// ---- state ------------------------------------------------------------------------------------

void runState(Context& ctx, const ChatArgs& a, bool set) {
  auto t = deployed(ctx);
  if (!t) return (void)done(ctx, t.error());
  auto pool = chatPool(*t, a.pool);
  if (!pool) return (void)done(ctx, pool.error());
  auto c = cms::Client::connect(*t, ctx.state_dir, "tandemctl chat state");
  if (!c) return (void)done(ctx, c.error());
  auto before = currentState(**c, (*pool)->fqdn);
  if (!before) return (void)done(ctx, before.error());
  std::string after = *before;
  int64_t version = 0;
  if (set) {
    if (a.state != "Normal" && a.state != "FailedOver") {
      return (void)done(ctx, invalidArgument("--state must be Normal or FailedOver"));
    }
    auto v = (*c)->setSetting(stateKey((*pool)->fqdn), a.state, a.what_if);
    if (!v) return (void)done(ctx, v.error());
    after = a.state;
    version = v->number;
  }
  if (ctx.json) {
    printJson({{"pool", (*pool)->fqdn}, {"state", after}, {"previous_state", *before},
               {"what_if", a.what_if}, {"cms_version", version}});
  } else if (set) {
    std::printf("%s chat pool %s state: %s -> %s (CMS version %lld)\n",
                a.what_if ? "would set" : "set", (*pool)->fqdn.c_str(), before->c_str(),
                after.c_str(), static_cast<long long>(version));
  } else {
    Table tab({"POOL", "STATE", "STORE IN USE"});
    tab.addRow({(*pool)->fqdn, after, after == "FailedOver" ? (*pool)->backup_store : (*pool)->store});
    std::printf("%s", tab.render().c_str());
  }
  ctx.exit_code = kExitOk;
}

// ---- active servers ---------------------------------------------------------------------------

void runActive(Context& ctx, const ChatArgs& a, const std::string& verb) {
  auto t = deployed(ctx);
  if (!t) return (void)done(ctx, t.error());
  auto pool = chatPool(*t, a.pool);
  if (!pool) return (void)done(ctx, pool.error());
  auto c = cms::Client::connect(*t, ctx.state_dir, "tandemctl chat active-servers");
  if (!c) return (void)done(ctx, c.error());
  auto state = currentState(**c, (*pool)->fqdn);
  if (!state) return (void)done(ctx, state.error());
  auto before = currentActive(**c, (*pool)->fqdn);
  if (!before) return (void)done(ctx, before.error());
  std::vector<std::string> after = *before, given = splitList(a.servers);
  if (verb == "set") {
    after = given;
  } else if (verb == "add") {
    for (const auto& s : given) {
      if (std::find(after.begin(), after.end(), s) == after.end()) after.push_back(s);
    }
  } else if (verb == "remove") {
    for (const auto& s : given) after.erase(std::remove(after.begin(), after.end(), s), after.end());
  }
  int64_t version = 0;
  if (verb != "show") {
    if (verb != "set" && given.empty()) {
      return (void)done(ctx, invalidArgument("name at least one server with --servers"));
    }
    if (Status st = checkActiveServers(*t, **pool, *state, after); !st) {
      return (void)done(ctx, st, "tandemctl chat state show --pool " + (*pool)->fqdn);
    }
    auto v = (*c)->setSetting(activeKey((*pool)->fqdn), after, a.what_if);
    if (!v) return (void)done(ctx, v.error());
    version = v->number;
  }
  if (ctx.json) {
    printJson({{"pool", (*pool)->fqdn}, {"active_servers", after}, {"previous", *before},
               {"state", *state}, {"what_if", a.what_if}, {"cms_version", version}});
  } else if (verb != "show") {
    std::printf("%s active servers of %s: [%s] -> [%s] (CMS version %lld)\n",
                a.what_if ? "would set" : "set", (*pool)->fqdn.c_str(), joined(*before).c_str(),
                joined(after).c_str(), static_cast<long long>(version));
  } else {
    Table tab({"POOL", "SERVER", "SITE", "ACTIVE"});
    for (const auto& s : (*pool)->servers) {
      bool on = std::find(after.begin(), after.end(), s.fqdn) != after.end();
      tab.addRow({(*pool)->fqdn, s.fqdn, s.site.empty() ? (*pool)->site : s.site, on ? "yes" : "no"});
    }
    std::printf("%s", tab.render().c_str());
  }
  ctx.exit_code = kExitOk;
}

// ---- categories and rooms ---------------------------------------------------------------------

void runCategory(Context& ctx, const ChatArgs& a, const std::string& verb) {
  auto t = deployed(ctx);
  if (!t) return (void)done(ctx, t.error());
  auto pool = chatPool(*t, a.pool);
  if (!pool) return (void)done(ctx, pool.error());
  auto c = chatDatabase(ctx, *t, **pool, "mgc");
  if (!c) return (void)done(ctx, c.error());
  store::Connection& db = **c;
  if (verb == "add") {
    auto r = db.exec(
        "INSERT INTO categories(name, description, creators, members) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, "
        "creators = EXCLUDED.creators, members = EXCLUDED.members",
        {a.name, a.description, arrayLiteral(a.creators.empty() ? std::vector<std::string>{"*"} : splitList(a.creators)),
         arrayLiteral(a.members.empty() ? std::vector<std::string>{"*"} : splitList(a.members))});
    if (!r) return (void)done(ctx, r.error());
    if (!ctx.json) std::printf("category %s saved\n", a.name.c_str());
    else printJson({{"category", a.name}, {"saved", true}});
    ctx.exit_code = kExitOk;
    return;
  }
  if (verb == "remove") {
    auto used = db.exec("SELECT count(*) FROM rooms WHERE category = $1", {a.name});
    if (!used) return (void)done(ctx, used.error());
    if (used->rows[0][0] != "0") {
      return (void)done(ctx, failedPrecondition("category `" + a.name + "` still holds " +
                                                used->rows[0][0] + " room(s); remove them first"),
                        "tandemctl chat room list --category " + a.name);
    }
    auto r = db.exec("DELETE FROM categories WHERE name = $1", {a.name});
    if (!r) return (void)done(ctx, r.error());
    if (r->affected == 0) return (void)done(ctx, notFound("category `" + a.name + "` does not exist"));
    if (!ctx.json) std::printf("category %s removed\n", a.name.c_str());
    else printJson({{"category", a.name}, {"removed", true}});
    ctx.exit_code = kExitOk;
    return;
  }
  auto r = db.exec(
      "SELECT c.name, c.description, array_to_string(c.creators, ','), "
      "array_to_string(c.members, ','), (SELECT count(*) FROM rooms r WHERE r.category = c.name) "
      "FROM categories c ORDER BY c.name");
  if (!r) return (void)done(ctx, r.error());
  nlohmann::json out = nlohmann::json::array();
  Table tab({"CATEGORY", "CREATORS", "MEMBERS", "ROOMS", "DESCRIPTION"});
  for (const auto& row : r->rows) {
    out.push_back({{"name", row[0]}, {"description", row[1]}, {"creators", splitList(row[2])},
                   {"members", splitList(row[3])}, {"rooms", std::stoll(row[4])}});
    tab.addRow({row[0], row[2], row[3], row[4], row[1]});
  }
  if (ctx.json) printJson({{"pool", (*pool)->fqdn}, {"categories", out}});
  else std::printf("%s", tab.render().c_str());
  ctx.exit_code = kExitOk;
}

// Asks the chat servers of `pool` in turn to run admin `path` for a room: the one that owns it
// does it; the others answer Unavailable (not theirs, or not active), as does a server down.
Result<nlohmann::json> onRoomOwner(const Context& ctx, const topo::Pool& pool,
                                   const std::string& path, const nlohmann::json& body) {
  auto opts = rpc::clientOptionsFromStateDir(ctx.state_dir);
  if (!opts) return fail(opts.error());
  Status last = unavailable("chat pool `" + pool.fqdn + "` has no servers");
  for (const auto& s : pool.servers) {
    rpc::AdminClient c(s.address, 8443, *opts);
    auto r = c.post(path, body);
    if (r) return r;
    if (r.error().code() != StatusCode::kUnavailable) return r;
    last = r.error();
  }
  return fail(last.withContext("no active chat server of pool `" + pool.fqdn +
                               "` took the request (is the room's owner running?)"));
}

void runRoom(Context& ctx, const ChatArgs& a, const std::string& verb) {
  auto t = deployed(ctx);
  if (!t) return (void)done(ctx, t.error());
  auto pool = chatPool(*t, a.pool);
  if (!pool) return (void)done(ctx, pool.error());
  const std::string service = (*pool)->fqdn;
  if (verb == "add" || verb == "remove") {
    if (verb == "remove" &&
        !confirm("Remove room " + a.name + "@" + service + " and its whole history?", a.yes)) {
      return (void)(ctx.exit_code = kExitRefused);
    }
    // Through the chat server that owns the room, so that the live room follows (#23).
    nlohmann::json body = {{"name", a.name}};
    if (verb == "add") body.update({{"category", a.category}, {"title", a.description}});
    auto r = onRoomOwner(ctx, **pool, verb == "add" ? "/rooms" : "/rooms/remove", body);
    if (!r && r.error().code() == StatusCode::kFailedPrecondition) {
      return (void)done(ctx, r.error(), "tandemctl chat category add --name " +
                                            (a.category.empty() ? "general" : a.category));
    }
    if (!r) return (void)done(ctx, r.error());
    std::string room = (*r)["room"].get<std::string>() + "@" + service;
    if (verb == "add") {
      bool created = (*r)["created"].get<bool>();
      if (ctx.json) printJson({{"room", room}, {"created", created}, {"server", (*r)["server"]}});
      else std::printf("room %s %s\n", room.c_str(), created ? "created" : "already exists (unchanged)");
    } else {
      if (ctx.json) printJson({{"room", room}, {"removed", true}, {"server", (*r)["server"]}});
      else std::printf("room %s removed; its occupants were told it was destroyed\n", room.c_str());
    }
    ctx.exit_code = kExitOk;
    return;
  }
  auto c = chatDatabase(ctx, *t, **pool, "mgc");
  if (!c) return (void)done(ctx, c.error());
  store::Connection& db = **c;
  std::string sql =
      "SELECT r.name, r.category, r.config::text, r.subject, "
      "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
      "(SELECT count(*) FROM messages m WHERE m.room = r.name), "
      "(SELECT coalesce(json_object_agg(jid, affiliation), '{}')::text FROM affiliations a "
      " WHERE a.room = r.name) FROM rooms r";
  std::vector<std::optional<std::string>> params;
  if (verb == "show") {
    sql += " WHERE r.name = lower($1)";
    params.push_back(a.name);
  } else if (!a.category.empty()) {
    sql += " WHERE r.category = $1";
    params.push_back(a.category);
  }
  auto r = db.exec(sql + " ORDER BY r.name", params);
  if (!r) return (void)done(ctx, r.error());
  if (verb == "show" && r->rows.empty()) {
    return (void)done(ctx, notFound("room `" + a.name + "` does not exist"));
  }
  nlohmann::json out = nlohmann::json::array();
  Table tab({"ROOM", "CATEGORY", "MESSAGES", "MEMBERS ONLY", "CREATED"});
  for (const auto& row : r->rows) {
    nlohmann::json config = nlohmann::json::parse(row[2], nullptr, false);
    nlohmann::json affs = nlohmann::json::parse(row[6], nullptr, false);
    out.push_back({{"room", row[0] + "@" + service}, {"name", row[0]}, {"category", row[1]},
                   {"config", config}, {"subject", row[3]}, {"created_at", row[4]},
                   {"messages", std::stoll(row[5])}, {"affiliations", affs}});
    tab.addRow({row[0] + "@" + service, row[1], row[5],
                config.is_object() && config.value("members_only", false) ? "yes" : "no", row[4]});
  }
  if (ctx.json) {
    printJson(verb == "show" ? out[0] : nlohmann::json{{"pool", service}, {"rooms", out}});
  } else if (verb == "show") {
    const auto& o = out[0];
    std::printf("room:         %s\ncategory:     %s\nsubject:      %s\nmessages:     %lld\n"
                "created:      %s\nconfig:       %s\naffiliations: %s\n",
                o["room"].get<std::string>().c_str(), o["category"].get<std::string>().c_str(),
                o["subject"].get<std::string>().c_str(),
                static_cast<long long>(o["messages"].get<int64_t>()),
                o["created_at"].get<std::string>().c_str(), o["config"].dump().c_str(),
                o["affiliations"].dump().c_str());
  } else {
    std::printf("%s", tab.render().c_str());
  }
  ctx.exit_code = kExitOk;
}

void runComplianceStatus(Context& ctx, const ChatArgs& a) {
  auto t = deployed(ctx);
  if (!t) return (void)done(ctx, t.error());
  auto pool = chatPool(*t, a.pool);
  if (!pool) return (void)done(ctx, pool.error());
  auto c = chatDatabase(ctx, *t, **pool, "mgccomp");
  if (!c) return (void)done(ctx, c.error());
  auto q = (*c)->exec(
      "SELECT (SELECT count(*) FROM queue), coalesce((SELECT to_char(min(queued_at) AT TIME ZONE "
      "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM queue), ''), (SELECT count(*) FROM exports), "
      "(SELECT coalesce(sum(messages), 0) FROM exports), coalesce((SELECT file || ' (' || messages "
      "|| ' messages, ' || to_char(written_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      "|| ')' FROM exports ORDER BY id DESC LIMIT 1), '')");
  if (!q) return (void)done(ctx, q.error());
  const auto& row = q->rows[0];
  // Whether an adapter drains the queue at all: the adapter has no admin endpoint, so it records
  // a heartbeat per export pass in mgccomp.adapter (migration 2, applied by the chat servers and
  // the adapter). Stale for more than 3 intervals + 5 s = not running.
  nlohmann::json adapters = nlohmann::json::array();
  std::string adapter_line = "none has run against this store";
  auto has = (*c)->exec("SELECT to_regclass('adapter') IS NOT NULL");
  if (!has) return (void)done(ctx, has.error());
  if (has->rows[0][0] == "t") {
    auto a = (*c)->exec(
        "SELECT server, to_char(last_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "floor(extract(epoch FROM now() - last_run_at))::bigint, interval_ms, last_outcome "
        "FROM adapter ORDER BY last_run_at DESC");
    if (!a) return (void)done(ctx, a.error());
    std::vector<std::string> parts;
    for (const auto& r : a->rows) {
      int64_t age = std::stoll(r[2]);
      int64_t interval_ms = std::stoll(r[3]);
      bool running = age * 1000 <= 3 * interval_ms + 5000;
      adapters.push_back({{"server", r[0]}, {"last_run_at", r[1]}, {"seconds_ago", age},
                          {"interval_ms", interval_ms}, {"running", running},
                          {"last_outcome", r[4]}});
      parts.push_back(r[0] + (running ? " running" : " NOT RUNNING") + " (last pass " +
                      std::to_string(age) + " s ago: " + r[4] + ")");
    }
    if (!parts.empty()) {
      adapter_line.clear();
      for (size_t i = 0; i < parts.size(); ++i) adapter_line += (i ? "; " : "") + parts[i];
    }
  }
  bool any_running = false;
  for (const auto& a : adapters) any_running = any_running || a["running"].get<bool>();
  if (ctx.json) {
    printJson({{"pool", (*pool)->fqdn}, {"queue_depth", std::stoll(row[0])},
               {"oldest_queued_at", row[1]}, {"exports_total", std::stoll(row[2])},
               {"messages_exported_total", std::stoll(row[3])}, {"last_export", row[4]},
               {"adapters", adapters}, {"adapter_running", any_running},
               {"export_dir", ctx.state_dir + "/compliance/" + (*pool)->fqdn}});
  } else {
    Table tab({"POOL", "QUEUE DEPTH", "OLDEST QUEUED", "EXPORTS", "EXPORTED", "LAST EXPORT"});
    tab.addRow({(*pool)->fqdn, row[0], row[1].empty() ? "-" : row[1], row[2], row[3],
                row[4].empty() ? "-" : row[4]});
    std::printf("%sadapter: %s\n", tab.render().c_str(), adapter_line.c_str());
    if (!any_running && std::stoll(row[0]) > 0) {
      std::printf("warning: %s messages are queued and no compliance adapter is exporting them; "
                  "check `tandemd --role compliance` beside the pool's first active chat server\n",
                  row[0].c_str());
    }
  }
  ctx.exit_code = kExitOk;
}

void registerChatCmdlets() {
  registerCmdlet({"Set-CsPersistentChatState", "chat state set",
                  {{"Identity"}, {"PoolState"}, {"WhatIf", true}, {"Confirm", true}},
                  [](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out = {"chat", "state", "set"};
                    if (auto it = p.find("Identity"); it != p.end())
                      out.insert(out.end(), {"--pool", stripIdentityPrefix(it->second)});
                    if (auto it = p.find("PoolState"); it != p.end())
                      out.insert(out.end(), {"--state", it->second});
                    if (p.count("WhatIf")) out.push_back("--what-if");
                    return out;
                  }});
  registerCmdlet({"Get-CsPersistentChatState", "chat state show", {{"Identity"}},
                  [](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out = {"chat", "state", "show"};
                    if (auto it = p.find("Identity"); it != p.end())
                      out.insert(out.end(), {"--pool", stripIdentityPrefix(it->second)});
                    return out;
                  }});
  registerCmdlet({"Set-CsPersistentChatActiveServer", "chat active-servers set",
                  {{"Identity"}, {"ActiveServers"}, {"WhatIf", true}, {"Confirm", true}},
                  [](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out = {"chat", "active-servers", "set"};
                    if (auto it = p.find("Identity"); it != p.end())
                      out.insert(out.end(), {"--pool", stripIdentityPrefix(it->second)});
                    // @{Replace="a","b"} (or @{Replace=...}) or a plain comma list; @{} clears.
                    std::string v = p.count("ActiveServers") ? p.at("ActiveServers") : "";
                    if (v.rfind("@{", 0) == 0) {
                      auto eq = v.find('=');
                      v = eq == std::string::npos ? "" : v.substr(eq + 1);
                      if (!v.empty() && v.back() == '}') v.pop_back();
                    }
                    out.insert(out.end(), {"--servers", v});
                    if (p.count("WhatIf")) out.push_back("--what-if");
                    return out;
                  }});
  registerCmdlet({"Get-CsPersistentChatActiveServer", "chat active-servers show", {{"Identity"}},
                  [](const std::map<std::string, std::string>& p) -> Result<std::vector<std::string>> {
                    std::vector<std::string> out = {"chat", "active-servers", "show"};
                    if (auto it = p.find("Identity"); it != p.end())
                      out.insert(out.end(), {"--pool", stripIdentityPrefix(it->second)});
                    return out;
                  }});
}

}  // namespace

void registerChatCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ChatArgs>();
  CLI::App* chat = app.add_subcommand("chat", "Persistent chat pools");
  chat->require_subcommand(1);
  auto pool_opt = [&](CLI::App* cmd) {
    cmd->add_option("--pool", a->pool, "Chat pool FQDN (default: the only chat pool)");
    addJsonFlag(cmd, ctx);
  };

  CLI::App* state = chat->add_subcommand("state", "Chat pool state: Normal or FailedOver");
  state->require_subcommand(1);
  auto* s_show = state->add_subcommand("show", "Show the pool state and the store in use");
  pool_opt(s_show);
  s_show->callback([&ctx, a] { runState(ctx, *a, false); });
  auto* s_set = state->add_subcommand("set", "Set the pool state (servers follow within 2 s)");
  pool_opt(s_set);
  s_set->add_option("--state", a->state, "Normal | FailedOver")->required();
  addWhatIfFlag(s_set, a->what_if);
  s_set->callback([&ctx, a] { runState(ctx, *a, true); });

  CLI::App* active = chat->add_subcommand("active-servers", "The pool's active server list");
  active->require_subcommand(1);
  for (const char* verb : {"show", "set", "add", "remove"}) {
    auto* cmd = active->add_subcommand(verb, std::string(verb) == "show"
                                                 ? "Show which servers are active"
                                                 : std::string(verb) + " active servers");
    pool_opt(cmd);
    if (std::string(verb) != "show") {
      cmd->add_option("--servers", a->servers, "Comma-separated server FQDNs (set: empty clears)");
      addWhatIfFlag(cmd, a->what_if);
    }
    std::string v = verb;
    cmd->callback([&ctx, a, v] { runActive(ctx, *a, v); });
  }

  CLI::App* category = chat->add_subcommand("category", "Room categories");
  category->require_subcommand(1);
  for (const char* verb : {"add", "remove", "list"}) {
    auto* cmd = category->add_subcommand(verb, std::string(verb) + " categories");
    pool_opt(cmd);
    std::string v = verb;
    if (v != "list") cmd->add_option("--name", a->name, "Category name")->required();
    if (v == "add") {
      cmd->add_option("--description", a->description, "One line");
      cmd->add_option("--creators", a->creators,
                      "Who may create rooms: bare JIDs, @domain or * (default *)");
      cmd->add_option("--members", a->members, "Who may join rooms: same forms (default *)");
    }
    cmd->callback([&ctx, a, v] { runCategory(ctx, *a, v); });
  }

  CLI::App* room = chat->add_subcommand("room", "Persistent chat rooms");
  room->require_subcommand(1);
  for (const char* verb : {"add", "remove", "list", "show"}) {
    auto* cmd = room->add_subcommand(verb, std::string(verb) + " rooms");
    pool_opt(cmd);
    std::string v = verb;
    if (v != "list") cmd->add_option("--name", a->name, "Room name (its node)")->required();
    if (v == "add" || v == "list") cmd->add_option("--category", a->category, "Category");
    if (v == "add") cmd->add_option("--title", a->description, "Room title");
    if (v == "remove") addYesFlag(cmd, a->yes);
    cmd->callback([&ctx, a, v] { runRoom(ctx, *a, v); });
  }

  CLI::App* compliance = chat->add_subcommand("compliance", "Compliance queue and exports");
  compliance->require_subcommand(1);
  auto* c_status = compliance->add_subcommand("status", "Queue depth and last export");
  pool_opt(c_status);
  c_status->callback([&ctx, a] { runComplianceStatus(ctx, *a); });

  registerChatCmdlets();
}

}  // namespace tandem::ctl
