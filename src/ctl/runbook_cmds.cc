// tandemctl runbook commands (not yet written; see the issue that owns them).
#include "ctl/commands.h"

namespace tandem::ctl {

void registerRunbookCommands(CLI::App& /*app*/, Context& /*ctx*/) {}

}  // namespace tandem::ctl
