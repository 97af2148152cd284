// Wiring of the chat role (not yet written; see the issue that owns it).
#include <iostream>

#include "daemon/roles.h"

namespace tandem::daemon {

int runChat(const DaemonOptions& /*options*/) {
  std::cerr << "error: the chat role is not built yet\n";
  return 1;
}

}  // namespace tandem::daemon
