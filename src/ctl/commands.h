// Every noun of tandemctl, each registered from its own file.
#pragma once

#include "ctl/cli.h"
#include "topology/topology.h"

namespace tandem::ctl {

void registerTopologyCommands(CLI::App& app, Context& ctx);  // topology_cmds.cc
void registerDeployCommands(CLI::App& app, Context& ctx);    // deploy_cmds.cc
void registerDbCommands(CLI::App& app, Context& ctx);        // db_cmds.cc
void registerCmsCommands(CLI::App& app, Context& ctx);       // cms_cmds.cc (cms, config)
void registerUserCommands(CLI::App& app, Context& ctx);      // user_cmds.cc (user, pool)
void registerChatCommands(CLI::App& app, Context& ctx);      // chat_cmds.cc
void registerRunbookCommands(CLI::App& app, Context& ctx);   // runbook_cmds.cc (chat failover/failback; after registerChatCommands)
void registerBackupCommands(CLI::App& app, Context& ctx);    // backup_cmds.cc (backup)
void registerHelpCommands(CLI::App& app, Context& ctx);      // help_cmds.cc (help cmdlets)

// Shared between nouns.
void printTopology(const topology::Topology& t, bool json);  // topology_cmds.cc: tables or JSON
int showPublishedTopology(Context& ctx);  // cms_cmds.cc: `topology show` without FILE

}  // namespace tandem::ctl
