// The CMS master and file transfer agent, run inside front-end servers.
//
// Every front-end server calls startMaster() once at start (and keeps the handle until it stops).
// Servers of the pool whose back end holds the ACTIVE xds (the CMS pool, or its backup pool after
// `cms failover`) are candidates: each heartbeats as a file transfer agent, and one of them holds
// the master lease in xds (5 s lease, renewed every second; when the holder dies another
// candidate takes over within about 6 s). The master:
//   - pushes every new version to every server of the topology (PUT /cms/replica on its admin
//     endpoint), re-polls stale replicas and records their reports in xds;
//   - copies new versions to the standby xds (best effort; the lag is in `cms status`);
//   - creates xds and applies migrations when it starts (idempotent).
// Servers of other pools run an idle handle that only re-checks (every few seconds) whether
// their pool became the CMS pool. Nothing here touches the serving of XMPP: when the CMS store
// is down the master just keeps retrying and logs one warning.
// The handle owns one background thread; stop() (or the destructor) joins it. Thread-safe.
//
// Wiring in the frontend role (daemon/role_frontend.cc), next to the replica and admin endpoint
// (admin/endpoint.h), which must serve /cms/replica on the server's address:8443:
//   auto master = cms::startMaster({.state_dir = o.state_dir, .fqdn = o.server,
//                                   .replica = replica->get()});
//   ... run until SIGTERM ...
//   (*master)->stop();   // releases the lease so another server takes over at once
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "cms/replica.h"
#include "common/status.h"
#include "topology/topology.h"

namespace tandem::cms {

struct MasterOptions {
  std::string state_dir;  // secret/token (store password and admin token), pki/ca.pem
  std::string fqdn;       // this front-end server
  // The replica of this server: its topology says which pools and servers exist and which store
  // holds the CMS. Must outlive the handle.
  Replica* replica = nullptr;
  // Lease length; the master renews every lease/5. Trade-off: shorter takes over faster after a
  // crash, longer survives a slow store.
  std::chrono::milliseconds lease{5000};
  // How often the master looks for a new version and stale replicas.
  std::chrono::milliseconds poll_interval{250};
  // Admin port of the servers it pushes to.
  int admin_port = 8443;
};

class MasterHandle {
 public:
  virtual ~MasterHandle() = default;
  // True while this server holds the master lease.
  virtual bool isMaster() const = 0;
  // Stops pushing, releases the lease (so another server takes over at once) and joins.
  virtual void stop() = 0;
  // Stops the thread WITHOUT releasing the lease, as a crash (kill -9) would leave it.
  virtual void crashForTest() = 0;
};

// Starts the candidate loop on its own thread. Never fails for a CMS that is unreachable (it
// retries); fails with InvalidArgument only when options are incomplete (no replica, no fqdn).
Result<std::unique_ptr<MasterHandle>> startMaster(const MasterOptions& options);

}  // namespace tandem::cms
