// BackupService: the loop a front-end server of pool Q runs for the copy of its partner P's user
// data in Q's store (docs/backup-service.md "Who runs it"). Every sync interval (the copy's
// setting, default 2 s; re-read at least every 5 s) it runs reconcile() (first copy, full copy
// after P's mirror failover, a lost slot or a schema change) and publishes the link's state in the
// process's /metrics:
//   tandem_backup_export_state{pool,module,state}  1 for the current state, 0 for the others
//   tandem_backup_import_ok{pool,module}           1 NormalState, 0 ErrorState
//   tandem_backup_lag_bytes{pool,module}           WAL of P not yet confirmed by the copy
//   tandem_backup_lag_seconds{pool,module}         seconds the copy is behind (when known)
//   tandem_backup_retained_wal_bytes{pool}         WAL P keeps for the copy's slot
//   tandem_backup_full_copies_total{pool}          full copies this process made
// Every server of Q runs one; the link's advisory lock lets one act at a time. A store that does
// not answer only delays the next round (a warning is logged once per outage).
// start()/stop() from one controlling thread; the loop runs on its own thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "backup/link.h"
#include "rpc/metrics.h"

namespace tandem::backup {

class BackupService {
 public:
  // `link`: the partner's data into this pool's store (importLinkFor). `metrics` outlives us.
  BackupService(Link link, rpc::Metrics& metrics);
  ~BackupService();  // stops
  BackupService(const BackupService&) = delete;
  BackupService& operator=(const BackupService&) = delete;

  void start();  // returns at once; the first round runs immediately
  void stop();   // wakes the loop and joins it (at most one store round trip). Idempotent.

 private:
  void run();
  void round(bool reconcile_now);
  void reconcileOnce();
  void publishStatus();

  Link link_;
  rpc::Metrics& metrics_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;     // GUARDED_BY(mu_)
  std::string last_problem_;  // loop thread only: to log a problem once, not every round
  int interval_s_ = 2;        // loop thread only
};

}  // namespace tandem::backup
