// Wiring of the compliance role (not yet written; see the issue that owns it).
#include <iostream>

#include "daemon/roles.h"

namespace tandem::daemon {

int runCompliance(const DaemonOptions& /*options*/) {
  std::cerr << "error: the compliance role is not built yet\n";
  return 1;
}

}  // namespace tandem::daemon
