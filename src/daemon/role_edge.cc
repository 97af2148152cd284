// Wiring of the edge role (not yet written; see the issue that owns it).
#include <iostream>

#include "daemon/roles.h"

namespace tandem::daemon {

int runEdge(const DaemonOptions& /*options*/) {
  std::cerr << "error: the edge role is not built yet\n";
  return 1;
}

}  // namespace tandem::daemon
