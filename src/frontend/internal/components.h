// Components: the component port (5347, XEP-0114) where chat servers attach, and routing of
// stanzas for a chat pool's domain to the chat server that owns the room.
//
// See docs/architecture.md "Component protocol" for the contract with the chat servers.
// Room ownership: HashRing(active servers of the chat pool).ownerOf(bare room JID, or the
// service domain itself). Active servers come from the CMS replica setting
// chat.<pool>.active_servers when the server has one, else from the topology.
// Lives on the network thread (core.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>

#include "frontend/internal/core.h"
#include "xmpp/transport.h"

namespace tandem::frontend {

class Components {
 public:
  explicit Components(Core& core) : core_(core) {}

  // Starts the listener (plain TCP, as XEP-0114). Unavailable when the port cannot be bound.
  Status start();
  void stop();

  // Routes a stanza addressed to `chat_pool` (the domain or a room in it). From a client or a
  // component: to the owner's local connection, else over a link to a front end of the chat
  // pool's front-end pool. From a link: local connection only, else an error reply.
  void route(xml::Element stanza, const std::string& chat_pool, Origin origin);

  // The owner of `room_bare` (a room JID or the service domain) in `chat_pool`.
  std::string ownerOf(const std::string& chat_pool, const std::string& room_bare) const;
  // Overrides the active servers of a chat pool (from the CMS replica).
  void setActiveServers(const std::string& chat_pool, std::vector<std::string> servers);
  std::vector<std::string> activeServers(const std::string& chat_pool) const;

  struct ConnectionInfo {
    std::string chat_pool, server, remote;
  };
  std::vector<ConnectionInfo> connections() const;

 private:
  struct Conn {
    std::string chat_pool, server, remote;
    std::unique_ptr<xmpp::Transport> transport;
    std::string out;
    bool writing = false;
  };
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> serve(asio::ip::tcp::socket socket);
  asio::awaitable<void> flush(std::shared_ptr<Conn> c);
  void sendTo(const std::shared_ptr<Conn>& c, const xml::Element& st);

  Core& core_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::map<std::string, std::shared_ptr<Conn>> conns_;  // key: chat server FQDN
  std::map<std::string, std::vector<std::string>> active_override_;
  bool stopped_ = false;
};

}  // namespace tandem::frontend
