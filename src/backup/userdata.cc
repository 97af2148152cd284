// The UserData module: reconcile, status and sync (userdata.h); verify and repair are in
// verify.cc, the full copy in internal/resync.cc.
#include "backup/userdata.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "backup/internal/resync.h"
#include "backup/internal/sql.h"

namespace tandem::backup {

using internal::Connection;

namespace {

// Session advisory lock of one link in its copy database: one reconcile or full copy at a time
// over every process (front-end servers of Q, tandemctl).
Result<bool> lockLink(Connection& copy, const Link& link, bool wait) {
  const std::string key =
      "hashtext(" + internal::quoteLiteral("tandem_backup:" + link.slotName()) + ")";
  if (!wait) {
    auto r = copy.exec("SELECT pg_try_advisory_lock(" + key + ")");
    if (!r) return fail(r.error());
    return r->rows.at(0)[0] == "t";
  }
  // lock_timeout bounds the wait; the setting ends with the connection.
  if (Status st = copy.execAll("SET lock_timeout = '60s'"); !st) return fail(st);
  auto r = copy.exec("SELECT pg_advisory_lock(" + key + ")");
  if (!r) return fail(r.error().withContext("waiting for the link's lock"));
  return true;
}

struct SlotInfo {
  bool exists = false;
  std::string wal_status;
};

Result<SlotInfo> slotInfo(Connection& source, const Link& link) {
  auto r =
      source.exec("SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1",
                  {link.slotName()});
  if (!r) return fail(r.error());
  SlotInfo s;
  s.exists = !r->rows.empty();
  if (s.exists) s.wal_status = r->rows[0][0];
  return s;
}

// Why a full copy is needed now ("" when it is not).
Result<std::string> resyncReason(Connection& copy, Connection& source, const Link& link,
                                 const std::vector<std::string>& tables) {
  auto has = internal::hasSubscription(copy, link);
  if (!has) return fail(has.error());
  if (!*has) return std::string("no copy yet");
  auto slot = slotInfo(source, link);
  if (!slot) return fail(slot.error());
  if (!slot->exists) {
    return "the replication slot is missing on store `" + link.source_store +
           "` (failed over to its mirror, or rebuilt)";
  }
  if (slot->wal_status == "lost")
    return std::string("the replication slot was lost (max_slot_wal_keep_size)");
  auto fp = internal::schemaFingerprint(source, tables);
  if (!fp) return fail(fp.error());
  auto recorded = internal::getMeta(copy, "schema_fingerprint");
  if (!recorded) return fail(recorded.error());
  if (*fp != *recorded) return std::string("the pool's schema changed");
  return std::string();
}

}  // namespace

Result<std::string> reconcile(const Link& link, bool force, const std::string& reason) {
  auto copy = internal::openCopy(link);
  if (!copy) return fail(copy.error());
  auto locked = lockLink(**copy, link, force);
  if (!locked) return fail(locked.error());
  if (!*locked) return std::string();  // another server of the pool is at it
  auto final = internal::getMeta(**copy, "final");
  if (!final) return fail(final.error());
  if (*final == "true" && !force) return std::string();
  auto source = internal::openSource(link);
  if (!source) return fail(source.error());
  auto tables = internal::copyableTables(**source);
  if (!tables) return fail(tables.error());
  if (Status st = internal::ensurePublication(**source, *tables); !st) return fail(st);
  std::string why = reason;
  if (!force) {
    auto r = resyncReason(**copy, **source, link, *tables);
    if (!r) return fail(r.error());
    if (r->empty()) return std::string();
    why = *r;
  }
  auto sysid = internal::systemIdentifier(**source);
  if (!sysid) return fail(sysid.error());
  auto recorded = internal::getMeta(**copy, "source_system_id");
  if (!recorded) return fail(recorded.error());
  if (!force && !recorded->empty() && *recorded != *sysid) {
    std::string refusal = "store `" + link.source_store + "` of pool `" + link.pool +
                          "` was rebuilt (new system identifier): the copy may hold the only data "
                          "of its users, so it is not overwritten automatically; after failing "
                          "back or to accept the loss run `tandemctl backup repair --pool " +
                          link.pool + " --full`";
    (void)internal::setMeta(**copy, "refusal", refusal);
    return fail(failedPrecondition(refusal));
  }
  if (Status st = internal::resync(link, **copy, why); !st) return fail(st);
  if (force) (void)internal::setMeta(**copy, "final", "");
  return "full copy of pool `" + link.pool + "` into store `" + link.target_store + "` (" + why +
         ")";
}

namespace {

void readSource(const Link& link, UserDataStatus& s) {
  auto source = internal::openSource(link);
  if (!source) {
    s.observation.source_error = source.error().message();
    return;
  }
  auto r = (*source)->exec(
      "SELECT pg_current_wal_lsn()::text,"
      " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
      " s.slot_name IS NOT NULL, coalesce(s.wal_status, ''), coalesce(s.active, false),"
      " coalesce(s.confirmed_flush_lsn::text, ''),"
      " pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,"
      " pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint,"
      " (SELECT extract(epoch FROM coalesce(flush_lag, '0'::interval)) FROM pg_stat_replication"
      "  WHERE application_name = $1 LIMIT 1)"
      " FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = $1",
      {link.slotName()});
  if (!r) {
    s.observation.source_error = r.error().message();
    return;
  }
  const auto& row = r->rows.at(0);
  s.exported_lsn = row[0];
  s.exported_at = row[1];
  s.observation.slot_exists = row[2] == "t";
  s.observation.slot_wal_status = row[3];
  s.observation.slot_active = row[4] == "t";
  s.imported_lsn = row[5];
  if (!row.isNull(6)) s.observation.lag_bytes = std::max<int64_t>(0, std::stoll(row[6]));
  if (!row.isNull(7)) s.retained_wal_bytes = std::stoll(row[7]);
  if (!row.isNull(8)) s.observation.lag_s = std::stod(row[8]);
  // Idle: no walsender lag sample and nothing pending means caught up.
  if (!s.observation.lag_s && s.observation.lag_bytes && s.observation.slot_active &&
      *s.observation.lag_bytes <= kSteadyLagBytes) {
    s.observation.lag_s = 0;
  }
}

void readCopy(const Link& link, UserDataStatus& s) {
  auto copy = internal::openCopyIfExists(link);
  if (!copy) {
    s.observation.target_error = copy.error().message();
    return;
  }
  if (!*copy) return;  // no copy database: NotInitialized
  auto r = (*copy)->exec(
      "SELECT st.pid IS NOT NULL,"
      " coalesce(to_char(st.latest_end_time AT TIME ZONE 'UTC',"
      "  'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '')"
      " FROM pg_subscription s LEFT JOIN pg_stat_subscription st ON st.subid = s.oid"
      " AND st.relid IS NULL WHERE s.subname = $1"
      " AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
      {link.slotName()});
  auto meta = (*copy)->exec("SELECT key, value FROM tandem_backup.meta");
  if (!r || !meta) {
    s.observation.target_error = (!r ? r.error() : meta.error()).message();
    return;
  }
  s.observation.subscription_exists = !r->rows.empty();
  if (s.observation.subscription_exists) {
    s.observation.worker_running = r->rows[0][0] == "t";
    s.imported_at = r->rows[0][1];
  }
  for (const auto& row : meta->rows) {
    const std::string& k = row[0];
    if (k == "final") s.observation.final = row[1] == "true";
    if (k == "resync_running") s.observation.resync_running = !row[1].empty();
    if (k == "refusal") s.observation.refusal = row[1];
    if (k == "last_resync_error") s.observation.last_resync_error = row[1];
    if (k == "sync_interval_s" && !row[1].empty()) s.sync_interval_s = std::stoi(row[1]);
    if (k == "resyncs" && !row[1].empty()) s.resyncs = std::stoll(row[1]);
    if (k == "last_resync_at") s.last_resync_at = row[1];
    if (k == "last_resync_reason") s.last_resync_reason = row[1];
  }
}

}  // namespace

UserDataStatus status(const Link& link) {
  UserDataStatus s;
  s.observation.pool = link.pool;
  s.observation.backup_pool = link.backup_pool;
  s.observation.source_store = link.source_store;
  s.observation.target_store = link.target_store;
  // Both ends at once: a store that does not answer costs its connect timeout only once.
  std::thread t([&] { readCopy(link, s); });
  readSource(link, s);
  t.join();
  s.state = classify(s.observation);
  return s;
}

Status sync(const Link& link, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto source = internal::openSource(link);
  if (!source) return source.error().withContext("backup sync of pool `" + link.pool + "`");
  auto start = (*source)->exec("SELECT pg_current_wal_lsn()::text");
  if (!start) return start.error().withContext("backup sync of pool `" + link.pool + "`");
  const std::string target = start->rows.at(0)[0];
  while (true) {
    auto r = (*source)->exec(
        "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, $1::pg_lsn) >= 0 FROM pg_replication_slots"
        " WHERE slot_name = $2",
        {target, link.slotName()});
    if (r && !r->rows.empty() && r->rows[0][0] == "t") return Status::ok();
    if (!r || r->rows.empty() || std::chrono::steady_clock::now() >= deadline) {
      UserDataStatus s = status(link);
      std::string why = !s.state.export_reason.empty() ? s.state.export_reason
                        : !s.state.import_reason.empty()
                            ? s.state.import_reason
                            : std::string("state ") + exportStateName(s.state.export_state);
      if (s.state.export_state == ExportState::kNotInitialized) {
        return failedPrecondition("pool `" + link.pool + "` has no copy in store `" +
                                  link.target_store + "` yet (NotInitialized)");
      }
      if (!r || r->rows.empty())
        return unavailable("backup sync of pool `" + link.pool + "`: " + why);
      return timeoutError("backup sync of pool `" + link.pool + "`: changes up to " + target +
                          " were not applied in store `" + link.target_store + "` within " +
                          std::to_string(timeout.count() / 1000) + " s: " + why);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace tandem::backup
