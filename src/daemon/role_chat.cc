// Wiring of the chat role: CMS replica -> admin endpoint -> chat::ChatServer, until SIGTERM.
#include <csignal>
#include <iostream>

#include "admin/endpoint.h"
#include "chat/chat_server.h"
#include "cms/replica.h"
#include "common/log.h"
#include "daemon/roles.h"

namespace tandem::daemon {

int runChat(const DaemonOptions& options) {
  initLogging({options.server + "/chat", "", options.log_level});
  StopSignals stop_signals;  // before any thread starts: only wait() below sees them
  auto fail_with = [&](const Status& st) {
    spdlog::error("chat server {} cannot start: {}", options.server, st.message());
    std::cerr << "error: " << st.message() << "\n";
    return 1;
  };

  auto replica = cms::Replica::open(
      {.state_dir = options.state_dir, .name = options.server, .bootstrap_topology = options.topology});
  if (!replica) return fail_with(replica.error());
  const auto snap = (*replica)->current();
  const topology::Pool* pool = nullptr;
  const auto* me = snap->topology().findServer(options.server, &pool);
  if (me == nullptr || pool == nullptr || pool->role != topology::PoolRole::kChat) {
    return fail_with(notFound("`" + options.server + "` is not a chat server of the topology"));
  }
  auto server = chat::ChatServer::create({.server = options.server, .state_dir = options.state_dir},
                                         **replica);
  if (!server) return fail_with(server.error());
  auto admin = admin::Endpoint::create({.name = options.server, .role = "chat",
                                        .site = me->site.empty() ? pool->site : me->site,
                                        .address = me->address, .port = 8443,
                                        .state_dir = options.state_dir},
                                       replica->get());
  if (!admin) return fail_with(admin.error());
  chat::ChatServer* cs = server->get();
  (*admin)->setStatusProvider([cs] { return nlohmann::json{{"chat", cs->status()}}; });
  (*admin)->setHealthCheck([cs] { return cs->health(); });
  (*admin)->setMetricsRefresher([cs](rpc::Metrics& m) { cs->refreshMetrics(m); });
  // Room administration (tandemctl chat room add|remove): through the service that owns the
  // room, so the live room follows (a removed room's occupants are told it was destroyed).
  auto answer = [](const Result<nlohmann::json>& r) {
    return r ? rpc::Response::json(*r) : rpc::Response::error(r.error());
  };
  (*admin)->server().route("POST", "/rooms", [cs, answer](const rpc::Request& req) {
    auto body = req.json();
    if (!body) return rpc::Response::error(body.error());
    return answer(cs->addRoom(body->value("name", ""), body->value("category", ""),
                              body->value("title", "")));
  });
  (*admin)->server().route("POST", "/rooms/remove", [cs, answer](const rpc::Request& req) {
    auto body = req.json();
    if (!body) return rpc::Response::error(body.error());
    return answer(cs->removeRoom(body->value("name", "")));
  });
  if (Status st = (*server)->start(); !st) return fail_with(st);
  if (Status st = (*admin)->start(); !st) return fail_with(st);
  spdlog::info("chat server {} started", options.server);
  int sig = stop_signals.wait();
  spdlog::info("chat server {} stopping (signal {})", options.server, sig);
  (*admin)->stop();
  (*server)->stop();
  return 0;
}

}  // namespace tandem::daemon
