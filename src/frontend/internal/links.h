// Links: the internal front end <-> front end links (port 5270, TLS with the deployment CA,
// authenticated with the deployment secret), which carry stanzas between servers and tell each
// server which of its peers are alive (the health behind the ownership ring).
//
// Protocol (ours, XMPP-shaped): the connecting server sends
//   <stream:stream xmlns='urn:tandem:link' from='<its fqdn>' to='<peer fqdn>'>
// the acceptor answers with a header carrying an id, the connector sends
//   <handshake>hex(SHA-1(id + secret))</handshake>   (as XEP-0114)
// and gets <handshake/>. Then stanzas flow from connector to acceptor only; each server has its
// own outbound link to every other front-end server. A link that drops marks the peer
// unhealthy at once; the connector retries every second.
// Lives on the network thread (core.h).
#pragma once

#include <map>
#include <memory>
#include <string>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "frontend/internal/core.h"
#include "xmpp/transport.h"

namespace tandem::frontend {

inline constexpr const char* kNsLink = "urn:tandem:link";

class Links {
 public:
  explicit Links(Core& core) : core_(core) {}

  // Starts the listener and a connector per peer. Fails with Unavailable when the port cannot
  // be bound. `server_tls`: our certificate; `client_tls`: verifies peers against the CA.
  Status start(std::shared_ptr<asio::ssl::context> server_tls,
               std::shared_ptr<asio::ssl::context> client_tls);
  // Closes everything (shutdown).
  void stop();

  bool isUp(const std::string& fqdn) const;
  // Queues `stanza` on the link to `fqdn`; false when that link is not up.
  bool send(const std::string& fqdn, const xml::Element& stanza);
  // Peers and whether their link is up (status pages).
  std::map<std::string, bool> peerStates() const;
  // True once every connector has made its first attempt (so ownership is settled).
  bool settled() const { return attempts_done_ >= peers_.size(); }

 private:
  struct Peer {
    PeerServer info;
    std::shared_ptr<xmpp::Transport> transport;  // shared: in-flight I/O holds a copy
    bool up = false;
    bool writing = false;
    bool tried = false;
    std::string out;
  };
  asio::awaitable<void> connectLoop(std::shared_ptr<Peer> peer);
  asio::awaitable<bool> connectOnce(Peer& peer);
  asio::awaitable<void> flush(std::shared_ptr<Peer> peer);
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> serveInbound(asio::ip::tcp::socket socket);

  Core& core_;
  std::shared_ptr<asio::ssl::context> server_tls_, client_tls_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::map<std::string, std::shared_ptr<Peer>> peers_;
  size_t attempts_done_ = 0;
  bool stopped_ = false;
};

}  // namespace tandem::frontend
