// C2sSession: one client connection (RFC 6120/6121) from accept to close, and the logical
// session that stream management (XEP-0198) keeps alive across a lost connection.
//
// Lives on the network thread (see core.h). Stages: connected -> TLS -> authenticated -> bound.
// Owned by shared_ptr: by its own coroutines while connected, by Core's maps while bound or
// detached.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "frontend/internal/core.h"
#include "xml/stream_parser.h"
#include "xmpp/sasl.h"
#include "xmpp/transport.h"

namespace tandem::frontend {

class C2sSession : public std::enable_shared_from_this<C2sSession> {
 public:
  C2sSession(Core& core, asio::ip::tcp::socket socket, bool direct_tls,
             std::shared_ptr<asio::ssl::context> tls);
  // A session proxied to this server (its owner) by `via`, whose client connection (from
  // `remote`, already over TLS) is relay `via_id` there (proxy.h).
  C2sSession(Core& core, std::string via, std::string via_id, std::string remote, bool direct_tls);
  ~C2sSession();

  // Starts the connection's coroutine. Call once.
  void start();

  // ---- owner side of a proxied session (proxy.h) ----
  // Starts the session with the client's SASL <auth/>. Call once instead of start().
  void startProxied(xml::Element auth);
  // A client event relayed by the via server: "header", "in" or "close" (`how`: clean, lost,
  // error). Handled in order, after the events before it.
  void onProxiedEvent(const std::string& op, xml::Element el, const std::string& how);
  // The link to the via server dropped: the connection is lost (SM may resume it elsewhere).
  void onViaGone();
  const std::string& viaServer() const { return via_; }
  // Fuzzing (fuzz/frontend_c2s_stanzas.cc): makes this proxied session authenticated and bound
  // as `user`@domain/`resource` without SASL or the store, so stanzas go straight to onBound.
  void bindForTest(const std::string& user, const std::string& resource);

  // ---- via side: this connection is relayed to the owner (proxy.h) ----
  void onRelayOutput(const std::string& data) { writeRaw(data); }
  void onRelayReset() { parser_.reset(); }
  void onRelayBound(const std::string& jid) { relay_jid_ = jid; }
  // The owner ended the session: close the client's stream once its output is written.
  void onRelayEnd();
  // The owner's link dropped: end the client's stream so that it reconnects.
  void onRelayOwnerGone();
  const std::string& relayOwner() const { return relay_owner_; }
  const std::string& relayJid() const { return relay_jid_; }

  const xmpp::Jid& jid() const { return jid_; }
  bool isBound() const { return bound_; }
  // Sent available presence and not unavailable since (RFC 6121 §4.4 "available resource").
  bool isAvailable() const { return available_; }
  int priority() const { return priority_; }
  const xml::Element& presence() const { return presence_; }
  bool carbons() const { return carbons_; }
  bool interested() const { return interested_; }  // requested the roster
  bool isDetached() const { return !attached(); }
  std::string remoteAddress() const { return remote_; }
  std::chrono::system_clock::time_point since() const { return since_; }
  const std::string& smId() const { return sm_id_; }

  // Queues a stanza for the client (counted and kept for resending under stream management).
  void send(const xml::Element& stanza);
  // Ends the stream with a stream error and closes the connection; the session ends (no SM
  // resumption). `other_host` makes it a see-other-host redirect.
  void closeWithError(const std::string& condition, const std::string& text = "",
                      const std::string& other_host = "");

  // Presence bookkeeping used by Core.
  void setPresence(xml::Element p, bool available, int priority) {
    presence_ = std::move(p);
    available_ = available;
    priority_ = priority;
  }
  bool initialPresenceSent() const { return initial_presence_sent_; }
  void markInitialPresence() { initial_presence_sent_ = true; }
  // Full JIDs this resource sent directed available presence to since its last broadcast
  // unavailable (RFC 6121 §4.6.3): they are told when it goes unavailable or its session ends.
  std::set<std::string>& directedTo() { return directed_to_; }

 private:
  struct Event {
    enum Kind { kOpen, kStanza, kClose, kLost } kind;
    xml::Element element;
    std::string how;  // kLost (proxied): clean, lost, error
  };
  enum class Stage { kConnected, kSecured, kAuthenticated, kBound };

  asio::awaitable<void> run();
  // Owner side of a proxied session: handles queued events in order.
  asio::awaitable<void> drainProxied();
  // Has a client connection: its own transport, or a relay at the via server.
  bool attached() const { return transport_ || !via_id_.empty(); }
  // Restarts the XML stream after STARTTLS / SASL success (RFC 6120 §5.3.1, §6.4.6).
  void restartStream();
  // Via side: hands the connection to `owner` (proxy.h); false when its link is down.
  bool startRelay(const std::string& owner, const xml::Element& auth);
  asio::awaitable<void> handle(Event ev);
  asio::awaitable<void> onStreamOpen(const xml::Element& header);
  asio::awaitable<void> onPreBind(xml::Element st);
  // Signing in (c2s_auth.cc).
  asio::awaitable<void> onAuth(const xml::Element& auth);
  asio::awaitable<void> onSaslResponse(const xml::Element& resp);
  asio::awaitable<void> saslSuccess(std::string_view additional);
  asio::awaitable<void> saslFailure(const char* condition);
  // Redirects when `user` belongs to another pool or server; true when it did.
  // `auth`: the SASL <auth/> being handled (the connection may then be proxied instead);
  // `header`: called at stream open, where proxying waits for <auth/>.
  asio::awaitable<bool> redirectIfNotOwner(const std::string& user, const xml::Element* auth = nullptr,
                                           bool header = false);
  asio::awaitable<void> onBind(const xml::Element& iq);
  asio::awaitable<void> onResume(const xml::Element& resume);
  asio::awaitable<void> onBound(xml::Element st);            // c2s_stanzas.cc
  asio::awaitable<void> onOwnIq(xml::Element iq);            // c2s_stanzas.cc
  asio::awaitable<void> onRosterIq(xml::Element iq);         // roster.cc
  asio::awaitable<void> onBlockingIq(xml::Element iq);       // c2s_stanzas.cc
  void onSmEnable(const xml::Element& enable);
  void onSmAck(uint32_t h);
  void writeRaw(std::string data);
  asio::awaitable<void> flush();
  asio::awaitable<void> drained();
  // Refills both token buckets and takes bytes and stanzas; false when either runs dry.
  bool takeTokens(size_t bytes, size_t stanzas);
  void onConnectionLost(bool clean);
  void endSession(bool redeliver);
  // Moves the state of a detached session (same user, SM id) into this one.
  void adopt(C2sSession& old);

  Core& core_;
  // Shared so that a read or write in flight keeps the stream alive after the session lets go.
  std::shared_ptr<xmpp::Transport> transport_;
  bool direct_tls_;
  std::string remote_;
  xml::StreamParser parser_;
  std::deque<Event> events_;
  bool reset_ = false;  // parser reset while handling events: drop the rest
  Stage stage_ = Stage::kConnected;
  std::string stream_id_;
  std::string out_;
  bool writing_ = false;
  bool closing_ = false;
  bool ended_ = false;
  double tokens_;          // bytes
  double stanza_tokens_;   // stanzas
  std::chrono::steady_clock::time_point last_refill_;
  asio::steady_timer auth_timer_;
  asio::steady_timer resume_timer_;
  // Owner side of a proxied session: the via server and its relay id (empty: not proxied, or
  // the via connection is gone); `proxied_` stays true for the session's life.
  std::string via_, via_id_;
  bool proxied_ = false;
  bool draining_ = false;
  // Via side: the owner this connection is relayed to, its relay id, the bound JID it reported.
  std::string relay_owner_, relay_id_, relay_jid_;
  bool relay_ended_ = false;

  // SASL
  std::string mechanism_;
  std::optional<xmpp::ScramServer> scram_;
  std::string sasl_user_;
  int auth_failures_ = 0;

  // Session
  std::string user_;  // localpart
  xmpp::Jid jid_;
  bool bound_ = false;
  bool available_ = false;
  bool initial_presence_sent_ = false;
  int priority_ = 0;
  xml::Element presence_;
  bool carbons_ = false;
  bool interested_ = false;
  std::set<std::string> directed_to_;
  std::chrono::system_clock::time_point since_ = std::chrono::system_clock::now();

  // Stream management (XEP-0198)
  bool sm_enabled_ = false;
  bool sm_resumable_ = false;
  std::string sm_id_;
  uint32_t sm_in_ = 0;    // stanzas handled from the client
  uint32_t sm_out_ = 0;   // stanzas sent to the client
  uint32_t sm_acked_ = 0;  // last h the client acknowledged
  std::deque<xml::Element> sm_unacked_;  // oldest first: stanzas sm_acked_+1 .. sm_out_
  uint32_t sm_last_request_ = 0;
};

}  // namespace tandem::frontend
