// /restore: replace this store's cluster with the latest full backup on the share plus every
// archived log after it, and start it writable (failback: `from_stanza` = the backup store).
//
// Steps: 1 refuse without overwrite when a cluster exists; 2 restore into pgdata.new
// (pgBackRest, as postgres) while the current cluster stays as it is; 3 verify the copy
// (pgBackRest checks every file; PG_VERSION, pg_control readable); 4 stop and swap it in, the
// previous cluster kept as pgdata.old; 5 start in archive recovery with restore_command =
// archive-get from the share, until PostgreSQL ends recovery at the end of the archive — if it
// does not, the previous cluster is put back; 6 drop pgdata.old and configure the normal
// principal role (archiving to our stanza, no mirror yet). A crash between 4 and 6 leaves
// pgdata.old, which bootstrap puts back when pgdata is missing.
#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "sqlagent/internal/agent.h"

namespace tandem::sqlagent {

namespace fs = std::filesystem;

Result<nlohmann::json> Agent::restore(bool overwrite, const std::string& from_stanza) {
  std::lock_guard op(op_mu_);
  if (self_.witness_only) return fail(failedPrecondition("`" + self_.name + "` is a witness"));
  const std::string stanza = from_stanza.empty() ? archiveStanza() : from_stanza;
  if (stanza.empty()) return fail(invalidArgument("store `" + self_.name + "` has no stanza to restore from; give from_stanza"));
  if (pg_->hasData() && !overwrite) {
    return fail(failedPrecondition("store `" + self_.name + "` has a database; restoring replaces it (pass overwrite)"));
  }
  // The share of whichever log-shipping relationship this store belongs to.
  const topology::Store* src = logShippingPrimaryOf(self_.name);
  if (!src) src = backupSourceOf(self_.name);
  if (!src && topo_.principalOf(self_.name)) src = backupSourceOf(topo_.principalOf(self_.name)->name);
  if (!src) return fail(failedPrecondition("store `" + self_.name + "` has no backup share in the topology"));
  SQLAGENT_TRY(writePgbackrestConfs(shareDir(src->name)));
  // 2-3: the current cluster is untouched until the copy is complete and verified.
  const std::string tmp = pg_->pgdata() + ".new";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  SQLAGENT_TRY(makeDirs(tmp, 0700));
  pg_->chownToPostgres(tmp);
  auto r = pgbackrest(pgbackrestConf(), stanza, {"--pg1-path=" + tmp, "restore"}, std::chrono::seconds(900));
  if (!r) return fail(r.error().withContext("the current cluster of store `" + self_.name + "` was left as it was"));
  SQLAGENT_TRY(pg_->verifyDataDir(tmp));
  // 4
  SQLAGENT_TRY(pg_->stop());
  SQLAGENT_TRY(pg_->swapIn(tmp));
  // 5
  Persisted p = persisted();
  p.role = p.partner.empty() || p.mirror_removed ? kStandalone : kPrincipal;
  p.synchronous = false;
  p.principal.clear();
  p.ls_removed = true;
  RoleConfig rc = roleConfig(p);
  rc.standby = false;
  rc.restore_command = restoreCommand(stanza, false);
  SQLAGENT_TRY(pg_->writeConfig(rc));
  SQLAGENT_TRY(writeFileAtomic(pg_->pgdata() + "/recovery.signal", "", 0600));
  pg_->chownToPostgres(pg_->pgdata() + "/recovery.signal");
  SQLAGENT_TRY(pg_->start());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  bool writable = false;
  while (!writable && std::chrono::steady_clock::now() < deadline) {
    if (auto c = pg_->connect()) {
      auto q = (*c)->exec("SELECT pg_is_in_recovery()");
      writable = q && q->rows[0][0] == "f";
    }
    if (!writable) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  if (!writable) {
    Status back = pg_->restorePrevious();
    return fail(timeoutError("store `" + self_.name + "` was still recovering 5 minutes after the restore; " +
                             (back.isOk() ? std::string("the previous cluster is back in place (stopped); the restored copy is in pgdata.failed")
                                          : "putting the previous cluster back failed too: " + back.message()) +
                             "; see its postgres.log"));
  }
  // 6
  pg_->dropPrevious();
  SQLAGENT_TRY(persist(p));
  SQLAGENT_TRY(pg_->applyRoleConfig(roleConfig(p)));
  const std::string own = archiveStanza();
  std::string note;
  if (!own.empty()) {
    Status st = setUpArchiving(own, false);
    note = st.isOk() ? "" : "; archiving not set up: " + st.message();
  }
  spdlog::warn("store `{}`: restored from stanza `{}`; writable", self_.name, stanza);
  return nlohmann::json{{"ok", true}, {"stanza", stanza},
                        {"outcome", "restored store `" + self_.name + "` from the latest backup of `" + stanza + "` and every archived log after it (writable)" + note}};
}

}  // namespace tandem::sqlagent
