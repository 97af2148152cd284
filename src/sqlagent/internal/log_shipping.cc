// Log shipping, agent side (pgBackRest): archiving on the primary, the copy job and restore job
// of the backup store, and the manual steps the chat failover and failback runbooks call.
//
// Design:
// - The share (log_shipping.share) is a pgBackRest repository; stanza = the primary store's name.
//   The primary (and its mirror, once promoted) archives with archive-push, archive_timeout =
//   interval_s.
// - The backup store's copy folder (D/copy/<store>) is itself a pgBackRest repository: the copy
//   job copies new archive files from the share every second (WAL first, archive.info last,
//   each through a temporary name), and the restore job is PostgreSQL's own restore_command =
//   archive-get from the copy folder (wal_retrieve_retry_interval = 1 s).
// - A recovered backup store archives to its own stanza on the same share; failback restores
//   the primary from it (/restore {"from_stanza": "<backup store>"}).
#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "common/process.h"
#include "rpc/client.h"
#include "sqlagent/internal/agent.h"

namespace tandem::sqlagent {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

bool isWalSegmentFile(const std::string& name) {
  if (name.size() < 25 || name[24] != '-') return false;
  for (int i = 0; i < 24; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(name[i]))) return false;
  }
  return true;
}

// The newest WAL segment file under `dir` (name, mtime); empty name when none.
std::pair<std::string, std::string> newestWal(const std::string& dir) {
  std::string best;
  fs::file_time_type best_t{};
  std::error_code ec;
  if (!fs::exists(dir, ec)) return {};
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (!it->is_regular_file(ec) || !isWalSegmentFile(n)) continue;
    if (n.substr(0, 24) > best) {
      best = n.substr(0, 24);
      best_t = it->last_write_time(ec);
    }
  }
  if (best.empty()) return {};
  // file_time_type's epoch differs from system_clock's (GCC 12 has no clock_cast): shift by now.
  auto sys = std::chrono::system_clock::now() +
             std::chrono::duration_cast<std::chrono::system_clock::duration>(
                 best_t - fs::file_time_type::clock::now());
  return {best, isoUtc(sys)};
}

// WAL file name of an LSN ("0/5000060") on timeline `tl`, 16 MiB segments.
std::string walNameOf(const std::string& lsn, int tl) {
  size_t slash = lsn.find('/');
  if (slash == std::string::npos || tl <= 0) return "";
  unsigned long long hi = std::stoull(lsn.substr(0, slash), nullptr, 16);
  unsigned long long lo = std::stoull(lsn.substr(slash + 1), nullptr, 16);
  unsigned long long pos = (hi << 32) | lo;
  unsigned long long seg = pos / (16ull << 20);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08X%08X%08X", tl, static_cast<unsigned>(seg / 256),
                static_cast<unsigned>(seg % 256));
  return buf;
}

// "full backup <label> of `from` (on its current timeline N)" when the newest backup in
// `info_json` (pgbackrest info --output=json of stanza `from`) is a full backup that starts on
// `timeline`, the one the primary writes now, and after the primary's PostgreSQL started
// (`started_epoch`: a timeline number alone could repeat on another branch after a split brain);
// empty otherwise (take a fresh one then).
std::string reusableFullBackup(const std::string& from, int timeline, long long started_epoch,
                               const std::string& info_json) {
  if (timeline <= 0 || started_epoch <= 0) return "";
  try {
    auto j = nlohmann::json::parse(info_json);
    const auto& backups = j.at(0).at("backup");
    if (backups.empty()) return "";
    const auto& newest = backups.back();
    const std::string start = newest.at("archive").at("start").get<std::string>();
    const long long taken = newest.at("timestamp").at("start").get<long long>();
    if (newest.value("type", "") != "full" || timelineOfWalName(start) != timeline ||
        taken < started_epoch) {
      return "";
    }
    return "full backup " + newest.value("label", "") + " of `" + from +
           "` (on its current timeline " + std::to_string(timeline) + ")";
  } catch (const std::exception&) {
    return "";
  }
}

unsigned long long segmentOf(const std::string& wal) {
  if (wal.size() < 24) return 0;
  return std::stoull(wal.substr(8, 8), nullptr, 16) * 256 + std::stoull(wal.substr(16, 8), nullptr, 16);
}

}  // namespace

std::string Agent::pgbackrestConf() const { return storeDir() + "/pgbackrest.conf"; }
std::string Agent::pgbackrestCopyConf() const { return storeDir() + "/pgbackrest-copy.conf"; }
std::string Agent::copyFolder() const { return o_.state_dir + "/copy/" + self_.name; }

std::string Agent::restoreCommand(const std::string& stanza, bool from_copy) const {
  return "pgbackrest --config=" + (from_copy ? pgbackrestCopyConf() : pgbackrestConf()) +
         " --stanza=" + stanza + " --pg1-path=" + pg_->pgdata() + " archive-get %f \"%p\"";
}

Status Agent::writePgbackrestConfs(const std::string& share) {
  auto conf = [&](const std::string& repo) {
    return "# Written by the Tandem sqlagent for store `" + self_.name + "`.\n[global]\n"
           "repo1-path=" + repo + "\n"
           "repo1-retention-full=2\n"
           "lock-path=" + storeDir() + "/pgbackrest/lock\n"
           "log-path=" + storeDir() + "/pgbackrest/log\n"
           "log-level-console=warn\nlog-level-stderr=warn\nlog-level-file=off\n"
           // Failback is chat downtime, and its full backups and restores are most of it:
           // lz4 costs a fraction of gz's CPU (WAL segments padded by archive_timeout still
           // shrink to a few KiB), and two processes copy and compress files side by side.
           "start-fast=y\narchive-timeout=60\ncompress-type=lz4\nprocess-max=2\n";
  };
  TANDEM_RETURN_IF_ERROR(makeDirs(share, 0755));
  TANDEM_RETURN_IF_ERROR(makeDirs(storeDir() + "/pgbackrest/lock", 0755));
  TANDEM_RETURN_IF_ERROR(makeDirs(storeDir() + "/pgbackrest/log", 0755));
  TANDEM_RETURN_IF_ERROR(writeFileAtomic(pgbackrestConf(), conf(share), 0644));
  if (backupSourceOf(self_.name)) {
    TANDEM_RETURN_IF_ERROR(makeDirs(copyFolder(), 0755));
    TANDEM_RETURN_IF_ERROR(writeFileAtomic(pgbackrestCopyConf(), conf(copyFolder()), 0644));
    pg_->chownToPostgres(copyFolder());
  }
  // Only the share's own directory: it may be large, and everything below is written by
  // pgBackRest running as postgres already.
  auto ids = lookupUser("postgres");
  if (ids && ::chown(share.c_str(), ids->uid, ids->gid) != 0) {
    spdlog::warn("store `{}`: cannot give {} to postgres", self_.name, share);
  }
  pg_->chownToPostgres(storeDir() + "/pgbackrest");
  return Status::ok();
}

Result<std::string> Agent::pgbackrest(const std::string& conf, const std::string& stanza,
                                      std::vector<std::string> args, std::chrono::seconds timeout) {
  std::vector<std::string> argv = {"pgbackrest", "--config=" + conf, "--stanza=" + stanza};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions ro;
  ro.user = ::getuid() == 0 ? "postgres" : "";
  ro.timeout = timeout;
  ro.cwd = storeDir();
  auto r = runChecked("store `" + self_.name + "`: pgBackRest " + args.back(), argv, ro);
  if (!r) return fail(r.error());
  return r->out;
}

// stanza-create (idempotent) and, when asked, a first full backup.
Status Agent::setUpArchiving(const std::string& stanza, bool full_backup) {
  std::vector<std::string> pgopts = {"--pg1-path=" + pg_->pgdata(), "--pg1-socket-path=" + storeDir() + "/run",
                                     "--pg1-port=5432", "--pg1-user=postgres"};
  auto sc = pgopts;
  sc.push_back("stanza-create");
  auto c = pgbackrest(pgbackrestConf(), stanza, sc, std::chrono::seconds(120));
  if (!c) return c.error();
  if (!full_backup) return Status::ok();
  auto b = pgopts;
  b.push_back("--type=full");
  b.push_back("backup");
  auto r = pgbackrest(pgbackrestConf(), stanza, b, std::chrono::seconds(600));
  if (!r) return r.error();
  spdlog::info("store `{}`: full backup of stanza `{}` is on the share", self_.name, stanza);
  return Status::ok();
}

// Waits for a full backup of `from` on the share, then restores it into pgdata as a standby.
Status Agent::seedBackupStore(const std::string& from, const std::atomic<bool>* stop) {
  auto deadline = Clock::now() + std::chrono::minutes(stop ? 60 * 24 : 3);
  for (int i = 0;; ++i) {
    auto info = pgbackrest(pgbackrestConf(), from, {"--output=json", "info"}, std::chrono::seconds(60));
    if (info) {
      try {
        auto j = nlohmann::json::parse(*info);
        if (!j.empty() && !j[0].value("backup", nlohmann::json::array()).empty()) break;
      } catch (const std::exception&) {
      }
    }
    if ((stop && *stop) || Clock::now() > deadline) {
      return unavailable("no full backup of `" + from + "` appeared on the share " + shareDir(from));
    }
    if (i % 30 == 0) spdlog::info("store `{}`: waiting for a full backup of `{}` on the share", self_.name, from);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  TANDEM_RETURN_IF_ERROR(pg_->stop());
  TANDEM_RETURN_IF_ERROR(pg_->wipe());
  const std::string tmp = pg_->pgdata() + ".new";
  TANDEM_RETURN_IF_ERROR(makeDirs(tmp, 0700));
  pg_->chownToPostgres(tmp);
  auto r = pgbackrest(pgbackrestConf(), from, {"--pg1-path=" + tmp, "--type=standby", "restore"},
                      std::chrono::seconds(900));
  if (!r) return r.error();
  std::error_code ec;
  fs::rename(tmp, pg_->pgdata(), ec);
  if (ec) return unavailable("cannot move the restored cluster into " + pg_->pgdata() + ": " + ec.message());
  spdlog::info("store `{}`: restored the latest full backup of `{}`", self_.name, from);
  if (auto n = copyNewLogs(nullptr); !n) spdlog::warn("store `{}`: copy job: {}", self_.name, n.error().message());
  return Status::ok();
}

// ---- the copy job ---------------------------------------------------------------------------------

Result<int> Agent::copyNewLogs(std::string* last) {
  std::lock_guard lock(copy_mu_);
  Persisted p = persisted();
  if (p.ls_from.empty()) return fail(failedPrecondition("store `" + self_.name + "` is not a backup store"));
  const std::string share = shareDir(p.ls_from);
  const std::string src_root = share + "/archive/" + p.ls_from;
  const std::string dst_root = copyFolder() + "/archive/" + p.ls_from;
  std::error_code ec;
  if (!fs::exists(src_root, ec)) return 0;
  std::vector<fs::path> wal, info;
  for (auto it = fs::recursive_directory_iterator(src_root, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string n = it->path().filename().string();
    if (n.find(".tmp") != std::string::npos) continue;  // pgBackRest still writing it
    (n.rfind("archive.info", 0) == 0 ? info : wal).push_back(it->path());
  }
  auto ids = lookupUser("postgres");
  int copied = 0;
  auto copyOne = [&](const fs::path& src, bool always) -> Status {
    fs::path dst = fs::path(dst_root) / fs::relative(src, src_root);
    std::error_code e;
    if (!always && fs::exists(dst, e) && fs::file_size(dst, e) == fs::file_size(src, e)) return Status::ok();
    if (always && fs::exists(dst, e)) {
      auto a = readFile(src.string()), b = readFile(dst.string());
      if (a && b && *a == *b) return Status::ok();
    }
    fs::create_directories(dst.parent_path(), e);
    auto data = readFile(src.string());
    if (!data) return data.error();
    TANDEM_RETURN_IF_ERROR(writeFileAtomic(dst.string(), *data, 0644));
    if (ids) {
      if (::chown(dst.c_str(), ids->uid, ids->gid) != 0) {}
      if (::chown(dst.parent_path().c_str(), ids->uid, ids->gid) != 0) {}
    }
    ++copied;
    return Status::ok();
  };
  std::sort(wal.begin(), wal.end());
  for (const auto& f : wal) SQLAGENT_TRY(copyOne(f, false));
  for (const auto& f : info) SQLAGENT_TRY(copyOne(f, true));  // last: names what is there
  if (last) *last = newestWal(dst_root).first;
  return copied;
}

void Agent::copyJobOnce() {
  Persisted p = persisted();
  // Also during bootstrap: a freshly restored standby needs the logs after its backup to reach
  // a consistent state (and pg_ctl start waits for that).
  if (p.role != kBackupRestoring || p.ls_removed || p.ls_from.empty()) return;
  auto r = copyNewLogs(nullptr);
  if (!r) spdlog::warn("store `{}`: copy job: {}", self_.name, r.error().message());
}

// ---- endpoints ------------------------------------------------------------------------------------

Result<nlohmann::json> Agent::logShippingStatus() {
  Persisted p = persisted();
  std::string stanza = p.role == kBackupRestoring || !p.ls_from.empty() ? p.ls_from : archiveStanza();
  if (stanza.empty()) return fail(failedPrecondition("store `" + self_.name + "` takes no part in log shipping"));
  std::string src = p.ls_from.empty() ? stanza : p.ls_from;
  auto shared = newestWal(shareDir(src) + "/archive/" + stanza);
  nlohmann::json j = {{"store", self_.name}, {"role", p.role}, {"stanza", stanza},
                      {"share", shareDir(src)}, {"last_backed_up", shared.first},
                      {"last_backed_up_time", shared.second}};
  if (backupSourceOf(self_.name)) {
    auto copied = newestWal(copyFolder() + "/archive/" + stanza);
    j["copy_folder"] = copyFolder();
    j["last_copied"] = copied.first;
    j["last_copied_time"] = copied.second;
    j["copy_job"] = p.role == kBackupRestoring && !p.ls_removed;
    j["restore_job"] = p.role == kBackupRestoring && !p.ls_removed;
    if (auto c = pg_->connect()) {
      auto r = (*c)->exec(
          "SELECT coalesce(pg_last_wal_replay_lsn()::text, ''), coalesce((SELECT timeline_id FROM pg_control_checkpoint()), 0),"
          " coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), ''),"
          " coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0), pg_is_in_recovery()");
      if (r && r->rows[0][4] == "t") {
        int tl = std::max(std::atoi(r->rows[0][1].c_str()), timelineOfWalName(copied.first));
        j["last_restored"] = r->rows[0][0].empty() ? "" : walNameOf(r->rows[0][0], tl);
        j["last_restored_lsn"] = r->rows[0][0];
        j["last_restored_time"] = r->rows[0][2];
        j["lag_seconds"] = std::atof(r->rows[0][3].c_str());
      }
    }
  }
  return j;
}

Result<nlohmann::json> Agent::copyNow() {
  std::string last;
  auto n = copyNewLogs(&last);
  if (!n) return fail(n.error());
  return nlohmann::json{{"ok", true}, {"copied", *n}, {"last_copied", last},
                        {"outcome", "copied " + std::to_string(*n) + " log backup file(s) to the copy folder of `" + self_.name + "` (last " + (last.empty() ? "none" : last) + ")"}};
}

Result<nlohmann::json> Agent::applyAll() {
  std::lock_guard op(op_mu_);
  Persisted p = persisted();
  if (p.role != kBackupRestoring) {
    return fail(failedPrecondition("store `" + self_.name + "` is " + p.role + ", not a restoring backup store"));
  }
  std::string last;
  auto n = copyNewLogs(&last);
  if (!n) return fail(n.error());
  // Apply with the restore job on, whatever its configured state, then put it back.
  RoleConfig rc = roleConfig(p);
  rc.restore_command = restoreCommand(p.ls_from, true);
  SQLAGENT_TRY(pg_->applyRoleConfig(rc));
  SQLAGENT_TRY(pg_->start());
  const unsigned long long target = segmentOf(last);
  auto deadline = Clock::now() + std::chrono::seconds(180);
  std::string lsn, prev, ts;
  int stable = 0;
  while (Clock::now() < deadline) {
    auto c = pg_->connect();
    if (c) {
      auto r = (*c)->exec("SELECT coalesce(pg_last_wal_replay_lsn()::text, ''), coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '')");
      if (r) {
        lsn = r->rows[0][0];
        ts = r->rows[0][1];
      }
    }
    bool reached = !lsn.empty() && (last.empty() || segmentOf(walNameOf(lsn, 1)) >= target);
    stable = (reached && lsn == prev) ? stable + 1 : 0;
    if (stable >= 3) break;  // ~1.5 s without progress after reaching the last file
    prev = lsn;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (stable < 3) return fail(timeoutError("store `" + self_.name + "` did not replay up to " + last + " within 180 s (at " + lsn + ")"));
  if (p.ls_removed) SQLAGENT_TRY(pg_->applyRoleConfig(roleConfig(p)));
  return nlohmann::json{{"ok", true}, {"last_applied", last}, {"last_applied_lsn", lsn},
                        {"last_commit_time", ts},
                        {"outcome", "applied every copied log backup to `" + self_.name + "` (last " + (last.empty() ? "none" : last) + ", last commit replayed " + (ts.empty() ? "unknown" : ts) + ")"}};
}

Result<nlohmann::json> Agent::removeLogShipping() {
  std::lock_guard op(op_mu_);
  Persisted p = persisted();
  if (p.role != kBackupRestoring) return fail(failedPrecondition("store `" + self_.name + "` is " + p.role + ", not a restoring backup store"));
  p.ls_removed = true;
  SQLAGENT_TRY(persist(p));
  SQLAGENT_TRY(pg_->applyRoleConfig(roleConfig(p)));
  return nlohmann::json{{"ok", true}, {"outcome", "stopped the copy and restore jobs of `" + self_.name + "` (it stays restoring)"}};
}

Result<nlohmann::json> Agent::configureLogShipping(const std::string& from) {
  std::lock_guard op(op_mu_);
  const topology::Store* src = topo_.findStore(from);
  if (src == nullptr || !src->log_shipping) {
    return fail(invalidArgument("store `" + from + "` is not log-shipped in the topology"));
  }
  Persisted p = persisted();
  if ((p.role == kPrincipal || p.role == kStandalone) && pg_->isRunning()) {
    return fail(failedPrecondition("store `" + self_.name + "` is a writable " + p.role + "; stop it (or fail back) before reseeding it as a backup store"));
  }
  SQLAGENT_TRY(writePgbackrestConfs(shareDir(from)));
  // The reseed needs a full backup on the primary's current timeline: an older one may predate
  // a failback restore, whose new timeline branches from WAL that only the backup store's own
  // stanza holds. Reuse the newest one when it is on that timeline (the failback runbook has just
  // taken it); otherwise ask the primary for a fresh one.
  std::string seed;
  if (auto c = pg_->connectTo(src->address)) {
    auto tl = (*c)->exec("SELECT CASE WHEN pg_is_in_recovery() THEN 0 ELSE"
                         " ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,"
                         " extract(epoch FROM pg_postmaster_start_time())::bigint");
    auto info = pgbackrest(pgbackrestConf(), from, {"--output=json", "info"}, std::chrono::seconds(60));
    if (tl && !tl->rows.empty() && info) {
      seed = reusableFullBackup(from, std::atoi(tl->rows[0][0].c_str()),
                                std::atoll(tl->rows[0][1].c_str()), *info);
    }
  }
  if (seed.empty()) {
    auto opts = rpc::clientOptionsFromStateDir(o_.state_dir);
    if (!opts) return fail(opts.error());
    opts->timeout = std::chrono::minutes(10);
    auto b = rpc::AdminClient(src->address, 8443, *opts).post("/backup/full", nlohmann::json::object());
    if (!b) return fail(b.error().withContext("cannot take a fresh full backup of `" + from + "` to reseed `" + self_.name + "`"));
    seed = "fresh full backup " + b->value("label", std::string()) + " of `" + from + "`";
  }
  std::error_code ec;
  fs::remove_all(copyFolder() + "/archive", ec);
  p.role = kBackupRestoring;
  p.ls_from = from;
  p.ls_removed = false;
  p.synchronous = false;
  SQLAGENT_TRY(persist(p));
  SQLAGENT_TRY(seedBackupStore(from, nullptr));
  SQLAGENT_TRY(pg_->writeConfig(roleConfig(p)));
  SQLAGENT_TRY(pg_->start());
  return nlohmann::json{{"ok", true}, {"outcome", "reseeded backup store `" + self_.name + "` from the " + seed + "; it restores from the share"}};
}

Result<nlohmann::json> Agent::recover() {
  std::lock_guard op(op_mu_);
  Persisted p = persisted();
  if (p.role == kPrincipal || p.role == kStandalone) {
    return nlohmann::json{{"ok", true}, {"outcome", "store `" + self_.name + "` was already writable"}};
  }
  if (p.role != kBackupRestoring) return fail(failedPrecondition("store `" + self_.name + "` is " + p.role + ", not a restoring backup store"));
  p.ls_removed = true;
  SQLAGENT_TRY(persist(p));
  SQLAGENT_TRY(pg_->applyRoleConfig(roleConfig(p)));
  SQLAGENT_TRY(pg_->start());
  std::string outcome;
  SQLAGENT_TRY(promoteLocked(&outcome));
  const std::string stanza = archiveStanza();
  std::string note;
  if (!stanza.empty()) {
    Status st = setUpArchiving(stanza, false);
    note = st.isOk() ? "; archiving to stanza `" + stanza + "`" : "; archiving not set up: " + st.message();
  }
  return nlohmann::json{{"ok", true}, {"outcome", "recovered store `" + self_.name + "` (writable)" + note}};
}

Result<nlohmann::json> Agent::fullBackup(const std::string& stanza_in) {
  std::lock_guard op(op_mu_);
  const std::string stanza = archiveStanza();
  if (stanza.empty()) return fail(failedPrecondition("store `" + self_.name + "` has no backup share (no log shipping in the topology)"));
  if (!stanza_in.empty() && stanza_in != stanza) {
    return fail(invalidArgument("store `" + self_.name + "` archives to stanza `" + stanza + "`, not `" + stanza_in + "`"));
  }
  Persisted p = persisted();
  if ((p.role != kPrincipal && p.role != kStandalone) || !pg_->isRunning()) {
    return fail(failedPrecondition("store `" + self_.name + "` is " + p.role + "; a full backup is taken on the writable principal"));
  }
  SQLAGENT_TRY(setUpArchiving(stanza, true));
  std::string label;
  if (auto info = pgbackrest(pgbackrestConf(), stanza, {"--output=json", "info"}, std::chrono::seconds(60))) {
    try {
      auto j = nlohmann::json::parse(*info);
      label = j.at(0).at("backup").back().value("label", "");
    } catch (const std::exception&) {
    }
  }
  return nlohmann::json{{"ok", true}, {"label", label}, {"stanza", stanza},
                        {"outcome", "took full backup " + label + " of store `" + self_.name + "` to the share (stanza `" + stanza + "`)"}};
}

}  // namespace tandem::sqlagent
