// runAgent: wiring of one sqlagent (topology, secret, admin endpoint, bootstrap, monitor, copy job).
#include "sqlagent/agent.h"

#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "rpc/server.h"
#include "sqlagent/internal/agent.h"
#include "topology/loader.h"

namespace tandem::sqlagent {

namespace {

using rpc::Request;
using rpc::Response;

Response answer(const Result<nlohmann::json>& r) {
  return r ? Response::json(*r) : Response::error(r.error());
}

void routeAll(rpc::AdminServer& s, Agent& a) {
  s.route("GET", "/health", [&](const Request&) { return Response::json(a.health()); });
  s.route("GET", "/status", [&](const Request&) { return Response::json(a.status()); });
  s.route("GET", "/metrics", [&](const Request&) { return Response::text(a.metricsText()); });
  s.route("POST", "/promote", [&](const Request&) { return answer(a.promote()); });
  s.route("POST", "/fence", [&](const Request&) { return answer(a.fence()); });
  auto withBody = [](const Request& req, const char* key, auto&& fn) -> Response {
    auto j = req.json();
    if (!j) return Response::error(j.error());
    if (!j->contains(key) || !(*j)[key].is_string()) {
      return Response::error(invalidArgument(std::string("the request needs \"") + key + "\": \"<store>\""));
    }
    return answer(fn((*j)[key].template get<std::string>()));
  };
  s.route("POST", "/rejoin", [&, withBody](const Request& r) {
    return withBody(r, "principal", [&](const std::string& v) { return a.rejoin(v); });
  });
  s.route("POST", "/mirror/install", [&, withBody](const Request& r) {
    return withBody(r, "mirror", [&](const std::string& v) { return a.installMirror(v); });
  });
  s.route("POST", "/mirror/become", [&, withBody](const Request& r) {
    return withBody(r, "principal", [&](const std::string& v) { return a.becomeMirror(v); });
  });
  s.route("POST", "/mirror/remove", [&](const Request&) { return answer(a.removeMirror()); });
  s.route("POST", "/stop", [&](const Request&) { return answer(a.stopStore()); });
  s.route("POST", "/start", [&](const Request&) { return answer(a.startStore()); });
  s.route("GET", "/connections", [&](const Request&) { return answer(a.connections()); });
  s.route("POST", "/connections/end", [&](const Request& req) {
    auto j = req.json();
    if (!j) return Response::error(j.error());
    return answer(a.endConnections(j->value("all", false), j->value("pid", 0)));
  });
  s.route("GET", "/witness/status", [&](const Request& req) {
    auto it = req.params.find("store");
    if (it == req.params.end()) return Response::error(invalidArgument("give ?store=<name>"));
    return answer(a.witnessStatus(it->second));
  });
  for (const char* what : {"exposed", "vote", "promoted"}) {
    s.route("POST", std::string("/witness/") + what, [&a, what](const Request& req) {
      auto j = req.json();
      if (!j) return Response::error(j.error());
      return answer(a.witnessDecide(what, *j));
    });
  }
  s.route("GET", "/log-shipping/status", [&](const Request&) { return answer(a.logShippingStatus()); });
  s.route("POST", "/log-shipping/copy-now", [&](const Request&) { return answer(a.copyNow()); });
  s.route("POST", "/log-shipping/apply-all", [&](const Request&) { return answer(a.applyAll()); });
  s.route("POST", "/log-shipping/remove", [&](const Request&) { return answer(a.removeLogShipping()); });
  s.route("POST", "/log-shipping/configure", [&, withBody](const Request& r) {
    return withBody(r, "from", [&](const std::string& v) { return a.configureLogShipping(v); });
  });
  s.route("POST", "/recover", [&](const Request&) { return answer(a.recover()); });
  s.route("POST", "/backup/full", [&](const Request& req) {
    auto j = req.json();
    if (!j) return Response::error(j.error());
    return answer(a.fullBackup(j->value("stanza", "")));
  });
  s.route("POST", "/restore", [&](const Request& req) {
    auto j = req.json();
    if (!j) return Response::error(j.error());
    return answer(a.restore(j->value("overwrite", false), j->value("from_stanza", "")));
  });
}

// Sleeps up to `d`, waking early when `stop` is set.
void nap(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!stop && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

int runAgent(const AgentOptions& options, const std::atomic<bool>& stop) {
  AgentOptions o = options;
  if (const char* t = std::getenv("TANDEM_PARTNER_TIMEOUT_S")) {
    double s = std::atof(t);
    if (s > 0) o.partner_timeout = std::chrono::milliseconds(static_cast<long>(s * 1000));
  }
  // Validation is `deploy up`'s job; the agent needs only its own store and its partners, so it
  // runs on any topology that parses (and logs what the validator would refuse).
  auto loaded = topology::checkTopologyFile(o.topology_file);
  for (const auto& pr : loaded.problems) spdlog::warn("sqlagent: topology: {}", pr.toString());
  if (!loaded.parsed) {
    spdlog::error("sqlagent: cannot read topology {}", o.topology_file);
    return 1;
  }
  auto* topo = &loaded.topology;
  const topology::Store* self = topo->findStore(o.store);
  if (self == nullptr) {
    spdlog::error("sqlagent: store `{}` is not in {}", o.store, o.topology_file);
    return 1;
  }
  auto token = readFile(o.state_dir + "/secret/token");
  if (!token) {
    spdlog::error("sqlagent: {} (run `tandemctl deploy up` first)", token.error().message());
    return 1;
  }
  std::string secret = *token;
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == ' ')) secret.pop_back();
  Agent agent(o, *topo, *self, secret);

  rpc::ServerOptions so;
  so.address = self->address;
  so.port = 8443;
  so.cert_file = o.state_dir + "/pki/" + self->name + ".pem";
  so.key_file = o.state_dir + "/pki/" + self->name + ".key";
  so.token = secret;
  rpc::AdminServer server(so);
  routeAll(server, agent);
  if (Status st = server.start(); !st.isOk()) {
    spdlog::error("sqlagent `{}`: admin endpoint: {}", self->name, st.message());
    return 1;
  }
  spdlog::info("sqlagent `{}`: admin endpoint on {}:{}, partner timeout {} ms", self->name,
               self->address, server.port(), o.partner_timeout.count());

  std::thread copier([&] {
    while (!stop) {
      agent.copyJobOnce();
      nap(std::chrono::seconds(1), stop);
    }
  });
  // Bootstrap (may wait for partners), then monitor until stopped; a failed bootstrap is retried.
  while (!stop && !agent.bootstrapped()) {
    if (Status st = agent.bootstrap(stop); !st.isOk()) {
      spdlog::error("sqlagent `{}`: bootstrap: {}; retrying in 5 s", self->name, st.message());
      agent.noteError("bootstrap: " + st.message());
      nap(std::chrono::seconds(5), stop);
    }
  }
  while (!stop) {
    agent.monitorOnce();
    nap(o.monitor_interval, stop);
  }
  copier.join();
  server.stop();
  spdlog::info("sqlagent `{}`: stopped (PostgreSQL keeps running)", self->name);
  return 0;
}

}  // namespace tandem::sqlagent
