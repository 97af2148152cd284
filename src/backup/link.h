// A backup link: pool P's user data (its store's `rtc`) copied into the store of its backup pool
// Q (database `rtc_backup`), and the names both ends use (docs/backup-service.md "Names").
//
// Values; no I/O except linkFor's reading of nothing but the topology. Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "topology/topology.h"

namespace tandem::backup {

// The Backup Service's modules (the reference system's -BackupModule values).
enum class Module { kUserData, kCms };
const char* moduleName(Module m);  // "UserData" | "Cms"
// Case-insensitive; InvalidArgument naming the known modules otherwise.
Result<Module> parseModule(const std::string& name);

struct Link {
  std::string pool;                           // P: the pool whose users' data is copied
  std::string backup_pool;                    // Q: the pool whose store holds the copy
  std::string source_store, target_store;     // store names of P and Q
  std::vector<std::string> source_addresses;  // P's store and mirror (libpq multi-host)
  std::vector<std::string> target_addresses;  // Q's store and mirror
  std::string password;                       // the deployment secret
  std::string source_db = "rtc";              // P's user data
  std::string copy_db = "rtc_backup";         // the copy, in Q's store

  // "tandem_backup_<target store>": the replication slot on P and the subscription in the copy
  // (one name, so each finds the other in pg_stat_replication).
  std::string slotName() const;
  // "tandem_backup": the publication in P's `rtc`.
  static constexpr const char* kPublication = "tandem_backup";
  // "pool1.example.test -> pool2.example.test (sql1 -> sql2/rtc_backup)".
  std::string describe() const;
};

// The link that copies `pool`'s data into its backup pool's store. InvalidArgument when `pool`
// is not a front-end pool of the topology or has no backup pool or either has no store.
Result<Link> linkFor(const topology::Topology& topology, const std::string& pool,
                     const std::string& password);

// The link whose copy lives in `pool`'s store (its partner's data), same errors.
Result<Link> importLinkFor(const topology::Topology& topology, const std::string& pool,
                           const std::string& password);

}  // namespace tandem::backup
