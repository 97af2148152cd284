// tandemd: one daemon binary, one role per process (DESIGN.md §2).
#include <iostream>

#include <CLI/CLI.hpp>

#include "daemon/roles.h"

int main(int argc, char** argv) {
  using namespace tandem::daemon;
  DaemonOptions o;
  CLI::App app{"tandemd: a Tandem server (one role per process)"};
  app.add_option("--role", o.role, "frontend | chat | edge | sqlagent | compliance")
      ->required()
      ->check(CLI::IsMember({"frontend", "chat", "edge", "sqlagent", "compliance"}));
  app.add_option("--topology", o.topology, "Topology file")->required();
  app.add_option("--state-dir", o.state_dir, "State directory")->default_val("/var/lib/tandem");
  app.add_option("--server", o.server, "This server's FQDN (frontend, chat, edge, compliance)");
  app.add_option("--store", o.store, "The store this agent owns (sqlagent)");
  app.add_option("--partner-timeout", o.partner_timeout_s,
                 "sqlagent: seconds before a lost partner counts as gone (failover, exposed "
                 "principal, fencing); default 10")
      ->check(CLI::PositiveNumber);
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (o.role == "sqlagent" && o.store.empty()) {
    std::cerr << "error: --role sqlagent needs --store NAME\n";
    return 2;
  }
  if (o.role != "sqlagent" && o.server.empty()) {
    std::cerr << "error: --role " << o.role << " needs --server FQDN\n";
    return 2;
  }
  if (o.role == "frontend") return runFrontend(o);
  if (o.role == "chat") return runChat(o);
  if (o.role == "edge") return runEdge(o);
  if (o.role == "sqlagent") return runSqlagent(o);
  return runCompliance(o);
}
