// The export/import state rules of state.h.
#include "backup/state.h"

namespace tandem::backup {

const char* exportStateName(ExportState s) {
  switch (s) {
    case ExportState::kNotInitialized:
      return "NotInitialized";
    case ExportState::kSteadyState:
      return "SteadyState";
    case ExportState::kNonSteadyState:
      return "NonSteadyState";
    case ExportState::kFinalState:
      return "FinalState";
    case ExportState::kErrorState:
      return "ErrorState";
  }
  return "ErrorState";
}

const char* importStateName(ImportState s) {
  return s == ImportState::kNormalState ? "NormalState" : "ErrorState";
}

ModuleState classify(const Observation& o) {
  ModuleState m;
  auto exportError = [&](std::string why) {
    m.export_state = ExportState::kErrorState;
    m.export_reason = std::move(why);
  };
  auto importError = [&](std::string why) {
    m.import_state = ImportState::kErrorState;
    m.import_reason = std::move(why);
  };
  const std::string copy = "the copy of pool `" + o.pool + "` in store `" + o.target_store + "`";
  if (!o.target_error.empty()) {
    importError(copy + " cannot be read: " + o.target_error);
  }
  if (!o.source_error.empty()) {
    exportError("store `" + o.source_store + "` of pool `" + o.pool + "` does not answer (" +
                o.source_error + "); the copy keeps what it had and catches up when it returns");
    return m;
  }
  if (!o.target_error.empty()) {
    exportError("pool `" + o.backup_pool + "`'s store `" + o.target_store +
                "` does not answer; pool `" + o.pool + "` keeps its changes for it (slot `" +
                (o.slot_exists ? "kept" : "absent") + "`, at most max_slot_wal_keep_size)");
    return m;
  }
  if (o.final) {
    m.export_state = ExportState::kFinalState;
    return m;
  }
  if (!o.refusal.empty()) {
    exportError(o.refusal);
    return m;
  }
  if (o.resync_running) {
    m.export_state = ExportState::kNonSteadyState;
    m.export_reason = "a full copy into store `" + o.target_store + "` is running";
    return m;
  }
  if (!o.subscription_exists) {
    if (!o.last_resync_error.empty()) {
      exportError("the first full copy failed: " + o.last_resync_error);
    } else {
      m.export_state = ExportState::kNotInitialized;
    }
    return m;
  }
  if (!o.slot_exists || o.slot_wal_status == "lost") {
    exportError(std::string("the replication slot on store `") + o.source_store + "` is " +
                (o.slot_exists ? "lost (the copy fell behind max_slot_wal_keep_size)"
                               : "missing (its store failed over to the mirror or was rebuilt)") +
                "; the Backup Service makes a full copy");
    importError(copy + " no longer receives changes until the full copy");
    return m;
  }
  if (!o.worker_running) {
    importError(copy + " has no running apply worker; see store `" + o.target_store +
                "`'s postgres.log (it retries every 5 s)");
    m.export_state = ExportState::kNonSteadyState;
    m.export_reason = "the copy is not applying changes";
    return m;
  }
  bool lagging =
      (o.lag_bytes && *o.lag_bytes > kSteadyLagBytes) || (o.lag_s && *o.lag_s > kSteadyLagSeconds);
  if (lagging) {
    m.export_state = ExportState::kNonSteadyState;
    m.export_reason = "the copy is catching up";
    return m;
  }
  m.export_state = ExportState::kSteadyState;
  return m;
}

}  // namespace tandem::backup
