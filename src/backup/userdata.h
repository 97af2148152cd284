// The UserData module of the Backup Service: pool P's `rtc` tables copied into database
// `rtc_backup` of its backup pool Q's store by PostgreSQL logical replication
// (docs/backup-service.md):
//   - publication `tandem_backup` in P's `rtc`: every table of schema public that has a primary
//     key, except schema_migrations (a table without one cannot be copied: an UPDATE on a
//     published table without a replica identity would fail on P itself);
//   - slot and subscription `tandem_backup_<Q's store>`, the subscription applying with
//     synchronous_commit=on, so what P's slot counts as copied is on Q's mirror too;
//   - a full copy (resync) is one transaction in the copy: the old tables are replaced by P's
//     schema (pg_dump --schema-only) and data, read at the snapshot exported by creating the new
//     slot, and the subscription starts at exactly that slot's position. Readers of the copy see
//     the old copy or the new one, never a half state, and no change is lost or applied twice.
//   - metadata (schema `tandem_backup` in the copy, not replicated): sync interval, P's system
//     identifier and schema fingerprint at the last full copy, resync history and refusals.
// Every function blocks on both stores (bounded by libpq's connect timeout and the given
// timeouts) and is safe to call from several processes at once: reconcile() and resync()
// serialise on an advisory lock in the copy. Not thread-safe per call; no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backup/digest.h"
#include "backup/link.h"
#include "backup/state.h"
#include "common/status.h"

namespace tandem::backup {

// Default for the sync interval (Set-CsBackupServiceConfiguration -SyncInterval): how often the
// service checks the link and repairs it (full copy after a mirror failover, a lost slot, a
// schema change). Changes themselves stream continuously, whatever the interval.
constexpr int kDefaultSyncIntervalS = 2;

// One round of the service for `link` (the same steps as `backup repair --full` with `force`):
//   1 create the copy database and its metadata in Q's store (idempotent)
//   2 publish P's tables (publication kept equal to the copyable tables)
//   3 full copy when: no subscription yet; P's slot is missing (P's store failed over to its
//     mirror or was rebuilt) or lost (max_slot_wal_keep_size); P's schema changed; or `force`
// Returns what it did in one sentence ("" when the link was healthy). Refuses (FailedPrecondition,
// also recorded for status) an automatic full copy from a P whose system identifier changed
// (P rebuilt: the copy may be the only data of its users) unless `force`; does nothing while the
// copy is frozen (FinalState). Unavailable when a store does not answer; another process
// holding the link's lock makes it return "" at once (or wait up to 60 s with `force`).
Result<std::string> reconcile(const Link& link, bool force = false, const std::string& reason = "");

struct UserDataStatus {
  Observation observation;
  ModuleState state;
  std::string exported_lsn, exported_at;      // P's current WAL position and time
  std::string imported_lsn, imported_at;      // the slot's confirmed position; last feedback time
  std::optional<int64_t> retained_wal_bytes;  // WAL P keeps for the slot (restart_lsn..now)
  int sync_interval_s = kDefaultSyncIntervalS;
  int64_t resyncs = 0;
  std::string last_resync_at, last_resync_reason;
};

// Reads both stores and classifies (state.h). Never fails: what could not be read is in the
// observation's source_error / target_error.
UserDataStatus status(const Link& link);

// Invoke-CsBackupServiceSync: waits until everything committed on P before the call is applied
// in the copy (the slot's confirmed position passes P's WAL position at the start). Timeout
// with the status's reason when it is not applied within `timeout`; FailedPrecondition at once
// when there is no copy or it is frozen.
Status sync(const Link& link, std::chrono::milliseconds timeout);

struct TableCount {
  std::string table;
  int64_t pool_rows = 0, copy_rows = 0;
};
struct VerifyReport {
  std::vector<TableCount> counts;
  std::vector<Difference> differences;  // users whose rows differ in both passes
};

// Debug-CsInterPoolReplication: sync(), compares every copied table per user (row count and
// digest); users that differ are compared again after another sync, and only those still
// different are reported (a change in flight is not a difference). Errors: sync()'s.
Result<VerifyReport> verify(const Link& link, std::chrono::milliseconds timeout);

// Makes `user`'s rows in the copy equal to P's: deletes them in the copy, then rewrites them on
// P in one transaction (delete and insert the same rows), so the corrected rows reach the copy
// through the stream in order with every other change, then sync(). P's rows are unchanged;
// `user` is the localpart (alice). NotFound when neither side has rows of `user`.
Status repairUser(const Link& link, const std::string& user, std::chrono::milliseconds timeout);

// The sync interval in the copy's metadata (default kDefaultSyncIntervalS).
Result<int> syncInterval(const Link& link);
// InvalidArgument outside 1..3600 s. Creates the copy database when missing.
Status setSyncInterval(const Link& link, int seconds);

}  // namespace tandem::backup
