// PgCluster: initdb, our configuration files, pg_ctl, pg_basebackup and pg_rewind.
#include "sqlagent/internal/postgres.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "common/process.h"

namespace tandem::sqlagent {

namespace fs = std::filesystem;

namespace {

// A single-quoted postgresql.conf value.
std::string q(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace

PgCluster::PgCluster(std::string name, std::string address, std::string store_dir,
                     std::string password, bool archive_mode)
    : name_(std::move(name)),
      address_(std::move(address)),
      store_dir_(std::move(store_dir)),
      pgdata_(store_dir_ + "/pgdata"),
      password_(std::move(password)),
      archive_mode_(archive_mode) {}

bool PgCluster::hasData() const { return fs::exists(pgdata_ + "/PG_VERSION"); }

bool PgCluster::isRunning() const {
  auto pid = readFile(pgdata_ + "/postmaster.pid");
  if (!pid) return false;
  int p = std::atoi(pid->c_str());
  return p > 0 && isProcessAlive(p);
}

void PgCluster::chownToPostgres(const std::string& path) const {
  if (::getuid() != 0) return;
  auto ids = lookupUser("postgres");
  if (!ids) return;
  std::error_code ec;
  if (::chown(path.c_str(), ids->uid, ids->gid) != 0) return;
  if (!fs::is_directory(path, ec)) return;
  for (auto it = fs::recursive_directory_iterator(path, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (::lchown(it->path().c_str(), ids->uid, ids->gid) != 0) continue;
  }
}

Result<RunResult> PgCluster::runAsPostgres(const std::string& what,
                                             std::vector<std::string> argv,
                                             std::chrono::seconds timeout) const {
  RunOptions ro;
  ro.user = ::getuid() == 0 ? "postgres" : "";
  ro.timeout = timeout;
  ro.cwd = store_dir_;
  ro.env["PGPASSWORD"] = password_;
  return runChecked("store `" + name_ + "`: " + what, argv, ro);
}

std::string PgCluster::conninfoFor(const std::string& address, bool replication) const {
  std::string s = "host=" + address + " port=5432 user=tandem password=" + password_ +
                  " application_name=" + name_ + " connect_timeout=2";
  if (!replication) s += " dbname=postgres";
  return s;
}

Status PgCluster::initdb() {
  if (hasData()) return failedPrecondition("store `" + name_ + "` already has a cluster in " + pgdata_);
  TANDEM_RETURN_IF_ERROR(makeDirs(store_dir_ + "/run", 0755));
  chownToPostgres(store_dir_);
  auto r = runAsPostgres("initdb", {std::string(kBinDir) + "initdb", "-D", pgdata_, "-U",
                                    "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                                    "--auth-local=peer", "--auth-host=scram-sha-256", "--no-sync"},
                         std::chrono::seconds(120));
  if (!r) return r.error();
  ::sync();  // --no-sync above: one sync is much faster than initdb's fsync per file
  return Status::ok();
}

Status PgCluster::writeConfig(const RoleConfig& rc) {
  const std::string conf =
      "# Written by the Tandem sqlagent for store `" + name_ + "`; edits are overwritten.\n"
      "listen_addresses = " + q(address_) + "\n"
      "port = 5432\n"
      "unix_socket_directories = " + q(store_dir_ + "/run") + "\n"
      "max_connections = 200\n"
      "shared_buffers = 32MB\n"
      // logical: the Backup Service's publication of rtc (src/backup); a superset of replica.
      "wal_level = logical\n"
      "max_wal_senders = 10\n"
      "max_replication_slots = 10\n"
      "wal_keep_size = '512MB'\n"
      // A logical slot whose subscriber (the partner pool's copy) is away keeps WAL only up to
      // this much; past it the slot is lost and the copy resynchronises (docs/backup-service.md).
      "max_slot_wal_keep_size = '1GB'\n"
      "hot_standby = on\n"
      "hot_standby_feedback = on\n"
      "synchronous_commit = on\n"
      "wal_log_hints = on\n"
      "wal_retrieve_retry_interval = '1s'\n"
      "wal_receiver_status_interval = '1s'\n"
      "wal_sender_timeout = '10s'\n"
      "wal_receiver_timeout = '10s'\n"
      "archive_mode = " + std::string(archive_mode_ ? "on" : "off") + "\n"
      "password_encryption = 'scram-sha-256'\n"
      "log_destination = 'stderr'\n"
      "logging_collector = off\n"
      "log_line_prefix = '%m [%p] '\n"
      "log_connections = off\n"
      "datestyle = 'iso, mdy'\n"
      "timezone = 'UTC'\n"
      "include_if_exists = 'tandem_role.conf'\n";
  const std::string hba =
      "# Written by the Tandem sqlagent (docs/architecture.md).\n"
      "local all postgres peer\n"
      "host all tandem 127.0.0.0/8 scram-sha-256\n"
      "host replication tandem 127.0.0.0/8 scram-sha-256\n";
  TANDEM_RETURN_IF_ERROR(writeFileAtomic(pgdata_ + "/postgresql.conf", conf, 0600));
  TANDEM_RETURN_IF_ERROR(writeFileAtomic(pgdata_ + "/pg_hba.conf", hba, 0600));
  TANDEM_RETURN_IF_ERROR(writeFileAtomic(pgdata_ + "/postgresql.auto.conf",
                                         "# cleared by the Tandem sqlagent\n", 0600));
  std::error_code ec;
  if (rc.standby) {
    TANDEM_RETURN_IF_ERROR(writeFileAtomic(pgdata_ + "/standby.signal", "", 0600));
  } else {
    fs::remove(pgdata_ + "/standby.signal", ec);
  }
  fs::remove(pgdata_ + "/recovery.signal", ec);
  TANDEM_RETURN_IF_ERROR(applyRoleConfig(rc));
  chownToPostgres(pgdata_);
  return Status::ok();
}

Status PgCluster::applyRoleConfig(const RoleConfig& rc) {
  std::string s = "# The role-dependent settings of store `" + name_ + "` (Tandem sqlagent).\n";
  s += "primary_conninfo = " +
       q(rc.primary_address.empty() ? "" : conninfoFor(rc.primary_address, true)) + "\n";
  s += "synchronous_standby_names = " +
       q(rc.sync_standby.empty() ? "" : "\"" + rc.sync_standby + "\"") + "\n";
  s += "restore_command = " + q(rc.restore_command) + "\n";
  s += "archive_command = " + q(rc.archive_command) + "\n";
  s += "archive_timeout = " + std::to_string(rc.archive_timeout_s) + "\n";
  TANDEM_RETURN_IF_ERROR(writeFileAtomic(pgdata_ + "/tandem_role.conf", s, 0600));
  chownToPostgres(pgdata_ + "/tandem_role.conf");
  if (!isRunning()) return Status::ok();
  auto r = runAsPostgres("reload", {std::string(kBinDir) + "pg_ctl", "-D", pgdata_, "reload"},
                         std::chrono::seconds(20));
  return r ? Status::ok() : r.error();
}

Status PgCluster::start() {
  if (isRunning()) return Status::ok();
  TANDEM_RETURN_IF_ERROR(makeDirs(store_dir_ + "/run", 0755));
  chownToPostgres(store_dir_ + "/run");
  const std::string log = store_dir_ + "/postgres.log";
  if (!fs::exists(log)) (void)writeFileAtomic(log, "", 0644);
  chownToPostgres(log);
  auto r = runAsPostgres("start", {std::string(kBinDir) + "pg_ctl", "-D", pgdata_, "-l", log,
                                   "-w", "-t", "60", "start"},
                         std::chrono::seconds(75));
  if (!r) return r.error().withContext("see " + log);
  return Status::ok();
}

Status PgCluster::stop(bool immediate) {
  if (!isRunning()) return Status::ok();
  auto r = runAsPostgres("stop", {std::string(kBinDir) + "pg_ctl", "-D", pgdata_, "-m",
                                  immediate ? "immediate" : "fast", "-w", "-t", "30", "stop"},
                         std::chrono::seconds(40));
  if (r || !isRunning()) return Status::ok();
  spdlog::warn("store `{}`: fast stop failed ({}); stopping immediately", name_, r.error().message());
  auto i = runAsPostgres("stop", {std::string(kBinDir) + "pg_ctl", "-D", pgdata_, "-m",
                                  "immediate", "-w", "-t", "30", "stop"},
                         std::chrono::seconds(40));
  return i ? Status::ok() : i.error();
}

Status PgCluster::promote() {
  auto c = connect();
  if (c) {
    auto rec = (*c)->exec("SELECT pg_is_in_recovery()");
    if (rec && rec->rows.at(0)[0] == "f") return Status::ok();
  }
  auto r = runAsPostgres("promote", {std::string(kBinDir) + "pg_ctl", "-D", pgdata_, "-w", "-t",
                                     "60", "promote"},
                         std::chrono::seconds(70));
  return r ? Status::ok() : r.error();
}

Status PgCluster::verifyDataDir(const std::string& dir) const {
  if (!fs::exists(dir + "/PG_VERSION") || !fs::exists(dir + "/global/pg_control")) {
    return failedPrecondition("store `" + name_ + "`: " + dir + " is not a complete cluster (no PG_VERSION or pg_control)");
  }
  auto r = runAsPostgres("pg_controldata " + dir, {std::string(kBinDir) + "pg_controldata", "-D", dir},
                         std::chrono::seconds(30));
  if (!r) return r.error();
  if (r->out.find("Database cluster state:") == std::string::npos) {
    return failedPrecondition("store `" + name_ + "`: pg_controldata cannot read " + dir);
  }
  return Status::ok();
}

Status PgCluster::swapIn(const std::string& dir) {
  if (isRunning()) return failedPrecondition("store `" + name_ + "` must be stopped to swap its data directory");
  std::error_code ec;
  fs::remove_all(pgdata_ + ".old", ec);
  if (fs::exists(pgdata_)) {
    fs::rename(pgdata_, pgdata_ + ".old", ec);
    if (ec) return unavailable("cannot move " + pgdata_ + " aside: " + ec.message());
  }
  fs::rename(dir, pgdata_, ec);
  if (ec) return unavailable("cannot move " + dir + " into " + pgdata_ + ": " + ec.message());
  ::sync();
  return Status::ok();
}

Status PgCluster::restorePrevious() {
  if (!fs::exists(pgdata_ + ".old")) return Status::ok();
  TANDEM_RETURN_IF_ERROR(stop(/*immediate=*/true));
  std::error_code ec;
  fs::remove_all(pgdata_ + ".failed", ec);
  if (fs::exists(pgdata_)) fs::rename(pgdata_, pgdata_ + ".failed", ec);
  fs::rename(pgdata_ + ".old", pgdata_, ec);
  if (ec) return unavailable("cannot move " + pgdata_ + ".old back into " + pgdata_ + ": " + ec.message());
  ::sync();
  return Status::ok();
}

void PgCluster::dropPrevious() {
  std::error_code ec;
  fs::remove_all(pgdata_ + ".old", ec);
}

Status PgCluster::wipe() {
  if (isRunning()) return failedPrecondition("store `" + name_ + "` is running; stop it first");
  std::error_code ec;
  fs::remove_all(pgdata_, ec);
  fs::remove_all(pgdata_ + ".new", ec);
  fs::remove_all(pgdata_ + ".old", ec);
  if (ec) return unavailable("cannot remove " + pgdata_ + ": " + ec.message());
  return Status::ok();
}

Status PgCluster::baseBackupFrom(const std::string& source) {
  TANDEM_RETURN_IF_ERROR(stop());
  std::error_code ec;
  const std::string tmp = pgdata_ + ".new";
  fs::remove_all(tmp, ec);
  TANDEM_RETURN_IF_ERROR(makeDirs(tmp, 0700));
  chownToPostgres(store_dir_);
  auto r = runAsPostgres("base backup from " + source,
                         {std::string(kBinDir) + "pg_basebackup", "-d",
                          conninfoFor(source, true), "-D", tmp, "-X", "stream", "-c", "fast",
                          "--no-sync"},
                         std::chrono::seconds(600));
  if (!r) return r.error();
  fs::remove_all(pgdata_, ec);
  fs::rename(tmp, pgdata_, ec);
  if (ec) return unavailable("cannot move the base backup into " + pgdata_ + ": " + ec.message());
  ::sync();  // --no-sync above: one sync of everything is much faster than fsync per file
  return Status::ok();
}

Status PgCluster::rewindFrom(const std::string& source) {
  if (isRunning()) return failedPrecondition("store `" + name_ + "` must be stopped to rewind");
  auto src = connectTo(source);
  if (!src) return src.error().withContext("cannot rewind from `" + source + "`");
  // Trap (shared/notes/postgresql.md): without a checkpoint on the new primary, pg_rewind reads
  // the old timeline from its control file and may answer "no rewind required".
  if (auto cp = (*src)->exec("CHECKPOINT"); !cp) return cp.error().withContext("CHECKPOINT");
  auto r = runAsPostgres("pg_rewind from " + source,
                         {std::string(kBinDir) + "pg_rewind", "--target-pgdata=" + pgdata_,
                          "--source-server=" + conninfoFor(source, false), "--no-sync"},
                         std::chrono::seconds(300));
  if (!r) return r.error();
  ::sync();
  return Status::ok();
}

Status PgCluster::ensureTandemRole() {
  const std::string sql =
      "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tandem') THEN "
      "CREATE ROLE tandem SUPERUSER REPLICATION LOGIN; END IF; END$$;"
      "ALTER ROLE tandem PASSWORD '" + password_ + "';";
  auto r = runAsPostgres("create role tandem",
                         {std::string(kBinDir) + "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                          "-h", store_dir_ + "/run", "-U", "postgres", "-d", "postgres", "-c", sql},
                         std::chrono::seconds(30));
  return r ? Status::ok() : r.error();
}

namespace {
// A partitioned peer drops packets silently: without these a statement on a kept connection
// waits for TCP's retransmissions (minutes), and the monitor with it (no fencing meanwhile).
// tcp_user_timeout bounds unacknowledged sends; keepalives bound a wait for a reply.
constexpr const char* kBoundedTcp =
    " tcp_user_timeout=3000 keepalives=1 keepalives_idle=3 keepalives_interval=1 keepalives_count=3";
}  // namespace

Result<std::unique_ptr<store::Connection>> PgCluster::connect(const std::string& dbname) const {
  return store::Connection::open(store::connectionString({address_}, dbname, password_, false) + kBoundedTcp);
}

Result<std::unique_ptr<store::Connection>> PgCluster::connectTo(const std::string& address) const {
  return store::Connection::open(store::connectionString({address}, "postgres", password_, false) + kBoundedTcp);
}

}  // namespace tandem::sqlagent
