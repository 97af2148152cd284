// The Backup Service loop of a front-end server (service.h).
#include "backup/service.h"

#include <spdlog/spdlog.h>

#include "backup/userdata.h"

namespace tandem::backup {

BackupService::BackupService(Link link, rpc::Metrics& metrics)
    : link_(std::move(link)), metrics_(metrics) {}

BackupService::~BackupService() { stop(); }

void BackupService::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void BackupService::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackupService::run() {
  // Wakes at least every kMaxWake to refresh the metrics and re-read the interval (so a new
  // interval takes effect within that), and reconciles once per interval.
  constexpr auto kMaxWake = std::chrono::seconds(5);
  auto last_reconcile = std::chrono::steady_clock::time_point::min();
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    l.unlock();
    const auto now = std::chrono::steady_clock::now();
    const bool act = last_reconcile == std::chrono::steady_clock::time_point::min() ||
                     now - last_reconcile >= std::chrono::seconds(interval_s_);
    if (act) last_reconcile = now;
    round(act);
    l.lock();
    cv_.wait_for(l, std::min<std::chrono::seconds>(std::chrono::seconds(interval_s_), kMaxWake),
                 [this] { return stopping_; });
  }
}

void BackupService::round(bool reconcile_now) {
  if (reconcile_now) reconcileOnce();
  publishStatus();
}

void BackupService::reconcileOnce() {
  auto did = reconcile(link_);
  std::string problem = did ? "" : did.error().message();
  if (did && !did->empty()) {
    spdlog::info("backup {}: {}", link_.describe(), *did);
    metrics_.addCounter("tandem_backup_full_copies_total", 1, {{"pool", link_.pool}},
                        "full copies of the pool's data made by this server");
  }
  if (problem != last_problem_) {
    if (problem.empty()) {
      spdlog::info("backup {}: the link works again", link_.describe());
    } else {
      spdlog::warn("backup {}: {}", link_.describe(), problem);
    }
    last_problem_ = problem;
  }
}

void BackupService::publishStatus() {
  UserDataStatus s = status(link_);
  interval_s_ = s.sync_interval_s;
  const std::map<std::string, std::string> labels = {{"pool", link_.pool}, {"module", "UserData"}};
  for (auto st :
       {ExportState::kNotInitialized, ExportState::kSteadyState, ExportState::kNonSteadyState,
        ExportState::kFinalState, ExportState::kErrorState}) {
    auto l = labels;
    l["state"] = exportStateName(st);
    metrics_.setGauge("tandem_backup_export_state", s.state.export_state == st ? 1 : 0, l,
                      "1 for the Backup Service export state of the pool's data");
  }
  metrics_.setGauge("tandem_backup_import_ok",
                    s.state.import_state == ImportState::kNormalState ? 1 : 0, labels,
                    "1 when the copy in the backup pool's store is in NormalState");
  if (s.observation.lag_bytes) {
    metrics_.setGauge("tandem_backup_lag_bytes", static_cast<double>(*s.observation.lag_bytes),
                      labels, "WAL of the pool not yet confirmed by its copy");
  }
  if (s.observation.lag_s) {
    metrics_.setGauge("tandem_backup_lag_seconds", *s.observation.lag_s, labels,
                      "seconds the copy is behind the pool");
  }
  if (s.retained_wal_bytes) {
    metrics_.setGauge("tandem_backup_retained_wal_bytes",
                      static_cast<double>(*s.retained_wal_bytes), {{"pool", link_.pool}},
                      "WAL the pool's store keeps for the copy's slot");
  }
}

}  // namespace tandem::backup
