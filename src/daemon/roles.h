// The roles tandemd can run. Each role's wiring lives in its own role_<name>.cc so that the
// module owners do not edit one shared file. Each returns the process exit code and blocks
// until the role stops (SIGTERM/SIGINT).
#pragma once

#include <signal.h>

#include <string>

namespace tandem::daemon {

struct DaemonOptions {
  std::string role;       // frontend | chat | edge | sqlagent | compliance
  std::string topology;   // the topology file (bootstrap copy; the CMS replica wins later)
  std::string state_dir;  // e.g. /var/lib/tandem
  std::string server;     // --server FQDN (frontend, chat, edge, compliance)
  std::string store;      // --store NAME (sqlagent)
  std::string log_level = "info";
  // sqlagent: seconds the mirror and witness wait for a lost principal before failover, and a
  // principal for a lost mirror before serving exposed or fencing itself. 0 = the agent's
  // default (10 s). The env TANDEM_PARTNER_TIMEOUT_S, when set, still wins (tests, benchmarks).
  double partner_timeout_s = 0;
};

// Blocks SIGTERM and SIGINT in the calling thread and in every thread it starts afterwards, and
// ignores SIGPIPE (a peer closing a socket is an error return, not a death). Construct it first
// in a role's main thread, before any thread starts; wait() then blocks until one of the stop
// signals arrives and returns its number.
class StopSignals {
 public:
  StopSignals();
  int wait() const;

 private:
  sigset_t set_;
};

int runFrontend(const DaemonOptions& options);    // role_frontend.cc
int runChat(const DaemonOptions& options);        // role_chat.cc
int runEdge(const DaemonOptions& options);        // role_edge.cc
int runSqlagent(const DaemonOptions& options);    // role_sqlagent.cc
int runCompliance(const DaemonOptions& options);  // role_compliance.cc

}  // namespace tandem::daemon
