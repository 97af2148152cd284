// Agent core: persisted role, role configuration, bootstrap, and the mirroring operations
// (promote, fence, rejoin, mirror install/become/remove, stop/start).
//
// Design:
// - The role lives in agent.json and is what the agent restores after kill -9; the topology
//   only decides the first role (principal, mirror, backup store, witness).
// - A principal starts without synchronous_standby_names; the monitor turns it on once the
//   mirror streams (so bootstrap writes never wait for a mirror that does not exist yet), and
//   turns it on again after a failover once the old principal has rejoined.
// - Never two writable principals: before starting writable, a principal checks whether its
//   partner is already writable on a newer timeline, and rejoins it instead.
#include "sqlagent/internal/agent.h"

#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "rpc/client.h"

namespace tandem::sqlagent {

namespace fs = std::filesystem;

// ---- persisted state ---------------------------------------------------------------------------

nlohmann::json Persisted::toJson() const {
  return {{"role", role},         {"role_before_stop", role_before_stop},
          {"partner", partner},   {"principal", principal},
          {"synchronous", synchronous}, {"exposed", exposed},
          {"mirror_removed", mirror_removed},
          {"timeline", timeline}, {"ls_from", ls_from},
          {"ls_removed", ls_removed}, {"self_fenced", self_fenced},
          {"divergence", divergence}};
}

Persisted Persisted::fromJson(const nlohmann::json& j) {
  Persisted p;
  p.role = j.value("role", "");
  p.role_before_stop = j.value("role_before_stop", "");
  p.partner = j.value("partner", "");
  p.principal = j.value("principal", "");
  p.synchronous = j.value("synchronous", false);
  p.exposed = j.value("exposed", false);
  p.mirror_removed = j.value("mirror_removed", false);
  p.timeline = j.value("timeline", 0);
  p.ls_from = j.value("ls_from", "");
  p.ls_removed = j.value("ls_removed", false);
  p.self_fenced = j.value("self_fenced", false);
  if (j.contains("divergence")) p.divergence = j["divergence"];
  return p;
}

int timelineOfWalName(const std::string& name) {
  if (name.size() < 8) return 0;
  try {
    return static_cast<int>(std::stoul(name.substr(0, 8), nullptr, 16));
  } catch (const std::exception&) {
    return 0;
  }
}

std::string isoUtc(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- construction and helpers ------------------------------------------------------------------

Agent::Agent(AgentOptions o, topology::Topology topo, const topology::Store& self,
             std::string token)
    : o_(std::move(o)),
      topo_(std::move(topo)),
      self_(self),
      token_(std::move(token)),
      witness_(o_.partner_timeout - std::chrono::seconds(1)) {
  bool archive = logShippingPrimaryOf(self_.name) != nullptr ||
                 backupSourceOf(self_.name) != nullptr ||
                 (topo_.principalOf(self_.name) &&
                  backupSourceOf(topo_.principalOf(self_.name)->name) != nullptr);
  pg_ = std::make_unique<PgCluster>(self_.name, self_.address, storeDir(), token_, archive);
}

std::string Agent::storeDir() const { return o_.state_dir + "/stores/" + self_.name; }

std::string Agent::addressOf(const std::string& store) const {
  const topology::Store* s = topo_.findStore(store);
  return s ? s->address : "";
}

std::string Agent::topologyPartner() const {
  if (!self_.mirror.empty()) return self_.mirror;
  const topology::Store* p = topo_.principalOf(self_.name);
  return p ? p->name : "";
}

const topology::Store* Agent::logShippingPrimaryOf(const std::string& store) const {
  const topology::Store* s = topo_.findStore(store);
  if (s == nullptr) return nullptr;
  if (s->log_shipping) return s;
  const topology::Store* p = topo_.principalOf(store);
  return (p && p->log_shipping) ? p : nullptr;
}

const topology::Store* Agent::backupSourceOf(const std::string& store) const {
  for (const auto& s : topo_.stores) {
    if (s.log_shipping && s.log_shipping->to == store) return &s;
  }
  return nullptr;
}

// The pgBackRest stanza this store archives to when it is writable: the log-shipped primary's
// name for its pair; a backup store (and its mirror) archives to its own stanza once recovered,
// which is what failback restores from.
std::string Agent::archiveStanza() const {
  if (const auto* p = logShippingPrimaryOf(self_.name)) return p->name;
  if (backupSourceOf(self_.name)) return self_.name;
  const topology::Store* pr = topo_.principalOf(self_.name);
  if (pr && backupSourceOf(pr->name)) return pr->name;
  return "";
}

std::string Agent::shareDir(const std::string& primary) const {
  const topology::Store* p = topo_.findStore(primary);
  if (p == nullptr || !p->log_shipping) return "";
  const std::string& share = p->log_shipping->share;
  return (!share.empty() && share[0] == '/') ? share : o_.state_dir + "/" + share;
}

std::string Agent::witnessName() const {
  if (!self_.witness.empty()) return self_.witness;
  const topology::Store* p = topo_.principalOf(self_.name);
  return p ? p->witness : "";
}

Persisted Agent::persisted() const {
  std::lock_guard lock(mu_);
  return state_;
}

Status Agent::persist(const Persisted& given) {
  Persisted p = given;
  if (fence_pending_ && (p.role == kPrincipal || p.role == kStandalone)) {
    // The monitor fenced this store while an operation ran: it stays Fenced (rules 3-4 decide).
    p.role = kFenced;
    p.self_fenced = true;
  }
  {
    std::lock_guard lock(mu_);
    state_ = p;
  }
  metrics_.clear("tandem_store_role");
  metrics_.setGauge("tandem_store_role", 1, {{"store", self_.name}, {"role", p.role}},
                    "The store's current role (value 1 on the current role's series)");
  return writeFileAtomic(storeDir() + "/agent.json", p.toJson().dump(2) + "\n", 0644);
}

void Agent::setRole(const std::string& role) {
  Persisted p = persisted();
  p.role = role;
  (void)persist(p);
}

RoleConfig Agent::roleConfig(const Persisted& p) const {
  RoleConfig rc;
  const std::string stanza = archiveStanza();
  if (!stanza.empty()) {
    rc.archive_command = "pgbackrest --config=" + pgbackrestConf() + " --stanza=" + stanza +
                         " --pg1-path=" + pg_->pgdata() + " archive-push %p";
    const topology::Store* src = logShippingPrimaryOf(self_.name);
    if (src == nullptr) src = backupSourceOf(stanza == self_.name ? self_.name : stanza);
    rc.archive_timeout_s = (src && src->log_shipping) ? src->log_shipping->interval_s : 5;
  }
  if (p.role == kMirror) {
    rc.standby = true;
    rc.primary_address = addressOf(p.principal);
  } else if (p.role == kBackupRestoring) {
    rc.standby = true;
    if (!p.ls_removed) rc.restore_command = restoreCommand(p.ls_from, true);
  } else if (p.role == kPrincipal && p.synchronous && !p.mirror_removed) {
    rc.sync_standby = p.partner;
  }
  return rc;
}

// ---- bootstrap ---------------------------------------------------------------------------------

Status Agent::bootstrap(const std::atomic<bool>& stop) {
  std::lock_guard op(op_mu_);
  TANDEM_RETURN_IF_ERROR(makeDirs(storeDir(), 0755));
  Persisted p;
  if (auto j = readFile(storeDir() + "/agent.json")) {
    try {
      p = Persisted::fromJson(nlohmann::json::parse(*j));
    } catch (const std::exception& e) {
      spdlog::warn("store `{}`: agent.json is unreadable ({}); using the topology's role",
                   self_.name, e.what());
    }
  }
  if (p.role.empty()) {
    if (self_.witness_only) {
      p.role = kWitness;
    } else if (const auto* src = backupSourceOf(self_.name)) {
      p.role = kBackupRestoring;
      p.ls_from = src->name;
    } else if (const auto* pr = topo_.principalOf(self_.name)) {
      p.partner = pr->name;
      p.principal = pr->name;
      // The mirror of a backup store waits for `db mirror install` after the store's recovery.
      p.role = backupSourceOf(pr->name) ? kStopped : kMirror;
    } else {
      p.partner = self_.mirror;
      p.role = self_.mirror.empty() ? kStandalone : kPrincipal;
    }
    spdlog::info("store `{}`: first start, role {} from the topology", self_.name, p.role);
  } else {
    spdlog::info("store `{}`: resuming in role {} (agent.json)", self_.name, p.role);
  }
  TANDEM_RETURN_IF_ERROR(persist(p));
  if (p.role != kWitness && guard_fd_ < 0) TANDEM_RETURN_IF_ERROR(startPostgresGuard());
  if (p.role == kWitness) {
    loadWitnessRecords();
    bootstrapped_ = true;
    return Status::ok();
  }
  pg_->chownToPostgres(storeDir());
  if (fs::exists(pg_->pgdata() + ".old")) {
    // A restore swapped its copy in but did not finish (restore.cc): the copy was never
    // verified by recovery, so the cluster it replaced comes back.
    spdlog::warn("store `{}`: a restore did not finish; putting the previous cluster back", self_.name);
    TANDEM_RETURN_IF_ERROR(pg_->restorePrevious());
  }
  if (!archiveStanza().empty() || backupSourceOf(self_.name)) {
    const topology::Store* src = logShippingPrimaryOf(self_.name);
    if (!src) src = backupSourceOf(self_.name);
    if (!src) src = backupSourceOf(topo_.principalOf(self_.name)->name);
    TANDEM_RETURN_IF_ERROR(writePgbackrestConfs(shareDir(src->name)));
  }
  Status st;
  if (p.role == kPrincipal || p.role == kStandalone) {
    st = startAsPrincipal();
  } else if (p.role == kMirror) {
    st = startAsMirror(p.principal, &stop);
  } else if (p.role == kBackupRestoring) {
    if (!pg_->hasData()) st = seedBackupStore(p.ls_from, &stop);
    if (st.isOk()) st = pg_->writeConfig(roleConfig(persisted()));
    if (st.isOk()) st = pg_->start();
  }
  // Fenced and Stopped stay down; the monitor (Fenced) or an operator (Stopped) moves them on.
  if (st.isOk()) {
    std::lock_guard lock(mu_);
    // Partners get a full partner timeout from now before any fencing or failover decision.
    seen_.partner_last_contact = seen_.witness_last_contact = seen_.commits_unblocked_at =
        std::chrono::steady_clock::now();
    bootstrapped_ = true;
  }
  return st;
}

Status Agent::startAsPrincipal() {
  Persisted p = persisted();
  // Never two writable principals: a partner already writable on a newer timeline won.
  if (!p.partner.empty() && pg_->hasData()) {
    if (auto c = pg_->connectTo(addressOf(p.partner))) {
      auto r = (*c)->exec(
          "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN 0 ELSE "
          "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END");
      if (r && r->rows[0][0] == "f" && std::stoi(r->rows[0][1]) > p.timeline) {
        spdlog::warn("store `{}`: partner `{}` is already the principal (timeline {} > {}); "
                     "rejoining it as its mirror", self_.name, p.partner, r->rows[0][1], p.timeline);
        return rejoinLocked(p.partner);
      }
    }
  }
  bool fresh = !pg_->hasData();
  if (fresh) {
    // A new cluster has nothing to protect, and its mirror needs it writable to copy it.
    TANDEM_RETURN_IF_ERROR(pg_->initdb());
    TANDEM_RETURN_IF_ERROR(pg_->writeConfig(roleConfig(p)));
    TANDEM_RETURN_IF_ERROR(pg_->start());
  } else {
    TANDEM_RETURN_IF_ERROR(startPrincipalGuarded(p));
  }
  if (fresh) {
    TANDEM_RETURN_IF_ERROR(pg_->ensureTandemRole());
    if (self_.log_shipping) TANDEM_RETURN_IF_ERROR(setUpArchiving(self_.name, true));
  }
  spdlog::info("store `{}`: running as {}", self_.name, p.role);
  return Status::ok();
}

Status Agent::startPrincipalGuarded(Persisted p) {
  // Whatever agent.json says (alone after a failover, exposed, during a mirror install), a
  // principal that starts may be the stale side of a partition: a mirror may have been promoted
  // over it meanwhile. Its commits wait for the partner until one of the two confirms it: the
  // partner by streaming from it (it is our standby, so we are its principal), or the witness
  // by granting exposure (rule 7; it refuses when it voted for the partner or cannot tell).
  if (p.role == kPrincipal && !p.partner.empty() && !p.mirror_removed && !p.synchronous) {
    p.synchronous = true;
    spdlog::warn("store `{}`: starting with commits waiting for `{}` until it streams from this "
                 "store or witness `{}` grants exposure",
                 self_.name, p.partner, witnessName());
  }
  if (fence_pending_) {
    return failedPrecondition("store `" + self_.name + "` was fenced by its monitor (lost mirror and "
                              "witness); it serves again when they are back");
  }
  TANDEM_RETURN_IF_ERROR(persist(p));
  TANDEM_RETURN_IF_ERROR(pg_->writeConfig(roleConfig(p)));
  return pg_->start();
}

Persisted Agent::recordDivergence(Persisted p, const std::string& principal) {
  Divergence d = pg_->measureDivergence(addressOf(principal), principal, p.timeline,
                                        storeDir() + "/diverged");
  if (d.fork_lsn.empty() && d.note == "no rewind required") return p;
  spdlog::warn("store `{}`: {}", self_.name, d.summary());
  p.divergence = d.toJson();
  if (Status st = persist(p); !st.isOk()) noteError(st.message());
  return p;
}

Status Agent::startAsMirror(const std::string& principal, const std::atomic<bool>* stop,
                            int max_wait_s) {
  Persisted p = persisted();
  const std::string addr = addressOf(principal);
  if (addr.empty()) return notFound("store `" + principal + "` is not in the topology");
  if (!pg_->hasData() || !fs::exists(pg_->pgdata() + "/standby.signal")) {
    // Wait for the principal (deploy up starts everyone at once), then copy it.
    for (int i = 0;; ++i) {
      auto c = pg_->connectTo(addr);
      if (c) break;
      if (stop && *stop) return unavailable("stopped while waiting for principal `" + principal + "`");
      if (!stop && i >= max_wait_s) {
        return unavailable("principal `" + principal + "` does not answer (" + c.error().message() +
                           "); the monitor tries again every round");
      }
      if (i % 30 == 0) {
        spdlog::info("store `{}`: waiting for principal `{}` ({})", self_.name, principal,
                     c.error().message());
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    TANDEM_RETURN_IF_ERROR(pg_->baseBackupFrom(addr));
  }
  p.role = kMirror;
  p.principal = principal;
  p.partner = principal;
  p.synchronous = false;
  TANDEM_RETURN_IF_ERROR(persist(p));
  TANDEM_RETURN_IF_ERROR(pg_->writeConfig(roleConfig(p)));
  TANDEM_RETURN_IF_ERROR(pg_->start());
  spdlog::info("store `{}`: running as the mirror of `{}`", self_.name, principal);
  return Status::ok();
}

// ---- promote, fence, rejoin ---------------------------------------------------------------------

Status Agent::promoteLocked(std::string* outcome) {
  Persisted p = persisted();
  if (!pg_->hasData()) return failedPrecondition("store `" + self_.name + "` has no database to promote");
  if (p.role == kFenced || p.role == kStopped) TANDEM_RETURN_IF_ERROR(pg_->start());
  TANDEM_RETURN_IF_ERROR(pg_->promote());
  // Running alone until the partner rejoins: the monitor re-synchronises then.
  p.role = p.partner.empty() ? kStandalone : kPrincipal;
  p.synchronous = false;
  p.principal.clear();
  p.ls_removed = true;
  auto c = pg_->connect();
  if (c) {
    auto tl = (*c)->exec("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int");
    if (tl) p.timeline = std::stoi(tl->rows[0][0]);
  }
  TANDEM_RETURN_IF_ERROR(persist(p));
  TANDEM_RETURN_IF_ERROR(pg_->applyRoleConfig(roleConfig(p)));
  std::error_code ec;
  fs::remove(pg_->pgdata() + "/standby.signal", ec);
  if (outcome) {
    *outcome = "promoted store `" + self_.name + "` to " + p.role + " (writable, timeline " +
               std::to_string(p.timeline) + ")";
  }
  spdlog::warn("store `{}`: promoted (timeline {})", self_.name, p.timeline);
  return Status::ok();
}

Status Agent::fenceLocked(const std::string& why, bool by_monitor) {
  Persisted p = persisted();
  TANDEM_RETURN_IF_ERROR(pg_->stop());
  p.role = kFenced;
  p.self_fenced = by_monitor;
  TANDEM_RETURN_IF_ERROR(persist(p));
  spdlog::warn("store `{}`: fenced ({})", self_.name, why);
  return Status::ok();
}

Status Agent::rejoinLocked(const std::string& principal) {
  const std::string addr = addressOf(principal);
  if (addr.empty()) return notFound("store `" + principal + "` is not in the topology");
  if (principal == self_.name) return invalidArgument("store `" + self_.name + "` cannot follow itself");
  auto probe = pg_->connectTo(addr);
  if (!probe) return probe.error().withContext("cannot rejoin principal `" + principal + "`");
  auto rec = (*probe)->exec("SELECT pg_is_in_recovery()");
  if (!rec || rec->rows[0][0] != "f") {
    return failedPrecondition("store `" + principal + "` is not writable; promote it first (`tandemctl db failover`)");
  }
  TANDEM_RETURN_IF_ERROR(pg_->stop());
  Persisted p = persisted();
  // Never discard silently: what we hold beyond the fork is measured, kept and reported.
  if (pg_->hasData()) p = recordDivergence(p, principal);
  p.role = kMirror;
  p.principal = principal;
  p.partner = principal;
  p.synchronous = false;
  bool rewound = false;
  if (pg_->hasData()) {
    Status rw = pg_->rewindFrom(addr);
    if (rw.isOk()) {
      rewound = true;
    } else {
      spdlog::warn("store `{}`: {}; falling back to a fresh base backup", self_.name, rw.message());
    }
  }
  if (!rewound) TANDEM_RETURN_IF_ERROR(pg_->baseBackupFrom(addr));
  TANDEM_RETURN_IF_ERROR(persist(p));
  TANDEM_RETURN_IF_ERROR(pg_->writeConfig(roleConfig(p)));
  TANDEM_RETURN_IF_ERROR(pg_->start());
  spdlog::info("store `{}`: rejoined `{}` as its mirror ({})", self_.name, principal,
               rewound ? "pg_rewind" : "base backup");
  return Status::ok();
}

Result<nlohmann::json> Agent::promote() {
  std::lock_guard op(op_mu_);
  // An operator's promotion (`db failover`, `--force` included) is recorded at the witness
  // first, as a vote: the old principal, if it comes back where only the witness sees it, must
  // not be granted exposure (docs/stores.md). A witness that does not answer does not stop the
  // operator; the outcome says it.
  std::string note;
  const Persisted p = persisted();
  const std::string old = p.role == kMirror ? p.principal : p.partner;
  if (!witnessName().empty() && !old.empty() && p.role != kPrincipal && p.role != kStandalone) {
    auto r = askWitness("/witness/promoted", {{"store", old}, {"candidate", self_.name}});
    note = r ? "; witness `" + witnessName() + "` recorded it"
             : "; witness `" + witnessName() + "` did not record it (" + r.error().message() +
                   "): until it does, it may grant `" + old + "` exposure where it cannot see `" +
                   self_.name + "`";
  }
  std::string outcome;
  SQLAGENT_TRY(promoteLocked(&outcome));
  return nlohmann::json{{"ok", true}, {"outcome", outcome + note}};
}

Result<nlohmann::json> Agent::fence() {
  std::lock_guard op(op_mu_);
  if (self_.witness_only) return fail(failedPrecondition("`" + self_.name + "` is a witness; it has no database to fence"));
  SQLAGENT_TRY(fenceLocked("requested by an operator", false));
  return nlohmann::json{{"ok", true}, {"outcome", "fenced store `" + self_.name + "` (PostgreSQL stopped; no client can connect)"}};
}

Result<nlohmann::json> Agent::rejoin(const std::string& principal) {
  std::lock_guard op(op_mu_);
  SQLAGENT_TRY(rejoinLocked(principal));
  return nlohmann::json{{"ok", true}, {"outcome", "rejoined store `" + self_.name + "` as the mirror of `" + principal + "`"}};
}

// ---- mirror install / become / remove -----------------------------------------------------------

bool Agent::isStreamingFrom(const std::string& principal) {
  auto c = pg_->connect();
  if (!c) return false;
  auto r = (*c)->exec("SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_host = $1",
                      {addressOf(principal)});
  return r && !r->rows.empty();
}

Result<nlohmann::json> Agent::becomeMirror(const std::string& principal) {
  std::lock_guard op(op_mu_);
  if (self_.witness_only) return fail(failedPrecondition("`" + self_.name + "` is a witness"));
  Persisted p = persisted();
  if (p.role == kMirror && p.principal == principal && isStreamingFrom(principal)) {
    return nlohmann::json{{"ok", true}, {"outcome", "store `" + self_.name + "` already mirrors `" + principal + "`"}};
  }
  if ((p.role == kPrincipal || p.role == kStandalone) && pg_->isRunning()) {
    return fail(failedPrecondition("store `" + self_.name + "` is a writable " + p.role +
                                   "; fail it over or stop it before making it a mirror"));
  }
  SQLAGENT_TRY(pg_->stop());
  const bool was_principal = p.role == kFenced || (p.role == kStopped && (p.role_before_stop == kPrincipal || p.role_before_stop == kStandalone));
  if (pg_->hasData() && was_principal) p = recordDivergence(p, principal);
  SQLAGENT_TRY(pg_->wipe());
  p.role = kMirror;
  p.principal = principal;
  p.partner = principal;
  SQLAGENT_TRY(persist(p));
  SQLAGENT_TRY(startAsMirror(principal, nullptr));
  return nlohmann::json{{"ok", true}, {"outcome", "made store `" + self_.name + "` the mirror of `" + principal + "` (base backup, streaming)"}};
}

Result<nlohmann::json> Agent::installMirror(const std::string& mirror) {
  std::lock_guard op(op_mu_);
  Persisted p = persisted();
  if (p.role != kPrincipal && p.role != kStandalone) {
    return fail(failedPrecondition("store `" + self_.name + "` is " + p.role + ", not a writable principal; promote or recover it first"));
  }
  const topology::Store* m = topo_.findStore(mirror);
  if (m == nullptr || m->witness_only || mirror == self_.name) {
    return fail(invalidArgument("`" + mirror + "` is not a store that can mirror `" + self_.name + "`"));
  }
  auto opts = rpc::clientOptionsFromStateDir(o_.state_dir);
  if (!opts) return fail(opts.error());
  rpc::ClientOptions lo = *opts;
  lo.timeout = std::chrono::minutes(10);
  rpc::AdminClient c(m->address, 8443, lo);
  auto r = c.post("/mirror/become", {{"principal", self_.name}});
  if (!r) return fail(r.error().withContext("installing mirror `" + mirror + "`"));
  p.role = kPrincipal;
  p.partner = mirror;
  p.mirror_removed = false;
  p.synchronous = false;  // the monitor switches to synchronous once the mirror streams
  SQLAGENT_TRY(persist(p));
  // Wait (bounded) for the mirror to stream, then require it for every commit.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool streaming = false;
  while (!streaming && std::chrono::steady_clock::now() < deadline) {
    if (auto conn = pg_->connect()) {
      auto s = (*conn)->exec("SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", {mirror});
      streaming = s && !s->rows.empty();
    }
    if (!streaming) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!streaming) return fail(timeoutError("mirror `" + mirror + "` did not start streaming from `" + self_.name + "` within 60 s; see its postgres.log"));
  p.synchronous = true;
  SQLAGENT_TRY(persist(p));
  SQLAGENT_TRY(pg_->applyRoleConfig(roleConfig(p)));
  return nlohmann::json{{"ok", true}, {"outcome", "installed mirror `" + mirror + "` for store `" + self_.name + "` (SYNCHRONIZED)"}};
}

Result<nlohmann::json> Agent::removeMirror() {
  std::lock_guard op(op_mu_);
  Persisted p = persisted();
  if (p.role != kPrincipal && p.role != kStandalone) {
    return fail(failedPrecondition("store `" + self_.name + "` is " + p.role + "; run `db mirror remove` on the principal"));
  }
  const std::string old = p.partner;
  p.role = kStandalone;
  p.mirror_removed = true;
  p.synchronous = false;
  SQLAGENT_TRY(persist(p));
  SQLAGENT_TRY(pg_->applyRoleConfig(roleConfig(p)));
  return nlohmann::json{{"ok", true}, {"outcome", "removed mirror " + (old.empty() ? std::string("(none)") : "`" + old + "`") + " from store `" + self_.name + "`; it serves alone"}};
}

// ---- stop / start -------------------------------------------------------------------------------

Result<nlohmann::json> Agent::stopStore() {
  std::lock_guard op(op_mu_);
  Persisted p = persisted();
  SQLAGENT_TRY(pg_->stop());
  if (p.role != kStopped) {
    p.role_before_stop = p.role;
    p.role = kStopped;
    SQLAGENT_TRY(persist(p));
  }
  return nlohmann::json{{"ok", true}, {"outcome", "stopped store `" + self_.name + "`"}};
}

Result<nlohmann::json> Agent::startStore() {
  std::lock_guard op(op_mu_);
  fence_pending_ = false;  // the operation it fenced during has ended (we hold op_mu_)
  Persisted p = persisted();
  if (!pg_->hasData()) return fail(failedPrecondition("store `" + self_.name + "` has no database yet; install it as a mirror or restore it first"));
  if (p.role == kStopped && !p.role_before_stop.empty()) {
    p.role = p.role_before_stop;
    p.role_before_stop.clear();
  } else if (p.role == kFenced) {
    p.role = p.partner.empty() ? kStandalone : kPrincipal;
    p.self_fenced = false;
  }
  if (p.role == kPrincipal || p.role == kStandalone) {
    SQLAGENT_TRY(startPrincipalGuarded(p));
    p = persisted();
  } else {
    SQLAGENT_TRY(persist(p));
    SQLAGENT_TRY(pg_->writeConfig(roleConfig(p)));
    SQLAGENT_TRY(pg_->start());
  }
  const bool waits = p.role == kPrincipal && p.synchronous && !p.mirror_removed;
  return nlohmann::json{{"ok", true}, {"outcome", "started store `" + self_.name + "` as " + p.role +
                                                      (waits ? " (commits wait for `" + p.partner + "` until it streams from it or the witness grants exposure)" : "")}};
}

}  // namespace tandem::sqlagent
