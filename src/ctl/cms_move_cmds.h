// tandemctl cms export, import, install-db, move, bootstrap and their cmdlet aliases
// (cms_move_cmds.cc), registered under the `cms` noun by cms_cmds.cc.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "cms/move.h"
#include "common/status.h"
#include "topology/topology.h"
#include "ctl/cli.h"

namespace tandem::ctl {

// Adds the verbs to `cms` and registers the cmdlets.
void registerCmsMoveCommands(CLI::App* cms, Context& ctx);

// The deployed topology (state dir), which says where the CMS stores are (cms_cmds.cc).
Result<topology::Topology> deployedTopology(const Context& ctx);

// Prints a runbook step as `[i/n] name … outcome (s)` on stderr (nothing with --json).
cms::StepProgress stepPrinter(Context& ctx);

// Checks a cmdlet's -…SqlInstanceName: a Tandem store runs one PostgreSQL instance, which the
// runbooks call `rtc` (the store's name is accepted too). InvalidArgument naming the parameter.
Status checkSqlInstanceName(const std::string& param, const std::string& server_fqdn,
                            const std::string& instance);

}  // namespace tandem::ctl
