// The topology model: the typed form of a topology file (DESIGN.md §8, a fixed contract).
//
// A Topology is a plain value: loaded once, then read-only and safe to share between threads.
// Every element keeps the 1-based line it came from so that validation and tools can point
// operators at the file. Loading and validation live in loader.h and validator.h.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tandem::topology {

// The 1-based line of each key an element had in the file, so that a message can point at the
// offending field rather than at the element. List items are recorded as "key[i]" (0-based i),
// e.g. "active_servers[1]". Keys absent from the file have no entry.
using KeyLines = std::map<std::string, int>;

// The line of `key` in `lines`, or `fallback` when the file did not have it.
int lineOf(const KeyLines& lines, const std::string& key, int fallback);

struct Site {
  std::string name;
  std::vector<std::string> low_latency_to;  // sites whose primary chat store this site may serve
  int line = 0;
  KeyLines key_lines;
};

struct LogShipping {
  std::string to;     // the backup store (restoring standby in another site)
  std::string share;  // the backup share directory (WAL archive + full backups)
  int interval_s = 5;  // archive interval: the log-shipping RPO bound, in seconds
  int line = 0;
  KeyLines key_lines;
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
  KeyLines key_lines;
};

struct Server {
  std::string fqdn;
  std::string address;
  std::string site;  // defaults to the pool's site when the file leaves it out
  int line = 0;
  KeyLines key_lines;
};

enum class PoolRole { kFrontend, kChat, kEdge };

struct Pool {
  std::string fqdn;
  PoolRole role = PoolRole::kFrontend;
  // False when the file gave no valid role (already reported): `role` is then a placeholder
  // and rules that depend on this pool's role are skipped.
  bool role_known = true;
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
  KeyLines key_lines;
};

struct User {
  std::string name;
  std::string pool;
  std::string password;
  int line = 0;
  KeyLines key_lines;
};

struct Room {
  std::string name;
  std::string category = "general";
  int line = 0;
  KeyLines key_lines;
};

struct Topology {
  std::string file;  // the path it was loaded from (for messages)
  std::string domain;
  std::vector<Site> sites;
  std::vector<Store> stores;
  std::vector<Pool> pools;
  std::vector<User> users;
  std::vector<Room> rooms;
  KeyLines key_lines;  // lines of the top-level keys (domain, sites, ...)

  // Lookups; nullptr when absent.
  const Site* findSite(const std::string& name) const;
  const Store* findStore(const std::string& name) const;
  const Pool* findPool(const std::string& fqdn) const;
  // The server with this FQDN and the pool that holds it.
  const Server* findServer(const std::string& fqdn, const Pool** pool = nullptr) const;

  // The pool that hosts the CMS (cms: true); nullptr when none.
  const Pool* cmsPool() const;
  // Every pool of this role, in file order. (A chat pool's MUC service name is its FQDN.)
  std::vector<const Pool*> poolsWithRole(PoolRole role) const;
  // The store whose mirror is `name`, or nullptr.
  const Store* principalOf(const std::string& mirror_name) const;
};

const char* poolRoleName(PoolRole role);  // "frontend" | "chat" | "edge"
// The role named `name` ("frontend" | "chat" | "edge", exact); nullopt for anything else.
std::optional<PoolRole> parsePoolRole(const std::string& name);

// The site a server runs in: its own `site`, which the loader already defaults to its pool's
// site. nullptr when the server or its site is unknown (only in a topology that did not
// validate).
const Site* siteOfServer(const Topology& topology, const std::string& server_fqdn);

// The directory of a log-shipped store's backup share. A relative `share:` resolves against
// the state directory (docs/architecture.md, e.g. "share/pc1" -> "<state_dir>/share/pc1");
// an absolute one is returned as given. Pure string work: touches no file.
std::string resolveSharePath(const LogShipping& log_shipping, const std::string& state_dir);

// The model as JSON (the schema of `tandemctl topology show --json`).
nlohmann::json toJson(const Topology& topology);

}  // namespace tandem::topology
