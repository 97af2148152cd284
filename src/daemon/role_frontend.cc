// Wiring of the frontend role (not yet written; see the issue that owns it).
#include <iostream>

#include "daemon/roles.h"

namespace tandem::daemon {

int runFrontend(const DaemonOptions& /*options*/) {
  std::cerr << "error: the frontend role is not built yet\n";
  return 1;
}

}  // namespace tandem::daemon
