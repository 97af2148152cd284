// Wiring of the sqlagent role: logging, signals, then sqlagent::runAgent.
#include <signal.h>

#include <atomic>
#include <thread>

#include "common/log.h"
#include "daemon/roles.h"
#include "sqlagent/agent.h"

namespace tandem::daemon {

namespace {
std::atomic<bool> g_stop{false};
void onSignal(int) { g_stop = true; }
}  // namespace

int runSqlagent(const DaemonOptions& options) {
  initLogging({.name = options.store + "/sqlagent",
               .file = options.state_dir + "/stores/" + options.store + "/agent.log",
               .level = options.log_level});
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  sqlagent::AgentOptions o;
  o.topology_file = options.topology;
  o.state_dir = options.state_dir;
  o.store = options.store;
  if (options.partner_timeout_s > 0) {
    o.partner_timeout =
        std::chrono::milliseconds(static_cast<long>(options.partner_timeout_s * 1000));
  }
  return sqlagent::runAgent(o, g_stop);
}

}  // namespace tandem::daemon
