// cms::Replica: a server's local copy of the newest CMS version (servers/<name>/replica.json).
//
// Every server role opens one Replica at start and reads configuration ONLY from it
// (docs/architecture.md), so it keeps running on the last version it has while the CMS is down.
// The master's file transfer agent pushes new versions to the server's admin endpoint
// (PUT /cms/replica, wired by serveReplica() below or admin::Endpoint); the replica checks the
// version is newer, writes it atomically (temp file, fsync, rename) and notifies its watchers.
// A process that is not the replica's owner (e.g. the compliance adapter next to its chat
// server) opens the same file with `follow_only`: it never writes and picks up changes of the
// file by polling it.
// Thread-safe: current() and watch() from any thread; callbacks run on the thread that applied
// the version (an admin worker or the follower's poll thread) and must not block for long.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cms/version.h"
#include "common/status.h"

namespace tandem::rpc {
class AdminServer;
}

namespace tandem::cms {

struct ReplicaOptions {
  std::string state_dir;  // the replica file is <state_dir>/servers/<name>/replica.json
  std::string name;       // the server FQDN (or store name for a sqlagent)
  // Used when there is no replica file yet (first start): a version-0 snapshot of this topology
  // file with default settings. Empty: current() is nullptr until the first push.
  std::string bootstrap_topology;
  // Never write; poll the file for changes every `follow_interval` instead.
  bool follow_only = false;
  std::chrono::milliseconds follow_interval{500};
};

class Replica {
 public:
  using Callback = std::function<void(const std::shared_ptr<const Snapshot>&)>;

  // Loads the replica file (or the bootstrap topology). A corrupt replica file is set aside
  // (renamed *.corrupt, warning logged) and the bootstrap used. Errors: InvalidArgument when
  // neither a replica file nor a usable bootstrap topology exists. Starts the follower thread
  // when follow_only.
  static Result<std::unique_ptr<Replica>> open(const ReplicaOptions& options);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // The newest version held; never nullptr after a successful open().
  std::shared_ptr<const Snapshot> current() const;
  // Calls `cb` after every change (not for the current version). Returns an id for unwatch().
  int watch(Callback cb);
  void unwatch(int id);

  // Applies a pushed version (the JSON of toJson(Version)): writes it to disk and notifies the
  // watchers when it is newer than the one held; an older or equal version changes nothing and
  // is not an error. Errors: InvalidArgument (malformed, or its topology does not load; the
  // replica keeps its version), Unavailable (disk), FailedPrecondition (follow_only replica).
  Status apply(const nlohmann::json& version);

  // The report the agent records: {"name", "version", "epoch", "created_at", "received_at",
  // "product_version", "age_seconds"}.
  nlohmann::json report() const;
  // Seconds since the version held was received (or loaded at start, for the bootstrap).
  double ageSeconds() const;

  const std::string& path() const { return path_; }

 private:
  Replica() = default;
  void notify(const std::shared_ptr<const Snapshot>& snap);
  void followLoop();

  ReplicaOptions options_;
  std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;                  // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point received_at_;        // GUARDED_BY(mu_)
  SystemTime received_wall_{};                               // GUARDED_BY(mu_)
  std::vector<std::pair<int, Callback>> watchers_;           // GUARDED_BY(mu_)
  int next_watch_id_ = 1;                                    // GUARDED_BY(mu_)
  std::mutex apply_mu_;  // serialises apply() (one writer of the file at a time)
  bool stop_ = false;                                        // GUARDED_BY(mu_)
  std::thread follower_;
  // The replica file as open() found it, before reading it (0 = absent): the follower compares
  // against this, so a write between open() and the follower thread's start is not missed.
  int64_t opened_mtime_ns_ = 0;
  uint64_t opened_inode_ = 0;
};

// Routes the replica on an admin endpoint: PUT and POST /cms/replica (apply a pushed version,
// answer report()), GET /cms/replica (report(); with ?full=1 also the version itself, which
// `cms failover` uses to reseed a CMS copy from the newest replica).
void serveReplica(rpc::AdminServer& server, Replica& replica);

}  // namespace tandem::cms
