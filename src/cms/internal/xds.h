// The xds database: schema, versions, epoch, lease, agents, replica reports, journal (internal).
//
// One Xds is one connection to one copy of xds (a Location: the store holding it and its
// mirror). Not thread-safe: one owner thread. Calls reconnect once when the connection broke.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cms/version.h"
#include "common/status.h"
#include "store/connection.h"
#include "topology/topology.h"

namespace tandem::cms::internal {

// Where a copy of xds lives.
struct Location {
  std::string role;  // "primary" (the pool with cms: true) | "standby" (its backup pool)
  std::string pool;
  std::string store;
  std::vector<std::string> addresses;  // the store, then its mirror
};

// Primary first; the standby only when the CMS pool has a backup pool with another store.
// Empty when the topology has no CMS pool.
std::vector<Location> locationsOf(const topology::Topology& t);

// The CMS location on `pool`'s store (among locationsOf). nullopt when `pool` is neither the CMS
// pool nor its backup pool.
std::optional<Location> locationOfPool(const topology::Topology& t, const std::string& pool);

// Whether the PostgreSQL at `address` answers and is writable (not in recovery): the principal
// of its mirrored store. Unavailable when it does not answer.
Result<bool> isWritable(const std::string& address, const std::string& password);

// Drops database xds on `loc`'s writable member, ending its connections first (install-db
// --clean). OK when there is none.
Status dropXds(const Location& loc, const std::string& password);

// The deployment secret (secret/token), trimmed. NotFound with a hint when missing.
Result<std::string> readSecret(const std::string& state_dir);

struct LeaseInfo {
  std::string holder;
  std::optional<SystemTime> expires_at;
  bool valid = false;  // not expired
  int64_t term = 0;
};

struct ReplicaRow {
  std::string fqdn;
  int64_t version = 0, epoch = 0;
  std::optional<SystemTime> version_created_at, reported_at;
  std::string product_version, last_error;
};

class Xds {
 public:
  // Connects to database xds at the writable member of `loc`. With `create`, first creates the
  // database and applies migrations. Errors: Unavailable (store unreachable), NotFound (no xds
  // there and not `create`).
  static Result<std::unique_ptr<Xds>> open(const Location& loc, const std::string& password,
                                           bool create);
  const Location& location() const { return loc_; }
  store::Connection& conn();

  // -1 when this copy was never given an epoch.
  Result<int64_t> epoch();
  Status setEpoch(int64_t epoch);
  Result<std::optional<std::string>> meta(const std::string& key);
  Status setMeta(const std::string& key, const std::string& value);

  Result<std::optional<Version>> latest(bool with_document = true);
  Result<std::optional<Version>> get(int64_t number);
  // Versions after `after`, oldest first (limit rows), or with newest_first the newest `limit`.
  Result<std::vector<Version>> list(int64_t after, int limit, bool with_document,
                                    bool newest_first = false);
  // Inserts a version as given (number, epoch, created_at kept; created_at epoch-zero = now()).
  // Conflict when the number exists.
  Result<Version> insert(const Version& v);
  // Deletes versions with number > `after` (standby resync only).
  Status truncateAfter(int64_t after);

  // Takes or renews the master lease for `holder`; true when held afterwards.
  Result<bool> acquireLease(const std::string& holder, std::chrono::milliseconds ttl);
  Status releaseLease(const std::string& holder);
  Result<LeaseInfo> lease();

  Status heartbeatAgent(const std::string& fqdn, const std::string& pool);
  // Agents heard from within `recent`.
  Result<std::vector<std::string>> agents(std::chrono::milliseconds recent);

  Status recordReport(const std::string& fqdn, const nlohmann::json& report);
  Status recordPushError(const std::string& fqdn, const std::string& error);
  Result<std::map<std::string, ReplicaRow>> replicas();

  Status appendJournal(const nlohmann::json& entry);
  Result<std::vector<nlohmann::json>> journal(const std::string& run);

 private:
  Xds() = default;
  Result<store::QueryResult> exec(const std::string& sql,
                                  const std::vector<std::optional<std::string>>& params = {});
  Location loc_;
  std::string conninfo_;
  std::unique_ptr<store::Connection> conn_;
};

// The active copy: the reachable one with the highest epoch (>= 1); a tie goes to the primary.
struct Active {
  std::unique_ptr<Xds> xds;
  int64_t epoch = 0;
  // Per location that was not usable: "store `sql2`: <why>".
  std::vector<std::string> problems;
};
// With `bootstrap`, creates xds with epoch 1 on the primary when no copy has an epoch yet.
// Errors: Unavailable "CMS unreachable: ..." listing each location's problem; NotFound when
// nothing was ever created and not `bootstrap`; FailedPrecondition without a CMS pool.
Result<Active> findActive(const topology::Topology& t, const std::string& password,
                          bool bootstrap);

// SQL expression rendering a timestamptz column as formatUtc() text.
std::string utcSql(const std::string& column);

}  // namespace tandem::cms::internal
