// Running a hadr::Runbook from a tandemctl command: confirmation, journal, progress on stderr,
// the report on stdout (table or --json), exit codes (STYLE.md §9). Used by runbook_cmds.cc
// (chat failover/failback) and db_cmds.cc (db failover).
#pragma once

#include <string>

#include "ctl/cli.h"
#include "hadr/env.h"
#include "hadr/runbook.h"

namespace tandem::ctl {

struct RunbookFlags {
  bool what_if = false;
  bool resume = false;
  bool yes = false;
};

// Asks for confirmation (`question`, unless --what-if or --yes), runs `runbook` with the Env's
// journal store, prints progress lines to stderr (not with --json) and the report to stdout,
// and returns the exit code: 0 done/planned, 1 failed, 3 refused, 4 stopped part-way.
// TANDEM_RUNBOOK_DIE_AFTER_STEP=N makes the process kill -9 itself after step N is journaled
// (fault-injection drills).
int runRunbookCommand(Context& ctx, hadr::Env& env, const hadr::Runbook& runbook,
                      const RunbookFlags& flags, const std::string& question);

}  // namespace tandem::ctl
