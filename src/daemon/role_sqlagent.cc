// Wiring of the sqlagent role (not yet written; see the issue that owns it).
#include <iostream>

#include "daemon/roles.h"

namespace tandem::daemon {

int runSqlagent(const DaemonOptions& /*options*/) {
  std::cerr << "error: the sqlagent role is not built yet\n";
  return 1;
}

}  // namespace tandem::daemon
