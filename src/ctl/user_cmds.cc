// tandemctl user and pool commands: accounts of a front-end pool, sessions, pool status.
//
// They talk to the pool's front-end servers over the admin API (the server writes rtc), trying each server of the pool until one answers, so one server down does not
// stop administration. `user add`/`remove` also record users.<name> in the CMS (best effort: a
// warning when the CMS is unreachable; the servers fall back to the rtc directory).
//   user add NAME --pool P [--password-file F]       (no file: a generated password is printed)
//   user remove NAME [--pool P] --yes
//   user list [--pool P]
//   user set-password NAME [--pool P] --password-file F
//   user sessions [--user U] [--pool P]
//   pool status --pool P
#include <iostream>

#include "cms/client.h"
#include "common/files.h"
#include "ctl/commands.h"
#include "rpc/certs.h"
#include "rpc/client.h"
#include "topology/loader.h"

namespace tandem::ctl {
namespace {

namespace topo = tandem::topology;

Result<topo::Topology> deployedTopology(const Context& ctx) {
  std::string path = ctx.state_dir + "/topology.yaml";
  auto t = topo::loadValidTopology(path);
  if (!t) {
    return fail(t.error().withContext("reading the deployed topology (run `tandemctl deploy up` "
                                      "or pass --state-dir)"));
  }
  return t;
}

Result<const topo::Pool*> frontendPool(const topo::Topology& t, const std::string& pool) {
  const topo::Pool* p = t.findPool(pool);
  if (!p || p->role != topo::PoolRole::kFrontend) {
    return fail(StatusCode::kNotFound, "front-end pool `" + pool + "` is not in the topology; "
                                       "see `tandemctl topology show`");
  }
  return p;
}

// Calls `f` with a client for each server of the pool until one answers (not Unavailable).
Result<nlohmann::json> onPool(const Context& ctx, const topo::Pool& pool,
                              const std::function<Result<nlohmann::json>(rpc::AdminClient&)>& f) {
  auto opts = rpc::clientOptionsFromStateDir(ctx.state_dir);
  if (!opts) return fail(opts.error());
  Status last = unavailable("front-end pool `" + pool.fqdn + "` has no servers");
  for (const auto& s : pool.servers) {
    rpc::AdminClient c(s.address, 8443, *opts);
    auto r = f(c);
    if (r || r.error().code() != StatusCode::kUnavailable) return r;
    last = r.error();
  }
  return fail(last.withContext("no server of pool `" + pool.fqdn + "` answered"));
}

Result<std::string> readPassword(const std::string& file) {
  auto text = readFile(file);
  if (!text) return fail(text.error());
  std::string p = *text;
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
  if (p.empty()) return fail(StatusCode::kInvalidArgument, "password file `" + file + "` is empty");
  return p;
}

void recordInCms(const Context& ctx, const topo::Topology& t, const std::string& name,
                 const nlohmann::json& value) {
  auto cms = cms::Client::connect(t, ctx.state_dir, "tandemctl user");
  Status st = cms ? Status::ok() : cms.error();
  if (cms) {
    auto v = (*cms)->setSetting("users." + name, value);
    if (!v) st = v.error();
  }
  if (!st.isOk()) {
    std::cerr << "warning: user directory in the CMS not updated: " << st.message() << "\n";
  }
}

// The pool holding user `name`: --pool when given, else the first pool that lists it.
Result<const topo::Pool*> poolOfUser(const Context& ctx, const topo::Topology& t,
                                     const std::string& name, const std::string& pool) {
  if (!pool.empty()) return frontendPool(t, pool);
  for (const auto* p : t.poolsWithRole(topo::PoolRole::kFrontend)) {
    auto r = onPool(ctx, *p, [](rpc::AdminClient& c) { return c.get("/users"); });
    if (!r) continue;
    for (const auto& u : (*r)["users"]) {
      if (u.value("name", "") == name) return p;
    }
  }
  return fail(StatusCode::kNotFound, "user `" + name + "` is not in any front-end pool; see "
                                     "`tandemctl user list`");
}

int finish(Context& ctx, const Result<nlohmann::json>& r, const std::function<void()>& print) {
  if (!r) return ctx.exit_code = reportError(r.error());
  if (ctx.json) {
    printJson(*r);
  } else {
    print();
  }
  return ctx.exit_code = kExitOk;
}

CLI::App* noun(CLI::App& app, const std::string& name, const std::string& help) {
  // Other files may add verbs to the same noun (e.g. pool failover): share the subcommand.
  // (CLI11 2.1 has no get_subcommand_no_throw.)
  for (CLI::App* existing : app.get_subcommands({})) {
    if (existing->get_name() == name) return existing;
  }
  CLI::App* n = app.add_subcommand(name, help);
  n->require_subcommand(1);
  return n;
}

}  // namespace

void registerUserCommands(CLI::App& app, Context& ctx) {
  CLI::App* user = noun(app, "user", "Users of front-end pools (accounts, passwords, sessions)");

  // ---- user add --------------------------------------------------------------------------------
  {
    auto* cmd = user->add_subcommand("add", "Create a user in its home pool");
    static std::string name, pool, password_file;
    cmd->add_option("name", name, "User name (the JID's localpart)")->required();
    cmd->add_option("--pool", pool, "Home front-end pool")->required();
    cmd->add_option("--password-file", password_file, "File holding the password");
    addJsonFlag(cmd, ctx);
    cmd->callback([&ctx] {
      auto t = deployedTopology(ctx);
      if (!t) return (void)(ctx.exit_code = reportError(t.error()));
      auto p = frontendPool(*t, pool);
      if (!p) return (void)(ctx.exit_code = reportError(p.error()));
      std::string password;
      bool generated = password_file.empty();
      if (generated) {
        password = rpc::generateToken().substr(0, 20);
      } else {
        auto pw = readPassword(password_file);
        if (!pw) return (void)(ctx.exit_code = reportError(pw.error()));
        password = *pw;
      }
      auto r = onPool(ctx, **p, [&](rpc::AdminClient& c) {
        return c.post("/users", {{"name", name}, {"password", password}});
      });
      if (r) {
        recordInCms(ctx, *t, name, {{"pool", pool}});
        (*r)["jid"] = name + "@" + t->domain;
        if (generated) (*r)["password"] = password;
      }
      finish(ctx, r, [&] {
        std::cout << "created user " << name << "@" << t->domain << " in pool " << pool << "\n";
        if (generated) std::cout << "password: " << password << "\n";
      });
    });
  }

  // ---- user remove -----------------------------------------------------------------------------
  {
    auto* cmd = user->add_subcommand("remove", "Delete a user with its roster and offline messages");
    static std::string name, pool;
    static bool yes = false;
    cmd->add_option("name", name, "User name")->required();
    cmd->add_option("--pool", pool, "Home pool (found when omitted)");
    addYesFlag(cmd, yes);
    addJsonFlag(cmd, ctx);
    cmd->callback([&ctx] {
      auto t = deployedTopology(ctx);
      if (!t) return (void)(ctx.exit_code = reportError(t.error()));
      auto p = poolOfUser(ctx, *t, name, pool);
      if (!p) return (void)(ctx.exit_code = reportError(p.error()));
      if (!confirm("delete user " + name + "@" + t->domain + " of pool " + (*p)->fqdn +
                       " with its roster, offline messages and blocks?",
                   yes)) {
        return (void)(ctx.exit_code = kExitRefused);
      }
      auto r = onPool(ctx, **p, [&](rpc::AdminClient& c) { return c.post("/users/remove", {{"name", name}}); });
      if (r) {
        recordInCms(ctx, *t, name, nullptr);
        // End the user's sessions wherever they are in the pool (best effort: a server that is
        // down has none).
        auto opts = rpc::clientOptionsFromStateDir(ctx.state_dir);
        for (const auto& s : (*p)->servers) {
          if (!opts) break;
          rpc::AdminClient c(s.address, 8443, *opts);
          (void)c.post("/sessions/end", {{"user", name}, {"reason", "the account was removed"}});
        }
      }
      finish(ctx, r, [&] { std::cout << "removed user " << name << "@" << t->domain << "\n"; });
    });
  }

  // ---- user list -------------------------------------------------------------------------------
  {
    auto* cmd = user->add_subcommand("list", "List users, per pool");
    static std::string pool;
    cmd->add_option("--pool", pool, "Only this pool");
    addJsonFlag(cmd, ctx);
    cmd->callback([&ctx] {
      auto t = deployedTopology(ctx);
      if (!t) return (void)(ctx.exit_code = reportError(t.error()));
      nlohmann::json all = nlohmann::json::array();
      for (const auto* p : t->poolsWithRole(topo::PoolRole::kFrontend)) {
        if (!pool.empty() && p->fqdn != pool) continue;
        auto r = onPool(ctx, *p, [](rpc::AdminClient& c) { return c.get("/users"); });
        if (!r) return (void)(ctx.exit_code = reportError(r.error()));
        for (auto u : (*r)["users"]) {
          u["jid"] = u.value("name", "") + "@" + t->domain;
          all.push_back(u);
        }
      }
      Table table({"USER", "POOL", "CREATED"});
      for (const auto& u : all) {
        table.addRow({u.value("jid", ""), u.value("pool", ""), u.value("created_at", "")});
      }
      finish(ctx, nlohmann::json{{"users", all}}, [&] { std::cout << table.render(); });
    });
  }

  // ---- user set-password -----------------------------------------------------------------------
  {
    auto* cmd = user->add_subcommand("set-password", "Replace a user's password");
    static std::string name, pool, password_file;
    cmd->add_option("name", name, "User name")->required();
    cmd->add_option("--pool", pool, "Home pool (found when omitted)");
    cmd->add_option("--password-file", password_file, "File holding the new password")->required();
    addJsonFlag(cmd, ctx);
    cmd->callback([&ctx] {
      auto t = deployedTopology(ctx);
      if (!t) return (void)(ctx.exit_code = reportError(t.error()));
      auto pw = readPassword(password_file);
      if (!pw) return (void)(ctx.exit_code = reportError(pw.error()));
      auto p = poolOfUser(ctx, *t, name, pool);
      if (!p) return (void)(ctx.exit_code = reportError(p.error()));
      auto r = onPool(ctx, **p, [&](rpc::AdminClient& c) {
        return c.post("/users/password", {{"name", name}, {"password", *pw}});
      });
      finish(ctx, r, [&] { std::cout << "changed the password of " << name << "@" << t->domain << "\n"; });
    });
  }

  // ---- user sessions ---------------------------------------------------------------------------
  {
    auto* cmd = user->add_subcommand("sessions", "Signed-in sessions, per front-end server");
    static std::string who, pool;
    cmd->add_option("--user", who, "Only this user (name or bare JID)");
    cmd->add_option("--pool", pool, "Only this pool");
    addJsonFlag(cmd, ctx);
    cmd->callback([&ctx] {
      auto t = deployedTopology(ctx);
      if (!t) return (void)(ctx.exit_code = reportError(t.error()));
      auto opts = rpc::clientOptionsFromStateDir(ctx.state_dir);
      if (!opts) return (void)(ctx.exit_code = reportError(opts.error()));
      nlohmann::json sessions = nlohmann::json::array(), unreachable = nlohmann::json::array();
      for (const auto* p : t->poolsWithRole(topo::PoolRole::kFrontend)) {
        if (!pool.empty() && p->fqdn != pool) continue;
        for (const auto& s : p->servers) {
          rpc::AdminClient c(s.address, 8443, *opts);
          auto r = c.get(who.empty() ? "/sessions" : "/sessions?user=" + who);
          if (!r) {
            unreachable.push_back(s.fqdn);
            continue;
          }
          for (auto& x : (*r)["sessions"]) sessions.push_back(x);
        }
      }
      // SERVER holds the session; VIA is where its client is connected when that is another
      // server of the pool (proxy mode, docs/frontend.md), "-" otherwise.
      Table table({"JID", "SERVER", "VIA", "CLIENT ADDRESS", "SINCE", "AVAILABLE", "SM"});
      for (const auto& s : sessions) {
        std::string via = s.value("proxied_via", "");
        table.addRow({s.value("jid", ""), s.value("server", ""), via.empty() ? "-" : via,
                      s.value("address", ""), s.value("since", ""), s.value("available", false) ? "yes" : "no",
                      s.value("detached", false) ? "detached"
                                                 : (s.value("stream_management", false) ? "yes" : "no")});
      }
      finish(ctx, nlohmann::json{{"sessions", sessions}, {"unreachable_servers", unreachable}}, [&] {
        std::cout << table.render();
        for (const auto& u : unreachable) {
          std::cerr << "warning: server " << u.get<std::string>() << " did not answer\n";
        }
      });
    });
  }

  // ---- pool status -----------------------------------------------------------------------------
  CLI::App* pool_noun = noun(app, "pool", "Front-end pools");
  {
    auto* cmd = pool_noun->add_subcommand("status", "Servers of a pool: health, links, sessions");
    static std::string pool;
    cmd->add_option("--pool", pool, "Front-end pool")->required();
    addJsonFlag(cmd, ctx);
    cmd->callback([&ctx] {
      auto t = deployedTopology(ctx);
      if (!t) return (void)(ctx.exit_code = reportError(t.error()));
      auto p = frontendPool(*t, pool);
      if (!p) return (void)(ctx.exit_code = reportError(p.error()));
      auto opts = rpc::clientOptionsFromStateDir(ctx.state_dir);
      if (!opts) return (void)(ctx.exit_code = reportError(opts.error()));
      nlohmann::json servers = nlohmann::json::array();
      // PROXIED: sessions held here whose client is connected to another server; RELAYED:
      // client connections here relayed to the server that holds their session.
      Table table({"SERVER", "ADDRESS", "HEALTH", "SESSIONS", "PROXIED", "RELAYED", "RING",
                   "COMPONENTS"});
      for (const auto& s : (*p)->servers) {
        rpc::AdminClient c(s.address, 8443, *opts);
        auto st = c.get("/status");
        nlohmann::json row{{"fqdn", s.fqdn}, {"address", s.address}, {"healthy", bool(st)}};
        if (st) {
          row["sessions"] = (*st)["sessions"];
          row["proxied_sessions"] = st->value("proxied_sessions", 0);
          row["proxied_connections"] = st->value("proxied_connections", nlohmann::json::array());
          row["ring"] = (*st)["healthy_servers"];
          row["links"] = (*st)["links"];
          row["components"] = (*st)["components"];
        } else {
          row["error"] = st.error().message();
        }
        std::string ring;
        if (st) {
          for (const auto& r : (*st)["healthy_servers"]) ring += (ring.empty() ? "" : ",") + r.get<std::string>();
        }
        table.addRow({s.fqdn, s.address, st ? "up" : "down",
                      st ? std::to_string((*st)["sessions"].get<int>()) : "-",
                      st ? std::to_string(row["proxied_sessions"].get<int>()) : "-",
                      st ? std::to_string(row["proxied_connections"].size()) : "-", st ? ring : "-",
                      st ? std::to_string((*st)["components"].size()) : "-"});
        servers.push_back(row);
      }
      finish(ctx, nlohmann::json{{"pool", pool}, {"servers", servers}},
             [&] { std::cout << table.render(); });
    });
  }
}

}  // namespace tandem::ctl
