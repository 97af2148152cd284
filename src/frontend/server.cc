// FrontendServer: start-up sequence, client listeners, CMS replica wiring and the admin endpoint.
#include "frontend/server.h"

#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include "cms/master.h"
#include "cms/replica.h"
#include "frontend/internal/c2s_session.h"
#include "frontend/internal/components.h"
#include "frontend/internal/core.h"
#include "frontend/internal/links.h"
#include "frontend/internal/proxy.h"
#include "rpc/metrics.h"
#include "rpc/server.h"
#include "xmpp/jid.h"
#include "xmpp/transport.h"

namespace tandem::frontend {

namespace {
std::string isoTime(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace

struct FrontendServer::Impl {
  FrontendConfig config;
  asio::io_context io;
  rpc::Metrics metrics;
  std::unique_ptr<Core> core;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors;
  std::shared_ptr<asio::ssl::context> server_tls;
  std::unique_ptr<rpc::AdminServer> admin;
  std::unique_ptr<cms::Replica> replica;
  std::unique_ptr<cms::MasterHandle> master;  // CMS master candidate + file transfer agent
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  bool stopped = false;

  // Runs `f` on the network thread and waits for its result.
  template <typename F>
  auto onNetwork(F f) -> decltype(f()) {
    std::promise<decltype(f())> p;
    asio::post(io, [&] {
      try {
        p.set_value(f());
      } catch (...) {
        p.set_exception(std::current_exception());
      }
    });
    return p.get_future().get();
  }

  Status listen(int port, bool direct_tls);
  asio::awaitable<void> acceptLoop(asio::ip::tcp::acceptor& a, bool direct_tls);
  void routeAdmin();
  void applySnapshot(const cms::Snapshot& snap);
};

FrontendServer::FrontendServer(FrontendConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
}

FrontendServer::~FrontendServer() { stop(); }

rpc::Metrics& FrontendServer::metrics() { return impl_->metrics; }

Status FrontendServer::Impl::listen(int port, bool direct_tls) {
  asio::error_code ec;
  auto addr = asio::ip::make_address(config.address, ec);
  if (ec) return invalidArgument("server address `" + config.address + "` is not an IP address");
  auto a = std::make_unique<asio::ip::tcp::acceptor>(io);
  asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  a->open(ep.protocol(), ec);
  if (!ec) a->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a->bind(ep, ec);
  if (!ec) a->listen(1024, ec);
  if (ec) {
    return unavailable("cannot listen on " + config.address + ":" + std::to_string(port) + ": " +
                       ec.message());
  }
  core->spawn(acceptLoop(*a, direct_tls), "client acceptor");
  acceptors.push_back(std::move(a));
  return Status::ok();
}

asio::awaitable<void> FrontendServer::Impl::acceptLoop(asio::ip::tcp::acceptor& a,
                                                       bool direct_tls) {
  while (!stopped) {
    asio::error_code ec;
    auto sock = co_await a.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopped || ec == asio::error::operation_aborted) break;
      co_await core->acceptBackoff(ec, "client");
      continue;
    }
    std::make_shared<C2sSession>(*core, std::move(sock), direct_tls, server_tls)->start();
  }
}

void FrontendServer::Impl::applySnapshot(const cms::Snapshot& snap) {
  std::map<std::string, std::vector<std::string>> active;
  for (const auto& [pool, info] : config.chat_pools) active[pool] = snap.activeServers(pool);
  std::map<std::string, std::string> users;
  for (const auto& [key, value] : snap.settings().items()) {
    if (key.rfind("users.", 0) == 0 && value.is_object() && value.contains("pool") &&
        value["pool"].is_string()) {
      users[key.substr(6)] = value["pool"].get<std::string>();
    }
  }
  // frontend.<our pool>.redirect (cms/settings.h); unset or unknown: auto.
  RedirectMode mode = RedirectMode::kAuto;
  const auto& settings = snap.settings();
  std::string key = "frontend." + config.pool_fqdn + ".redirect";
  if (settings.is_object() && settings.contains(key) && settings[key].is_string()) {
    mode = parseRedirectMode(settings[key].get<std::string>()).value_or(RedirectMode::kAuto);
  }
  asio::post(io, [this, active, users, mode] {
    for (const auto& [pool, servers] : active) core->components().setActiveServers(pool, servers);
    core->setCmsDirectory(users);
    if (core->proxy().mode() != mode) {
      spdlog::info("clients of users served elsewhere: {} (frontend.{}.redirect)",
                   redirectModeName(mode), config.pool_fqdn);
    }
    core->proxy().setMode(mode);
  });
}

Status FrontendServer::start() {
  Impl& d = *impl_;
  const FrontendConfig& cfg = d.config;
  d.core = std::make_unique<Core>(d.io, cfg, d.metrics);
  // 1. The pool's rtc database: the store may still be starting, so retry for a while.
  Status st;
  for (int attempt = 0; attempt < 60; ++attempt) {
    st = d.core->store().migrate();
    if (st.isOk() || st.code() != StatusCode::kUnavailable) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!st.isOk()) return st.withContext("preparing rtc of pool `" + cfg.pool_fqdn + "`");
  // 2. Demo users of this pool from the topology (idempotent: existing users are kept).
  for (const auto& u : cfg.demo_users) {
    if (u.password.empty()) continue;
    Status cu = d.core->store().createUser(u.name, u.pool, u.password, true);
    if (!cu.isOk()) return cu.withContext("creating demo users");
  }
  // 3. TLS.
  auto server_tls = xmpp::makeServerTlsContext(cfg.cert_file, cfg.key_file);
  if (!server_tls) return server_tls.error();
  d.server_tls = *server_tls;
  auto client_tls = xmpp::makeClientTlsContext(cfg.ca_file);
  if (!client_tls) return client_tls.error();
  // 4. CMS replica (room routing and user directory follow it).
  cms::ReplicaOptions ro;
  ro.state_dir = cfg.state_dir;
  ro.name = cfg.server_fqdn;
  ro.bootstrap_topology = cfg.topology_file;
  if (auto r = cms::Replica::open(ro)) {
    d.replica = std::move(*r);
  } else {
    spdlog::warn("CMS replica unavailable, using the topology file: {}", r.error().message());
  }
  // 5. Links first, then wait for their first attempts so that ownership is settled.
  d.work.emplace(d.io.get_executor());
  d.thread = std::thread([&d] { d.io.run(); });
  st = d.onNetwork([&] { return d.core->links().start(d.server_tls, *client_tls); });
  if (!st.isOk()) return st;
  for (int i = 0; i < 60 && !d.onNetwork([&] { return d.core->links().settled(); }); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (d.replica) {
    d.applySnapshot(*d.replica->current());
    d.replica->watch([&d](const std::shared_ptr<const cms::Snapshot>& s) { d.applySnapshot(*s); });
  }
  // 6. Component and client ports.
  st = d.onNetwork([&] { return d.core->components().start(); });
  if (!st.isOk()) return st;
  st = d.onNetwork([&] { return d.listen(cfg.c2s_port, false); });
  if (!st.isOk()) return st;
  st = d.onNetwork([&] { return d.listen(cfg.c2s_tls_port, true); });
  if (!st.isOk()) return st;
  // 7. Admin endpoint.
  rpc::ServerOptions ao;
  ao.address = cfg.address;
  ao.port = cfg.admin_port;
  ao.cert_file = cfg.cert_file;
  ao.key_file = cfg.key_file;
  ao.token = cfg.token;
  ao.threads = 4;
  d.admin = std::make_unique<rpc::AdminServer>(ao);
  d.routeAdmin();
  if (d.replica) cms::serveReplica(*d.admin, *d.replica);
  st = d.admin->start();
  if (!st.isOk()) return st;
  // 8. CMS master candidate: only servers of the pool holding the active xds contend for the
  // lease; the others idle and re-check (cms/master.h).
  if (d.replica) {
    auto m = cms::startMaster({.state_dir = cfg.state_dir, .fqdn = cfg.server_fqdn,
                               .replica = d.replica.get()});
    if (!m) return m.error().withContext("starting the CMS master candidate");
    d.master = std::move(*m);
  }
  d.metrics.setGauge("tandem_frontend_sessions", 0, {}, "bound client sessions on this server");
  spdlog::info("front end {} of pool {} is serving {} on {}", cfg.server_fqdn, cfg.pool_fqdn,
               cfg.domain, cfg.address);
  return Status::ok();
}

void FrontendServer::Impl::routeAdmin() {
  admin->route("GET", "/health", [this](const rpc::Request&) {
    return rpc::Response::json({{"ok", true},
                                {"name", config.server_fqdn},
                                {"role", "frontend"},
                                {"site", config.site},
                                {"pool", config.pool_fqdn},
                                {"version", "0.1.0"}});
  });
  admin->route("GET", "/metrics", [this](const rpc::Request&) {
    // The CMS replica gauges every server exports (the same names as admin::Endpoint's).
    if (replica) {
      if (auto snap = replica->current()) {
        metrics.setGauge("tandem_cms_replica_version", static_cast<double>(snap->version().number),
                         {}, "CMS version held by this server's replica (0: bootstrap topology file)");
      }
      metrics.setGauge("tandem_cms_replica_age_seconds", replica->ageSeconds(), {},
                       "Seconds since this server's replica received the version it holds");
    }
    return rpc::Response::text(metrics.render());
  });
  admin->route("GET", "/status", [this](const rpc::Request&) {
    nlohmann::json doc = onNetwork([this] {
      nlohmann::json links = nlohmann::json::object();
      for (const auto& [peer, up] : core->links().peerStates()) links[peer] = up;
      nlohmann::json comps = nlohmann::json::array();
      for (const auto& c : core->components().connections()) {
        comps.push_back({{"chat_pool", c.chat_pool}, {"server", c.server}, {"address", c.remote}});
      }
      // Client connections held here but relayed to the session's owner (proxy.h).
      nlohmann::json relays = nlohmann::json::array();
      for (const auto& [id, w] : core->proxy().relays()) {
        if (auto s = w.lock()) {
          relays.push_back({{"jid", s->relayJid()}, {"owner", s->relayOwner()},
                            {"address", s->remoteAddress()}});
        }
      }
      return nlohmann::json{{"name", config.server_fqdn},
                            {"role", "frontend"},
                            {"pool", config.pool_fqdn},
                            {"site", config.site},
                            {"redirect_mode", redirectModeName(core->proxy().mode())},
                            {"sessions", core->sessionCount()},
                            {"proxied_sessions", core->proxy().proxiedCount()},
                            {"proxied_connections", relays},
                            {"detached_sessions", core->detached.size()},
                            {"healthy_servers", core->healthyServers(config.pool_fqdn)},
                            {"links", links},
                            {"components", comps},
                            {"started_at", isoTime(core->started_at)}};
    });
    return rpc::Response::json(doc);
  });
  admin->route("GET", "/sessions", [this](const rpc::Request& req) {
    std::string user;
    if (auto it = req.params.find("user"); it != req.params.end()) user = it->second;
    nlohmann::json doc = onNetwork([this, user] {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& s : core->allSessions()) {
        if (!user.empty() && s->jid().local != user && s->jid().bare() != user) continue;
        // A proxied session is held here; its client is connected to `proxied_via`.
        list.push_back({{"jid", s->jid().full()},
                        {"server", config.server_fqdn},
                        {"address", s->remoteAddress()},
                        {"proxied_via", s->viaServer()},
                        {"since", isoTime(s->since())},
                        {"available", s->isAvailable()},
                        {"stream_management", !s->smId().empty()},
                        {"detached", s->isDetached()}});
      }
      return nlohmann::json{{"server", config.server_fqdn}, {"sessions", list}};
    });
    return rpc::Response::json(doc);
  });
  // Users of this pool (tandemctl user ...): handlers call the store directly (thread-safe).
  admin->route("GET", "/users", [this](const rpc::Request&) {
    auto users = core->store().listUsers();
    if (!users) return rpc::Response::error(users.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& u : *users) {
      list.push_back({{"name", u.name}, {"pool", u.pool}, {"created_at", u.created_at}});
    }
    return rpc::Response::json({{"pool", config.pool_fqdn}, {"users", list}});
  });
  admin->route("POST", "/users", [this](const rpc::Request& req) {
    auto body = req.json();
    if (!body) return rpc::Response::error(body.error());
    std::string name = body->value("name", "");
    std::string password = body->value("password", "");
    if (!xmpp::isValidUserName(name)) {
      return rpc::Response::error(invalidArgument(
          "user name `" + name + "` is invalid: use 1-64 of a-z 0-9 . _ - starting with a letter or digit"));
    }
    if (password.empty()) return rpc::Response::error(invalidArgument("the password is empty"));
    Status st = core->store().createUser(name, config.pool_fqdn, password);
    if (!st.isOk()) return rpc::Response::error(st);
    return rpc::Response::json({{"name", name}, {"pool", config.pool_fqdn}, {"created", true}});
  });
  admin->route("POST", "/users/password", [this](const rpc::Request& req) {
    auto body = req.json();
    if (!body) return rpc::Response::error(body.error());
    std::string name = body->value("name", "");
    std::string password = body->value("password", "");
    if (password.empty()) return rpc::Response::error(invalidArgument("the password is empty"));
    Status st = core->store().setPassword(name, password);
    if (!st.isOk()) return rpc::Response::error(st);
    return rpc::Response::json({{"name", name}, {"password_changed", true}});
  });
  admin->route("POST", "/users/remove", [this](const rpc::Request& req) {
    auto body = req.json();
    if (!body) return rpc::Response::error(body.error());
    std::string name = body->value("name", "");
    Status st = core->store().removeUser(name);
    if (!st.isOk()) return rpc::Response::error(st);
    return rpc::Response::json({{"name", name}, {"removed", true}});
  });
  // Ends every session of a user on this server (tandemctl calls it on each server of the pool
  // after `user remove`): stream error not-authorized (RFC 6120 §4.9.3.14).
  admin->route("POST", "/sessions/end", [this](const rpc::Request& req) {
    auto body = req.json();
    if (!body) return rpc::Response::error(body.error());
    std::string name = body->value("user", "");
    std::string reason = body->value("reason", "the session was ended by an administrator");
    int ended = onNetwork([this, name, reason] {
      int n = 0;
      for (auto& s : core->allSessions()) {
        if (s->jid().local != name) continue;
        s->closeWithError("not-authorized", reason);
        n++;
      }
      return n;
    });
    return rpc::Response::json({{"user", name}, {"ended_sessions", ended}});
  });
  admin->route("GET", "/pool", [this](const rpc::Request&) {
    nlohmann::json doc = onNetwork([this] {
      nlohmann::json servers = nlohmann::json::array();
      auto healthy = core->healthyServers(config.pool_fqdn);
      for (const auto& s : config.frontend_pools.at(config.pool_fqdn)) {
        bool h = std::find(healthy.begin(), healthy.end(), s.fqdn) != healthy.end();
        servers.push_back({{"fqdn", s.fqdn}, {"address", s.address}, {"healthy", h}});
      }
      return nlohmann::json{{"pool", config.pool_fqdn}, {"seen_by", config.server_fqdn},
                            {"servers", servers}};
    });
    return rpc::Response::json(doc);
  });
}

void FrontendServer::stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  if (d.master) d.master->stop();  // releases the lease so another server takes over at once
  if (d.admin) d.admin->stop();
  if (d.thread.joinable()) {
    asio::post(d.io, [&d] {
      asio::error_code ec;
      for (auto& a : d.acceptors) a->close(ec);
      d.core->links().stop();
      d.core->components().stop();
      for (auto& s : d.core->allSessions()) s->closeWithError("system-shutdown");
    });
    // Give the goodbyes a moment to leave, then stop the loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    d.work.reset();
    d.io.stop();
    d.thread.join();
  }
}

}  // namespace tandem::frontend
