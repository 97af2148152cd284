// The Backup Service's states (the reference system's Get-CsBackupServiceStatus vocabulary),
// derived from what was observed on both stores of a link. Pure functions; thread-safe.
//
// Export state (of pool P's data towards its backup pool Q):
//   NotInitialized  no copy was ever made (no subscription in Q's copy, no slot on P)
//   NonSteadyState  a full copy (resync) is running, or the copy is catching up (lag above the
//                   steady bound)
//   SteadyState     streaming, caught up within the steady bound
//   FinalState      the copy was frozen (the pool was failed over; it is no longer fed)
//   ErrorState      the copy cannot be fed; `export_reason` says why in one sentence
// Import state (of the copy in Q's store): NormalState, or ErrorState with `import_reason`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tandem::backup {

enum class ExportState { kNotInitialized, kSteadyState, kNonSteadyState, kFinalState, kErrorState };
enum class ImportState { kNormalState, kErrorState };
const char* exportStateName(ExportState s);  // "SteadyState", ...
const char* importStateName(ImportState s);  // "NormalState" | "ErrorState"

// What status collected; empty strings / nullopt mean "not known".
struct Observation {
  std::string pool, backup_pool;  // for the sentences
  std::string source_store, target_store;
  std::string source_error;  // P's store could not be read (its error sentence), "" when read
  std::string target_error;  // Q's store could not be read, "" when read
  bool subscription_exists = false;  // in Q's copy database
  bool slot_exists = false;          // on P's writable member
  std::string slot_wal_status;       // pg_replication_slots.wal_status ("lost" = invalidated)
  bool slot_active = false;          // a walsender is using it
  bool worker_running = false;       // Q's apply worker is running
  bool final = false;                // frozen by a pool failover
  bool resync_running = false;       // a full copy started and has not finished
  std::string refusal;               // why automatic resync is refused ("" when it is not)
  std::string last_resync_error;     // the last resync's failure, "" when it succeeded
  std::optional<int64_t> lag_bytes;  // P's WAL position - the slot's confirmed position
  std::optional<double> lag_s;       // seconds the copy is behind
};

// Caught up: at most this much WAL not yet confirmed by the copy, and at most this lag.
constexpr int64_t kSteadyLagBytes = 1 << 20;
constexpr double kSteadyLagSeconds = 1.0;

struct ModuleState {
  ExportState export_state = ExportState::kNotInitialized;
  ImportState import_state = ImportState::kNormalState;
  std::string export_reason;  // one sentence for ErrorState/NonSteadyState, "" otherwise
  std::string import_reason;  // one sentence for ErrorState, "" otherwise
};

// The states for `o` (see the table at the top). The first matching rule wins: P unreadable,
// Q unreadable, final, refusal, resync running, no copy yet, slot lost or missing, apply
// worker stopped, lagging, steady.
ModuleState classify(const Observation& o);

}  // namespace tandem::backup
