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
  // Removes pgdata (and pgdata.new). Requires: stopped.
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
  Result<std::string> runAsPostgres(const std::string& what, std::vector<std::string> argv,
                                    std::chrono::seconds timeout) const;
  std::string name_, address_, store_dir_, pgdata_, password_;
  bool archive_mode_;
};

}  // namespace tandem::sqlagent
