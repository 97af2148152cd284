// PgCluster: the one PostgreSQL 15 cluster a sqlagent owns (initdb, configuration, start, stop,
// promote, base backup, rewind), run as OS user `postgres` when the agent is root.
//
// Layout (docs/architecture.md): <store_dir>/pgdata, <store_dir>/run (unix socket),
// <store_dir>/postgres.log. Configuration is ours: postgresql.conf (static settings) includes
// tandem_role.conf (what changes with the role: standby, primary_conninfo, synchronous standby,
// archiving, restore_command). Every method blocks (pg_ctl, pg_basebackup, …) within a bounded
// time. Not thread-safe: the Agent serialises calls with its operation mutex.
#pragma once

#include <chrono>
#include <memory>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/status.h"
#include "store/connection.h"

namespace tandem::sqlagent {

// What the role-dependent part of the configuration says.
struct RoleConfig {
  bool standby = false;              // standby.signal present: mirror or restoring store
  std::string primary_address;       // a mirror streams from here ("" = no streaming)
  std::string sync_standby;          // principal: synchronous_standby_names ("" = none)
  std::string restore_command;       // restoring store: pgBackRest archive-get ("" = none)
  std::string archive_command;       // log-shipped primary: pgBackRest archive-push ("" = none)
  int archive_timeout_s = 0;         // log-shipping interval (0 = off)
};

// What a cluster held that the principal it rejoins did not, measured before pg_rewind or a
// base backup discards it (docs/stores.md "Divergence"). LSNs are PostgreSQL's text form.
struct Divergence {
  std::string at_utc;          // when it was measured
  std::string source;          // the store it was compared with
  std::string fork_lsn;        // where the timelines forked ("" when pg_rewind could not tell)
  int fork_timeline = 0;
  std::string end_lsn;         // the last WAL record this cluster held
  long long bytes = 0;         // WAL after the fork
  int transactions = -1;       // commits after the fork (pg_waldump); -1 when not determinable
  std::string kept_in;         // where the divergent WAL files were copied ("" = none)
  std::string note;            // why something is unknown
  // One sentence for logs, /status and `db mirror state`.
  std::string summary() const;
  nlohmann::json toJson() const;
};

class PgCluster {
 public:
  static constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin/";

  PgCluster(std::string name, std::string address, std::string store_dir, std::string password,
            bool archive_mode);

  const std::string& pgdata() const { return pgdata_; }
  const std::string& storeDir() const { return store_dir_; }
  const std::string& address() const { return address_; }
  const std::string& name() const { return name_; }

  // PG_VERSION exists in pgdata.
  bool hasData() const;
  // postmaster.pid names a live postmaster.
  bool isRunning() const;

  // initdb (superuser `postgres`, UTF8, data checksums off, wal_log_hints via our conf), then
  // our configuration. Fails when pgdata already holds a cluster.
  Status initdb();
  // Creates role `tandem` (SUPERUSER, REPLICATION, LOGIN, password = deployment secret) if absent,
  // over the unix socket as `postgres`. Requires: running and writable.
  Status ensureTandemRole();

  // Writes postgresql.conf, pg_hba.conf, tandem_role.conf and standby.signal (present iff
  // standby); clears postgresql.auto.conf (pgBackRest restore and pg_basebackup -R write there).
  Status writeConfig(const RoleConfig& rc);
  // Rewrites only tandem_role.conf and reloads a running server (for reloadable settings:
  // synchronous_standby_names, primary_conninfo, restore_command, archive_command).
  Status applyRoleConfig(const RoleConfig& rc);

  // pg_ctl start -w (up to 60 s). OK when already running.
  Status start();
  // pg_ctl stop, fast mode then immediate on timeout. OK when not running.
  Status stop(bool immediate = false);
  // pg_ctl promote -w. OK when already writable.
  Status promote();

  // Wipes pgdata and copies the cluster at `source_address` (pg_basebackup -X stream) into it,
  // through pgdata.new so that a crash half-way leaves no half cluster in pgdata.
  Status baseBackupFrom(const std::string& source_address);
  // CHECKPOINT on the source (trap: without it pg_rewind may find nothing to rewind), then
  // pg_rewind of our (stopped) pgdata to the source's timeline. Requires: stopped.
  Status rewindFrom(const std::string& source_address);
  // Measures what our (stopped) cluster holds after the point where it forked from the cluster
  // at `source_address` (pg_rewind --dry-run, then pg_waldump on our timeline `timeline`), and
  // copies the WAL files holding it to `keep_dir`. Never fails: what it cannot determine is
  // said in `note`. Requires: stopped. Blocks (bounded).
  Divergence measureDivergence(const std::string& source_address, const std::string& source_name,
                               int timeline, const std::string& keep_dir);
  // A data directory that is complete enough to start: PG_VERSION and pg_control present and
  // readable by pg_controldata. FailedPrecondition naming what is missing.
  Status verifyDataDir(const std::string& dir) const;
  // Replaces pgdata with `dir`, keeping the previous pgdata as pgdata.old (restorePrevious()
  // brings it back; dropPrevious() removes it). Requires: stopped.
  Status swapIn(const std::string& dir);
  Status restorePrevious();
  void dropPrevious();
  // Removes pgdata (and pgdata.new, pgdata.old). Requires: stopped.
  Status wipe();
  // Makes `path` (and its parents inside the store dir) owned by postgres.
  void chownToPostgres(const std::string& path) const;

  // A fresh connection to our own PostgreSQL as `tandem` (any role: standby too).
  Result<std::unique_ptr<store::Connection>> connect(const std::string& dbname = "postgres") const;
  // A connection to another store's PostgreSQL as `tandem`.
  Result<std::unique_ptr<store::Connection>> connectTo(const std::string& address) const;

  // The libpq conninfo to reach `address` for replication/rewind (no dbname for replication).
  std::string conninfoFor(const std::string& address, bool replication) const;

 private:
  Result<RunResult> runAsPostgres(const std::string& what, std::vector<std::string> argv,
                                  std::chrono::seconds timeout) const;
  std::string name_, address_, store_dir_, pgdata_, password_;
  bool archive_mode_;
};

}  // namespace tandem::sqlagent
