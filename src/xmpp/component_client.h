// ComponentClient: the client side of XEP-0114 (Jabber Component Protocol), used by chat
// servers to attach to every front end of their front-end pool.
//
// Protocol (docs/architecture.md "Component protocol"): plain TCP to the front end's port 5347;
// we open `<stream:stream xmlns='jabber:component:accept' to='<service>' from='<identity>'>`
// where `service` is the MUC service (the chat pool FQDN) and `identity` our server FQDN, so the
// front end can tell the chat servers of one service apart and route each room to its owner;
// the front end answers with a header carrying a stream id; we send
// `<handshake>hex(SHA1(id + secret))</handshake>` and are attached when `<handshake/>` comes
// back. A lost connection (or a stream error) is retried with backoff until stop().
//
// Thread rule: every method must be called on the executor given to the constructor (one
// strand/thread); the handlers also run there.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <asio.hpp>

#include "common/status.h"
#include "xml/element.h"

namespace tandem::xmpp {

struct ComponentOptions {
  std::string host;      // front end address, e.g. "127.0.1.1"
  int port = 5347;
  std::string service;   // MUC service JID we serve, e.g. "chat.example.test" (stream `to`)
  std::string identity;  // our server FQDN, e.g. "chat1a.example.test" (stream `from`)
  std::string secret;    // the deployment secret (state dir secret/token)
  // Reconnection backoff: doubles from min to max. Default 100 ms → 2 s: a front end that
  // restarts is rejoined within ~2 s, and one that is down costs one attempt every 2 s.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{2000};
  // Largest stanza accepted from the front end, in bytes. Default 1 MiB.
  size_t max_stanza_bytes = 1024 * 1024;
  // Stanzas queued while not attached are dropped beyond this many (oldest first). Default 0:
  // nothing is queued while detached, since routing may change meanwhile.
  size_t max_queue_detached = 0;
};

// hex(SHA1(stream_id + secret)), lower case (XEP-0114 §3).
std::string componentHandshakeDigest(const std::string& stream_id, const std::string& secret);

class ComponentClient : public std::enable_shared_from_this<ComponentClient> {
 public:
  using StanzaHandler = std::function<void(xml::Element stanza)>;
  // Called with true once attached (handshake accepted), with false when the link is lost.
  // `why` says what went wrong on a loss (one sentence; "" on attach).
  using StateHandler = std::function<void(bool attached, const std::string& why)>;

  static std::shared_ptr<ComponentClient> create(asio::any_io_executor ex, ComponentOptions o,
                                                 StanzaHandler on_stanza, StateHandler on_state);

  // Starts connecting (and reconnecting) in the background. Idempotent.
  void start();
  // Closes the link and stops reconnecting. Idempotent; handlers are not called afterwards.
  void stop();
  // Queues `stanza` for the front end. Returns false (and drops it) when not attached.
  bool send(const xml::Element& stanza);
  bool send(std::string serialized);

  bool isAttached() const { return attached_; }
  const ComponentOptions& options() const { return options_; }
  // Stanzas received / sent since creation, for metrics.
  uint64_t received() const { return received_; }
  uint64_t sent() const { return sent_; }
  // Stanzas accepted by send() but not yet written when their connection was lost (they are
  // gone: nothing is re-sent on the next connection, since routing may change meanwhile).
  uint64_t discarded() const { return discarded_; }

 private:
  ComponentClient(asio::any_io_executor ex, ComponentOptions o, StanzaHandler s, StateHandler st);
  asio::awaitable<void> runLoop();
  asio::awaitable<std::string> session();  // one connection; returns why it ended
  asio::awaitable<void> writer();

  asio::any_io_executor ex_;
  ComponentOptions options_;
  StanzaHandler on_stanza_;
  StateHandler on_state_;
  std::unique_ptr<asio::ip::tcp::socket> socket_;
  asio::steady_timer wake_writer_;
  asio::steady_timer backoff_timer_;
  std::deque<std::string> out_;
  bool started_ = false;
  bool stopped_ = false;
  bool attached_ = false;
  bool writing_ = false;
  uint64_t received_ = 0, sent_ = 0, discarded_ = 0;
};

}  // namespace tandem::xmpp
