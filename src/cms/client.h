// cms::Client: read and change the CMS (publish a topology, get/set settings, history, status)
// from tandemctl, runbooks and `deploy up`.
//
// The CMS lives in database `xds` on the back-end store of the pool with `cms: true` (the
// "primary location"), with a standby copy on the store of that pool's backup pool (the
// "standby location"). Each copy carries an epoch; the active CMS is the reachable copy with the
// highest epoch (`cms failover` raises it, see failover.h). A Client finds the active copy when
// it connects and talks only to it (libpq multi-host over the store and its mirror).
//
// Writes are new versions (version.h): a write reads the newest version, builds the next one and
// inserts it with number+1 in one transaction; when another writer took that number meanwhile
// the write fails with Conflict (publish) or is redone on the new newest version (setSetting,
// up to 5 times). Servers see a change when the master's file transfer agent has pushed it to
// their replica (within about a second).
//
// Usage (deploy up, once the CMS pool's store is writable):
//   auto cms = cms::Client::connect(topology, state_dir, "deploy");   // creates xds if absent
//   auto v = (*cms)->publish(yaml_text, "topology.yaml");             // version 1
// Runbooks:
//   (*cms)->setSetting("chat.chat.example.test.state", "FailedOver");
//
// Thread-compatible: one Client per thread. Every call blocks on PostgreSQL.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cms/version.h"
#include "common/status.h"
#include "topology/topology.h"

namespace tandem::cms {

namespace internal {
class Xds;
}

// A replica as the CMS last heard from it (replication-status).
struct ReplicaReport {
  std::string fqdn;
  std::string pool;
  int64_t version = 0;           // held by the replica; 0 = never reported
  int64_t epoch = 0;
  bool up_to_date = false;       // holds the current version
  std::optional<SystemTime> last_report;          // last status report received
  std::optional<SystemTime> last_update_created;  // creation time of the version it holds
  std::string product_version;
  std::string last_error;        // why the last push/poll failed ("" when it succeeded)
};

// `cms status`.
struct CmsStatus {
  std::string active_store;      // store holding the active xds, e.g. "sql1"
  std::string active_pool;       // the pool whose back end that is
  int64_t epoch = 0;
  int64_t current_version = 0;
  std::optional<SystemTime> current_version_created;
  std::string master;            // FQDN holding the master lease; "" when none (expired)
  std::optional<SystemTime> master_lease_expires;
  std::vector<std::string> file_transfer_agents;  // servers whose agent heartbeat is recent
  std::string standby_store;     // the other copy ("" when the topology has no backup pool)
  int64_t standby_version = -1;  // -1 when unknown/unreachable
  std::string standby_error;     // why the last standby write failed
  std::optional<SystemTime> standby_synced_at;
};

class Client {
 public:
  // Finds the active xds for `topology` using the deployment secret in `state_dir`
  // (secret/token). When no copy exists yet, creates xds on the primary location (database,
  // migrations, epoch 1). `author` is recorded on every version this client writes.
  // Errors: Unavailable "CMS unreachable: ..." naming both stores when neither answers;
  // NotFound when the secret is missing; FailedPrecondition when the topology has no CMS pool.
  static Result<std::unique_ptr<Client>> connect(const topology::Topology& topology,
                                                 const std::string& state_dir,
                                                 const std::string& author);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The newest version; NotFound when nothing was ever published.
  Result<Version> current();
  // One version; NotFound when absent.
  Result<Version> version(int64_t number);
  // The newest `limit` versions, newest first, without their documents (history listing).
  Result<std::vector<Version>> history(int limit = 20);

  // Validates `yaml` (every problem, InvalidArgument, nothing written) and stores it as the next
  // version, keeping the current settings (reconciled with the new topology). Conflict when
  // another version was published meanwhile: re-read and retry. Returns the new version.
  Result<Version> publish(const std::string& yaml, const std::string& file);

  // The value of a setting in the newest version (null when unset). NotFound when nothing was
  // ever published.
  Result<nlohmann::json> getSetting(const std::string& key);
  // Validates (InvalidArgument, nothing written) and stores a new version with `key` = `value`
  // (null removes a users.<name> key). Setting the value it already has writes nothing and
  // returns the current version. With `what_if`, validates and returns the version it would
  // write (number = next) without writing.
  Result<Version> setSetting(const std::string& key, const nlohmann::json& value,
                             bool what_if = false);
  // Several keys in one version (e.g. a runbook step), same rules.
  Result<Version> setSettings(const nlohmann::json& changes, bool what_if = false);

  // Master, agents, versions, standby (see CmsStatus).
  Result<CmsStatus> status();
  // The replicas of every server of the current topology as last reported.
  Result<std::vector<ReplicaReport>> replicationStatus();

  // Runbook journal (kept in xds, outside versions): append an entry {"run", "runbook", "step",
  // "state", "outcome", ...} (the time is added); read a run's entries, oldest first.
  Status appendJournal(const nlohmann::json& entry);
  Result<std::vector<nlohmann::json>> journal(const std::string& run_id);

  // The store name of the active xds.
  const std::string& activeStore() const;

  // For failover.h and master.h.
  internal::Xds& xdsForInternalUse() { return *xds_; }

 private:
  Client() = default;
  std::unique_ptr<internal::Xds> xds_;
  topology::Topology topology_;
  std::string author_;
};

}  // namespace tandem::cms
