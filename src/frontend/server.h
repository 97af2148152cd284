// FrontendServer: one front-end server (`tandemd --role frontend`): client ports 5222
// (STARTTLS) and 5223 (direct TLS), internal links on 5270, the component port 5347 and the
// admin endpoint on 8443, over the pool's rtc database.
//
// Admin paths (besides /health, /status, /metrics): GET /sessions (bound sessions),
// GET /pool (this server's view of its pool: servers, health, ring members).
// start() and stop() are called from one controlling thread; the server runs its own network
// thread in between.
#pragma once

#include <memory>

#include "common/status.h"
#include "frontend/config.h"
#include "rpc/metrics.h"

namespace tandem::frontend {

class FrontendServer {
 public:
  explicit FrontendServer(FrontendConfig config);
  ~FrontendServer();  // stops
  FrontendServer(const FrontendServer&) = delete;
  FrontendServer& operator=(const FrontendServer&) = delete;

  // In order: prepares rtc (database, migrations), creates the topology's demo users of this
  // pool that do not exist yet (idempotent), starts internal links, waits up to 3 s for the
  // first round of link attempts (so ownership is settled before clients arrive), then opens
  // the component, client and admin ports. Fails with Unavailable when the store or a port is
  // unavailable, FailedPrecondition when the certificate cannot be loaded. Blocks meanwhile.
  Status start();
  // Closes every port and connection and joins the network thread. Idempotent.
  void stop();
  // The registry served at GET /metrics, for what the daemon runs beside the server (the
  // Backup Service). Lives as long as the server.
  rpc::Metrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::frontend
