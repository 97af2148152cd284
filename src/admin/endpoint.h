// admin::Endpoint: the admin endpoint every Tandem process serves (docs/architecture.md).
//
// It owns the process's rpc::AdminServer and rpc::Metrics and serves the common paths:
//   GET /health       {"ok", "name", "role", "site", "version", "cms_version"}
//   GET /status       {"name", "role", "site", "uptime_seconds", "cms_replica": {...}} merged
//                     with the role's own status provider
//   GET /metrics      Prometheus text: the role's metrics plus tandem_cms_replica_version,
//                     tandem_cms_replica_age_seconds and tandem_uptime_seconds
//   GET|PUT|POST /cms/replica   the CMS replica (cms::serveReplica), when a replica is given
// Roles add their own paths on server() before start(). Wiring in a role (daemon/role_*.cc):
//   auto replica = cms::Replica::open({state_dir, fqdn, topology_file});
//   auto admin = admin::Endpoint::create({fqdn, "frontend", site, address, 8443, state_dir},
//                                        replica->get());
//   (*admin)->start();
// Thread-safe after start(); set providers before start().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cms/replica.h"
#include "common/status.h"
#include "rpc/metrics.h"
#include "rpc/server.h"

namespace tandem::admin {

struct EndpointOptions {
  std::string name;     // server FQDN or store name; its certificate is pki/<name>.pem + .key
  std::string role;     // frontend | chat | edge | sqlagent | compliance
  std::string site;
  std::string address;  // address to bind (the server's own address)
  int port = 8443;      // 0 picks a free port (tests)
  std::string state_dir;  // secret/token and pki/ are read from here
  int threads = 8;      // concurrent admin requests (handlers may block)
};

class Endpoint {
 public:
  // Reads the token and checks the certificate files exist; binds nothing yet. `replica` may be
  // null (a process without one); it must outlive the endpoint. Errors: NotFound naming the
  // missing secret or certificate.
  static Result<std::unique_ptr<Endpoint>> create(const EndpointOptions& options,
                                                  cms::Replica* replica);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  rpc::AdminServer& server() { return *server_; }
  rpc::Metrics& metrics() { return metrics_; }

  // Extra fields merged into GET /status (called on an admin worker thread for each request).
  void setStatusProvider(std::function<nlohmann::json()> provider);
  // Health check: /health answers ok=false (HTTP 503) with the sentence when it returns an error.
  void setHealthCheck(std::function<Status()> check);
  // Called before each /metrics render, to refresh gauges that are computed on demand.
  void setMetricsRefresher(std::function<void(rpc::Metrics&)> refresher);

  // Starts serving (rpc::AdminServer::start errors).
  Status start();
  void stop();
  int port() const { return server_->port(); }

 private:
  Endpoint() = default;
  void refreshCommonMetrics();

  EndpointOptions options_;
  cms::Replica* replica_ = nullptr;
  std::unique_ptr<rpc::AdminServer> server_;
  rpc::Metrics metrics_;
  std::function<nlohmann::json()> status_provider_;
  std::function<Status()> health_check_;
  std::function<void(rpc::Metrics&)> metrics_refresher_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace tandem::admin
