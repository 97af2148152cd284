// Wiring of the compliance role: the chat server's replica (read-only) -> compliance adapter.
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "chat/compliance_adapter.h"
#include "cms/replica.h"
#include "common/log.h"
#include "daemon/roles.h"

namespace tandem::daemon {

namespace {
std::atomic<bool> g_stop{false};
void onSignal(int) { g_stop = true; }
}  // namespace

int runCompliance(const DaemonOptions& options) {
  initLogging({options.server + "/compliance", "", options.log_level});
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  auto replica = cms::Replica::open({.state_dir = options.state_dir, .name = options.server,
                                     .bootstrap_topology = options.topology, .follow_only = true});
  if (!replica) {
    std::cerr << "error: " << replica.error().message() << "\n";
    return 1;
  }
  chat::ComplianceAdapterOptions o{.server = options.server, .state_dir = options.state_dir};
  // TANDEM_COMPLIANCE_INTERVAL_MS: a shorter interval for tests and drills.
  if (const char* ms = std::getenv("TANDEM_COMPLIANCE_INTERVAL_MS")) {
    o.interval = std::chrono::milliseconds(std::max(100, std::atoi(ms)));
  }
  Status st = chat::runComplianceAdapter(o, **replica, g_stop);
  if (!st) {
    std::cerr << "error: " << st.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace tandem::daemon
