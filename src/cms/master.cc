// The CMS master candidate loop: lease, file transfer agent (pushes to replicas), standby sync.
//
// Design (one thread per handle):
// - Each round: find the active xds (re-checked every 3 s, so a `cms failover` is noticed),
//   decide whether this server is a candidate (its pool's store holds the active copy),
//   heartbeat as an agent, take or renew the lease.
// - The lease holder reads the newest version (number only, unless it changed) and pushes it to
//   every server whose replica is behind or was not heard from for 5 s, in parallel.
// - Every 2 s the lease holder copies new versions to the standby copy (best effort).
// - After every new version the lease holder writes an export of the whole CMS to the backup
//   share (export.h), so a recent one exists when the CMS's site is lost (`cms move --from`).
// - Fenced by epoch: a candidate never takes the lease of a copy whose epoch is below the epoch
//   of the version its own replica holds (the CMS was failed over or moved past that copy).
// - Store failures drop the connection; the next round reconnects. One warning per outage.
#include "cms/master.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>

#include "cms/export.h"
#include "cms/internal/sync.h"
#include "cms/internal/xds.h"
#include "common/log.h"
#include "rpc/client.h"

namespace tandem::cms {
namespace {

using namespace std::chrono_literals;
using internal::Xds;

struct PeerState {
  int64_t version = -1, epoch = -1;
  std::chrono::steady_clock::time_point contacted{};
};

class Master final : public MasterHandle {
 public:
  explicit Master(MasterOptions o) : o_(std::move(o)) {}
  ~Master() override { stop(); }

  void begin() { thread_ = std::thread([this] { run(); }); }
  bool isMaster() const override { return is_master_; }
  void crashForTest() override {
    crashed_ = true;
    stop();
  }
  void stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  bool sleepFor(std::chrono::milliseconds d) {  // false when stopping
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, d, [this] { return stopping_; });
    return !stopping_;
  }
  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }
  void warnOnce(const std::string& what) {
    if (what == last_warning_) return;
    last_warning_ = what;
    spdlog::warn("CMS master candidate {}: {}", o_.fqdn, what);
  }

  void run();
  void round();
  void pushAll(Xds& xds, const topology::Topology& topo);
  void exportToShare(Xds& xds);
  void release();

  MasterOptions o_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::atomic<bool> is_master_{false};
  std::atomic<bool> crashed_{false};

  // Owned by the loop thread.
  std::string secret_;
  std::unique_ptr<Xds> active_;
  std::unique_ptr<Xds> standby_;
  std::chrono::steady_clock::time_point active_checked_{}, standby_synced_{}, heartbeat_{};
  std::optional<Version> latest_;
  bool export_pending_ = false;  // latest_ changed: write its export to the share
  std::shared_ptr<const Snapshot> latest_snapshot_;  // latest_ parsed; null if it does not parse
  std::map<std::string, PeerState> peers_;
  std::string last_warning_;
};

void Master::run() {
  spdlog::info("CMS master candidate {} started", o_.fqdn);
  while (!stopping()) {
    round();
    if (!sleepFor(o_.poll_interval)) break;
  }
  release();
}

void Master::release() {
  if (is_master_ && active_ && !crashed_) {
    (void)active_->releaseLease(o_.fqdn);
    spdlog::info("CMS master {} released the lease", o_.fqdn);
  }
  is_master_ = false;
}

void Master::round() {
  auto snap = o_.replica->current();
  const topology::Topology& topo = snap->topology();
  const topology::Pool* my_pool = nullptr;
  if (!topo.findServer(o_.fqdn, &my_pool) || !my_pool) return;
  auto now = std::chrono::steady_clock::now();

  if (secret_.empty()) {
    auto s = internal::readSecret(o_.state_dir);
    if (!s) return warnOnce(s.error().message());
    secret_ = *s;
  }
  if (!active_ || now - active_checked_ > 3s) {
    std::vector<internal::Location> locs = internal::locationsOf(topo);
    bool in_primary = !locs.empty() && locs[0].pool == my_pool->fqdn;
    bool in_standby = locs.size() > 1 && locs[1].pool == my_pool->fqdn;
    if (!in_primary && !in_standby) {  // not a CMS pool: idle
      release();
      active_.reset();
      active_checked_ = now;
      return;
    }
    auto found = internal::findActive(topo, secret_, in_primary);
    active_checked_ = now;
    if (!found) {
      if (is_master_) spdlog::warn("CMS master {} lost the CMS store", o_.fqdn);
      is_master_ = false;
      active_.reset();
      return warnOnce(found.error().message());
    }
    if (found->epoch < snap->version().epoch) {
      is_master_ = false;
      active_.reset();
      return warnOnce("store `" + found->xds->location().store + "` holds CMS epoch " +
                      std::to_string(found->epoch) + ", older than epoch " +
                      std::to_string(snap->version().epoch) + " of the version this server "
                      "holds: the CMS moved on, so this copy is fenced (no master lease there)");
    }
    if (!active_ || active_->location().store != found->xds->location().store) {
      latest_.reset();
      peers_.clear();
      standby_.reset();
    }
    active_ = std::move(found->xds);
  }
  if (active_->location().pool != my_pool->fqdn) {  // the other pool hosts the active CMS
    if (is_master_) spdlog::info("CMS master {} stands down: the CMS is active in pool {}", o_.fqdn,
                                 active_->location().pool);
    is_master_ = false;
    return;
  }
  if (now - heartbeat_ > 1s) {
    Status hb = active_->heartbeatAgent(o_.fqdn, my_pool->fqdn);
    if (!hb.isOk()) {
      is_master_ = false;
      active_.reset();
      return warnOnce(hb.message());
    }
    heartbeat_ = now;
    auto held = active_->acquireLease(o_.fqdn, o_.lease);
    if (!held) {
      is_master_ = false;
      active_.reset();
      return warnOnce(held.error().message());
    }
    if (*held != is_master_.load()) {
      if (*held)
        spdlog::info("CMS master is now {} (store `{}`)", o_.fqdn, active_->location().store);
      else
        spdlog::info("CMS master {} lost the lease", o_.fqdn);
      peers_.clear();
    }
    is_master_ = *held;
    last_warning_.clear();
  }
  if (!is_master_) return;
  pushAll(*active_, topo);
  if (!active_) return;  // pushAll dropped a broken connection
  if (now - standby_synced_ > 2s) {
    standby_synced_ = now;
    for (const auto& loc : internal::locationsOf(topo)) {
      if (loc.store == active_->location().store) continue;
      if (!standby_) {
        auto s = Xds::open(loc, secret_, true);
        if (!s) {
          (void)active_->setMeta("standby_error", s.error().message());
          continue;
        }
        standby_ = std::move(*s);
      }
      auto copied = internal::syncStandby(*active_, *standby_);
      if (!copied) standby_.reset();
    }
  }
}

void Master::pushAll(Xds& xds, const topology::Topology& fallback_topo) {
  auto head = xds.latest(false);
  if (!head) {
    active_.reset();
    is_master_ = false;
    return warnOnce(head.error().message());
  }
  if (!*head) return;  // nothing published yet
  if (!latest_ || latest_->number != (*head)->number || latest_->epoch != (*head)->epoch) {
    auto full = xds.get((*head)->number);
    if (!full || !*full) return;
    latest_ = **full;
    // Parsed once per version, not every round (the YAML parse was most of an idle front
    // end's CPU at 4 rounds a second).
    auto snap = Snapshot::make(*latest_);
    latest_snapshot_ = snap ? *snap : nullptr;
    export_pending_ = true;
  }
  // Push to the servers of the version being pushed (a new server appears with its topology).
  const topology::Topology& topo = latest_snapshot_ ? latest_snapshot_->topology() : fallback_topo;
  auto opts = rpc::ClientOptions{};
  opts.ca_file = o_.state_dir + "/pki/ca.pem";
  opts.token = secret_;
  opts.timeout = 2s;
  const nlohmann::json body = toJson(*latest_);
  const auto now = std::chrono::steady_clock::now();
  struct Job {
    std::string fqdn;
    std::future<Result<nlohmann::json>> result;
  };
  std::vector<Job> jobs;
  for (const auto& pool : topo.pools) {
    for (const auto& srv : pool.servers) {
      PeerState& p = peers_[srv.fqdn];
      bool current = p.version == latest_->number && p.epoch == latest_->epoch;
      if (current && now - p.contacted < 5s) continue;
      std::string address = srv.address;
      int port = o_.admin_port;
      jobs.push_back({srv.fqdn, std::async(std::launch::async, [address, port, opts, &body] {
                        return rpc::AdminClient(address, port, opts).put("/cms/replica", body);
                      })});
    }
  }
  for (auto& j : jobs) {
    auto r = j.result.get();
    PeerState& p = peers_[j.fqdn];
    p.contacted = now;
    if (r) {
      p.version = r->value("version", int64_t{-1});
      p.epoch = r->value("epoch", int64_t{-1});
      (void)xds.recordReport(j.fqdn, *r);
    } else {
      p.version = -1;
      (void)xds.recordPushError(j.fqdn, r.error().message());
    }
  }
  // After the push, so that writing the export never delays a new version reaching servers.
  if (export_pending_) {
    export_pending_ = false;
    exportToShare(xds);
  }
}

void Master::exportToShare(Xds& xds) {
  auto f = internal::exportFrom(xds);
  Status st = f ? writeExport(shareExportPath(o_.state_dir, *f), *f) : f.error();
  if (!st.isOk()) return warnOnce("writing the CMS export to the backup share: " + st.message());
  pruneShareExports(o_.state_dir, 5);
  spdlog::info("CMS master {} wrote {}", o_.fqdn, shareExportPath(o_.state_dir, *f));
}

}  // namespace

Result<std::unique_ptr<MasterHandle>> startMaster(const MasterOptions& options) {
  if (!options.replica || options.fqdn.empty() || options.state_dir.empty())
    return fail(invalidArgument("the CMS master needs this server's FQDN, state dir and replica"));
  auto m = std::make_unique<Master>(options);
  m->begin();
  return std::unique_ptr<MasterHandle>(std::move(m));
}

}  // namespace tandem::cms
