// ChatServer: one persistent chat server (`tandemd --role chat`): the MUC service, its store
// connections, its component links to the front ends, and the CMS settings it follows.
//
// What it does, in order (docs/persistent-chat.md "A chat server's life"):
// 1. Reads its pool from the CMS replica (never the CMS itself): state (Normal → the pool's
//    `store` + mirror; FailedOver → `backup_store` + `backup_mirror`), active servers and the
//    front-end pool (setting `chat.<pool>.frontend_pool`, else the topology's).
// 2. While it is on the active server list: makes sure `mgc`/`mgccomp` exist (migrations),
//    creates the topology's demo rooms (idempotent), attaches as an XEP-0114 component to every
//    front end of the front-end pool, serves the rooms the hash ring gives it, and feeds the
//    compliance queue. While it is not: it holds no store connection and no component link,
//    and says so in status().
// 3. Follows every replica change within the replica's push delay: a state change repoints the
//    connection pools (setConninfo: in-flight work reconnects to the new store); an active-list
//    change moves rooms (evicted occupants rejoin the new owner).
// Thread rule: start()/stop() from one thread; status() and refreshMetrics() from any thread
// (they hop to the service's own thread and wait).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cms/replica.h"
#include "common/status.h"
#include "rpc/metrics.h"

namespace tandem::chat {

struct ChatServerOptions {
  std::string server;     // this chat server's FQDN
  std::string state_dir;  // secret/token, compliance/ (for the adapter)
  // Component port on each front end; 5347 by convention (docs/architecture.md).
  int component_port = 5347;
  // Connections per store pool (mgc). Default 6: the writer, the compliance feed and reads.
  size_t mgc_connections = 6;
};

class ChatServer {
 public:
  // Reads the token and the replica's current snapshot; fails with NotFound when `server` is
  // not a chat server of the topology, or when the deployment secret is missing. Binds nothing.
  // Requires: `replica` outlives the server.
  static Result<std::unique_ptr<ChatServer>> create(const ChatServerOptions& options,
                                                    cms::Replica& replica);
  ~ChatServer();

  // Starts the service thread, applies the current settings and watches the replica.
  Status start();
  // Detaches from the front ends, fails queued messages, joins every thread. Idempotent.
  void stop();

  // {"server", "pool", "service", "active", "state", "store": {"name", "addresses", "database"},
  //  "frontend_pool", "frontends": [{"server", "address", "attached"}], "rooms_owned": [...],
  //  "occupants", "messages_stored", "messages_broadcast", "commit": {...}, "delivery": {"held",
  //  "undeliverable", "discarded_on_link_loss", "path_switches", "destinations"}, "reason"}.
  nlohmann::json status();
  // Gauges and counters (tandem_chat_*) for /metrics.
  void refreshMetrics(rpc::Metrics& m);
  // The health sentence: OK when serving or deliberately inactive; Unavailable when active but
  // attached to no front end or the store is unreachable.
  Status health();

  // Room administration for tandemctl (admin endpoint POST /rooms and POST /rooms/remove), done
  // by the MUC service when this server owns the room (muc_service.h adminAddRoom/RemoveRoom).
  // Blocks up to 10 s. Returns {"room", "created"|"removed", "server"}. Errors: InvalidArgument
  // (not a room name), Unavailable (another server serves the room, this one is not active, or
  // the service did not answer), FailedPrecondition (no such category), NotFound (remove: no
  // such room), the store's.
  Result<nlohmann::json> addRoom(const std::string& name, const std::string& category,
                                 const std::string& title);
  Result<nlohmann::json> removeRoom(const std::string& name);

 private:
  ChatServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::chat
