// StopSignals: SIGTERM/SIGINT handled by one sigwait() in the role's main thread.
#include <pthread.h>

#include <csignal>

#include "daemon/roles.h"

namespace tandem::daemon {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int StopSignals::wait() const {
  int sig = 0;
  sigwait(&set_, &sig);
  return sig;
}

}  // namespace tandem::daemon
