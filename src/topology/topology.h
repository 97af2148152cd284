// The topology model: the typed form of a topology file (DESIGN.md §8, a fixed contract).
//
// A Topology is a plain value: loaded once, then read-only and safe to share between threads.
// Every element keeps the 1-based line it came from so that validation and tools can point
// operators at the file. Loading and validation live in loader.h and validator.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tandem::topology {

struct Site {
  std::string name;
  std::vector<std::string> low_latency_to;  // sites whose primary chat store this site may serve
  int line = 0;
};

struct LogShipping {
  std::string to;     // the backup store (restoring standby in another site)
  std::string share;  // the backup share directory (WAL archive + full backups)
  int interval_s = 5;  // archive interval: the log-shipping RPO bound, in seconds
  int line = 0;
};

struct Store {
  std::string name;  // unique; the host name in a multi-host deployment
  std::string site;
  std::string address;  // PostgreSQL on :5432, sqlagent admin on :8443
  std::string mirror;   // optional synchronous standby in the same site ("" = none)
  std::string witness;  // optional witness store ("" = none)
  bool witness_only = false;  // an agent with no database: only votes for failover
  std::optional<LogShipping> log_shipping;
  int line = 0;
};

struct Server {
  std::string fqdn;
  std::string address;
  std::string site;  // defaults to the pool's site when the file leaves it out
  int line = 0;
};

enum class PoolRole { kFrontend, kChat, kEdge };

struct Pool {
  std::string fqdn;
  PoolRole role = PoolRole::kFrontend;
  std::string site;
  std::vector<Server> servers;
  // frontend
  std::string store;        // back end (rtc, and xds when cms)
  std::string backup_pool;  // paired pool in another site
  std::string edge_pool;
  bool cms = false;
  // chat
  std::string backup_store;   // log-shipping target in the other site
  std::string backup_mirror;  // mirror installed for backup_store after failover
  std::string frontend_pool;  // the front-end pool the chat servers attach to
  std::vector<std::string> active_servers;
  // edge
  std::string next_hop;
  bool federation = false;
  int line = 0;
};

struct User {
  std::string name;
  std::string pool;
  std::string password;
  int line = 0;
};

struct Room {
  std::string name;
  std::string category = "general";
  int line = 0;
};

struct Topology {
  std::string file;  // the path it was loaded from (for messages)
  std::string domain;
  std::vector<Site> sites;
  std::vector<Store> stores;
  std::vector<Pool> pools;
  std::vector<User> users;
  std::vector<Room> rooms;

  // Lookups; nullptr when absent.
  const Site* findSite(const std::string& name) const;
  const Store* findStore(const std::string& name) const;
  const Pool* findPool(const std::string& fqdn) const;
  // The server with this FQDN and the pool that holds it.
  const Server* findServer(const std::string& fqdn, const Pool** pool = nullptr) const;

  // The pool that hosts the CMS (cms: true); nullptr when none.
  const Pool* cmsPool() const;
  // The MUC service name of a chat pool: its FQDN (e.g. chat.example.test).
  std::vector<const Pool*> poolsWithRole(PoolRole role) const;
  // The store whose mirror is `name`, or nullptr.
  const Store* principalOf(const std::string& mirror_name) const;
};

const char* poolRoleName(PoolRole role);  // "frontend" | "chat" | "edge"

// The model as JSON (the schema of `tandemctl topology show --json`).
nlohmann::json toJson(const Topology& topology);

}  // namespace tandem::topology
