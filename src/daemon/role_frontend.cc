// Wiring of the frontend role: topology -> FrontendConfig -> FrontendServer, until SIGTERM.
#include <csignal>
#include <iostream>

#include "backup/service.h"
#include "common/log.h"
#include "daemon/roles.h"
#include "frontend/config.h"
#include "frontend/server.h"
#include "topology/loader.h"

namespace tandem::daemon {

int runFrontend(const DaemonOptions& options) {
  initLogging({options.server + "/frontend", "", options.log_level});
  StopSignals stop_signals;  // before any thread starts: only wait() below sees them

  auto topology = topology::loadValidTopology(options.topology);
  if (!topology) {
    std::cerr << "error: " << topology.error().message() << "\n";
    return 1;
  }
  auto config = frontend::configFromTopology(*topology, options.server, options.state_dir);
  if (!config) {
    std::cerr << "error: " << config.error().message() << "\n";
    return 1;
  }
  const std::string config_pool = config->pool_fqdn;
  const std::string config_token = config->token;
  frontend::FrontendServer server(std::move(*config));
  if (Status st = server.start(); !st.isOk()) {
    spdlog::error("front end {} cannot start: {}", options.server, st.message());
    std::cerr << "error: " << st.message() << "\n";
    return 1;
  }
  // The Backup Service: the partner pool's data copied into this pool's store
  // (docs/backup-service.md). Absent when the pool has no backup pool.
  std::unique_ptr<backup::BackupService> backup_service;
  if (auto link = backup::importLinkFor(*topology, config_pool, config_token)) {
    backup_service = std::make_unique<backup::BackupService>(std::move(*link), server.metrics());
    backup_service->start();
  }
  int sig = stop_signals.wait();
  spdlog::info("front end {} stopping (signal {})", options.server, sig);
  if (backup_service) backup_service->stop();
  server.stop();
  return 0;
}

}  // namespace tandem::daemon
