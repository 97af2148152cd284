// C2sSession: the connection loop, reading and writing, stream events before binding, and the
// end of a connection or session; signing in (SASL, binding, resumption) is in c2s_auth.cc.
//
// - One coroutine reads, feeds the parser and handles the parsed events in order; writes go
//   through a buffer flushed by a second coroutine, so routing never waits on a slow client.
// - Hostile input ends only this stream, with the RFC 6120 stream error the parser or the rate
//   limiter names (not-well-formed, restricted-xml, policy-violation, ...).
// - Redirect (see-other-host) happens as soon as the user name is known: at SASL start. Or,
//   for clients that do not follow redirects, the connection is relayed to the owner from the
//   SASL <auth/> on (proxy.h): this object then only reads, rate-limits and parses (via side),
//   while a second C2sSession at the owner, fed over the internal link, holds the session.
#include "frontend/internal/c2s_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "frontend/internal/links.h"
#include "frontend/internal/proxy.h"
#include "xmpp/stanza.h"

namespace tandem::frontend {

using xml::Element;
namespace x = xmpp;

C2sSession::C2sSession(Core& core, asio::ip::tcp::socket socket, bool direct_tls,
                       std::shared_ptr<asio::ssl::context> tls)
    : core_(core),
      transport_(std::make_shared<x::Transport>(std::move(socket), std::move(tls))),
      direct_tls_(direct_tls),
      parser_(
          xml::StreamParser::Callbacks{
              [this](const Element& h) { events_.push_back({Event::kOpen, h, ""}); },
              [this](Element e) { events_.push_back({Event::kStanza, std::move(e), ""}); },
              [this] { events_.push_back({Event::kClose, Element(), ""}); }},
          xml::StreamParserLimits{core.config().max_stanza_bytes, 32}),
      tokens_(core.config().rate_burst_bytes),
      stanza_tokens_(core.config().rate_burst_stanzas),
      last_refill_(std::chrono::steady_clock::now()),
      auth_timer_(core.io()),
      resume_timer_(core.io()) {
  remote_ = transport_->remoteAddress();
}

C2sSession::C2sSession(Core& core, std::string via, std::string via_id, std::string remote,
                       bool direct_tls)
    : core_(core),
      direct_tls_(direct_tls),
      remote_(std::move(remote)),
      parser_(xml::StreamParser::Callbacks{[](const Element&) {}, [](Element) {}, [] {}}),
      tokens_(0),
      stanza_tokens_(0),
      last_refill_(std::chrono::steady_clock::now()),
      auth_timer_(core.io()),
      resume_timer_(core.io()),
      via_(std::move(via)),
      via_id_(std::move(via_id)),
      proxied_(true) {
  // The via server already did TLS and sent the header and features of the secured stream.
  stage_ = Stage::kSecured;
  stream_id_ = x::newId();
}

C2sSession::~C2sSession() = default;

void C2sSession::startProxied(Element auth) {
  core_.metrics().addCounter("tandem_frontend_proxied_sessions_total");
  auto self = shared_from_this();
  auth_timer_.expires_after(core_.config().auth_timeout);
  auth_timer_.async_wait([self](asio::error_code ec) {
    if (!ec && !self->bound_ && self->attached()) {
      self->closeWithError("connection-timeout", "authenticate and bind a resource in time");
    }
  });
  onProxiedEvent("in", std::move(auth), "");
}

void C2sSession::onProxiedEvent(const std::string& op, Element el, const std::string& how) {
  if (op == "header") {
    events_.push_back({Event::kOpen, std::move(el), ""});
  } else if (op == "in") {
    events_.push_back({Event::kStanza, std::move(el), ""});
  } else if (op == "close") {
    events_.push_back({Event::kLost, Element(), how});
  } else {
    return;
  }
  if (!draining_) core_.spawn(drainProxied(), "proxied session");
}

asio::awaitable<void> C2sSession::drainProxied() {
  auto self = shared_from_this();
  draining_ = true;
  while (!events_.empty()) {
    Event ev = std::move(events_.front());
    events_.pop_front();
    if (ev.kind == Event::kLost) {
      // The client's connection at the via server ended.
      if (via_id_.empty()) continue;  // already ended from this side
      core_.proxy().dropProxied(via_, via_id_);
      via_id_.clear();
      if (ev.how == "error") sm_resumable_ = false;  // a stream error ends the session
      onConnectionLost(ev.how == "clean");
      continue;
    }
    if (closing_ || via_id_.empty()) continue;
    try {
      co_await handle(std::move(ev));
    } catch (const std::exception& e) {
      spdlog::debug("proxied session {} via {}: {}", jid_.full(), via_, e.what());
      closeWithError("internal-server-error");
    }
  }
  draining_ = false;
}

void C2sSession::bindForTest(const std::string& user, const std::string& resource) {
  user_ = user;
  jid_ = x::Jid{user, core_.config().domain, resource};
  auto u = core_.onlineUser(jid_.bare());
  if (!u) {
    u = std::make_shared<UserState>();
    u->bare = jid_.bare();
  }
  bound_ = true;
  stage_ = Stage::kBound;
  core_.bindSession(shared_from_this(), u);
}

void C2sSession::onViaGone() {
  if (via_id_.empty()) return;
  via_id_.clear();
  onConnectionLost(false);
}

void C2sSession::restartStream() {
  if (proxied_) {
    // The parser is at the via server; our writes reach it in order, before the client's next
    // header can.
    if (!via_id_.empty()) core_.proxy().control(via_, via_id_, "reset");
    return;
  }
  parser_.reset();
  reset_ = true;
}

// ---------------------------------------------------------------------------------------------
// Via side of a proxied session

bool C2sSession::startRelay(const std::string& owner, const Element& auth) {
  std::string id = x::newId();
  if (!core_.proxy().openRelay(shared_from_this(), owner, id, auth)) return false;
  relay_owner_ = owner;
  relay_id_ = id;
  auth_timer_.cancel();  // the owner times the sign-in now
  spdlog::info("proxying a client of {} ({}) to {}", sasl_user_, remote_, owner);
  return true;
}

void C2sSession::onRelayEnd() {
  relay_ended_ = true;
  core_.proxy().dropRelay(relay_id_);
  if (!transport_ || closing_) return;
  closing_ = true;
  if (!writing_) transport_->close();  // else flush() closes once the output is written
}

void C2sSession::onRelayOwnerGone() {
  relay_ended_ = true;
  core_.proxy().dropRelay(relay_id_);
  closeWithError("reset", "the server holding this session (" + relay_owner_ +
                              ") is gone: sign in again");
}

void C2sSession::start() {
  core_.metrics().addCounter("tandem_frontend_connections_total");
  auto self = shared_from_this();
  auth_timer_.expires_after(core_.config().auth_timeout);
  auth_timer_.async_wait([self](asio::error_code ec) {
    if (!ec && !self->bound_ && self->transport_) {
      self->closeWithError("connection-timeout", "authenticate and bind a resource in time");
    }
  });
  core_.spawn(run(), "client session");
}

// ---------------------------------------------------------------------------------------------
// Reading and writing

bool C2sSession::takeTokens(size_t bytes, size_t stanzas) {
  const FrontendConfig& config = core_.config();
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  last_refill_ = now;
  tokens_ = std::min(config.rate_burst_bytes, tokens_ + elapsed * config.rate_bytes_per_s);
  stanza_tokens_ =
      std::min(config.rate_burst_stanzas, stanza_tokens_ + elapsed * config.rate_stanzas_per_s);
  tokens_ -= static_cast<double>(bytes);
  stanza_tokens_ -= static_cast<double>(stanzas);
  return tokens_ >= 0 && stanza_tokens_ >= 0;
}

asio::awaitable<void> C2sSession::run() {
  auto self = shared_from_this();
  bool clean = false;
  auto t = transport_;  // keeps the stream alive while a read is in flight
  try {
    if (direct_tls_) {
      co_await t->handshakeServer();
      stage_ = Stage::kSecured;
    }
    while (transport_ && !closing_) {
      // No buffer per connection (most are idle, issue #6): read into the thread's buffer and
      // hand it all to the parser before the next suspension point. Drain before waiting.
      std::span<char> buf = x::threadReadBuffer();
      size_t n = t->readNow(buf.data(), buf.size());
      if (n == 0) {
        co_await t->waitReadable();
        continue;
      }
      Status st = parser_.feed(std::string_view(buf.data(), n));
      // Charged after parsing, so the stanzas of this read are counted; none is handled when
      // either bucket runs dry.
      size_t stanzas = std::count_if(events_.begin(), events_.end(),
                                     [](const Event& ev) { return ev.kind == Event::kStanza; });
      if (!takeTokens(n, stanzas)) {
        core_.metrics().addCounter("tandem_frontend_policy_violations_total");
        closeWithError("policy-violation", "you are sending too fast");
        break;
      }
      while (!events_.empty() && !closing_) {
        Event ev = std::move(events_.front());
        events_.pop_front();
        if (ev.kind == Event::kClose) clean = true;
        if (!relay_id_.empty()) {
          if (ev.kind == Event::kOpen) core_.proxy().forward(relay_owner_, relay_id_, "header", &ev.element);
          if (ev.kind == Event::kStanza) core_.proxy().forward(relay_owner_, relay_id_, "in", &ev.element);
          continue;
        }
        co_await handle(std::move(ev));
        if (reset_) {
          events_.clear();
          reset_ = false;
        }
      }
      if (clean) {
        writeRaw("</stream:stream>");
        break;
      }
      if (!st.isOk() && !closing_) {
        core_.metrics().addCounter("tandem_frontend_bad_input_total");
        closeWithError(parser_.errorCondition(), st.message());
      }
    }
  } catch (const std::exception& e) {
    spdlog::debug("client {} ({}): connection ended: {}", jid_.full(), remote_, e.what());
  }
  if (transport_ && !writing_ && out_.empty()) transport_->close();
  if (!relay_id_.empty() && !relay_ended_) {
    // Tell the owner how the client left: a clean close, a lost connection (stream management
    // may resume it) or a stream error of ours (the session ends).
    relay_ended_ = true;
    core_.proxy().forward(relay_owner_, relay_id_, "close", nullptr,
                          clean ? "clean" : (closing_ ? "error" : "lost"));
    core_.proxy().dropRelay(relay_id_);
  }
  onConnectionLost(clean || closing_);
}

void C2sSession::writeRaw(std::string data) {
  if (proxied_) {
    if (!via_id_.empty()) core_.proxy().toClient(via_, via_id_, data);
    return;
  }
  if (!transport_ || !transport_->isOpen()) return;
  out_ += data;
  if (out_.size() > core_.config().max_output_bytes) {
    // The client does not read: it could not read a stream error either. Close; run() then
    // sees a lost connection (stream management keeps the unacknowledged stanzas).
    core_.metrics().addCounter("tandem_frontend_policy_violations_total");
    spdlog::info("client {} ({}) does not read its output ({} bytes queued): closing", jid_.full(),
                 remote_, out_.size());
    out_.clear();
    transport_->close();
    return;
  }
  if (!writing_) core_.spawn(flush(), "client write");
}

asio::awaitable<void> C2sSession::flush() {
  auto self = shared_from_this();
  writing_ = true;
  auto t = transport_;  // keeps the stream alive while a write is in flight
  try {
    while (t && transport_ == t && !out_.empty()) {
      std::string chunk;
      chunk.swap(out_);
      co_await t->writeAll(std::move(chunk));
    }
  } catch (const std::exception&) {
    out_.clear();
    if (t) t->close();
  }
  writing_ = false;
  if (closing_ && transport_) transport_->close();
}

asio::awaitable<void> C2sSession::drained() {
  asio::steady_timer t(core_.io());
  for (int i = 0; i < 5000 && (writing_ || !out_.empty()); ++i) {
    t.expires_after(std::chrono::milliseconds(1));
    co_await t.async_wait(asio::use_awaitable);
  }
}

void C2sSession::send(const Element& stanza) {
  core_.countStanzaOut();
  if (sm_enabled_) {
    sm_out_++;
    sm_unacked_.push_back(stanza);
  }
  if (!attached()) return;
  writeRaw(stanza.toString());
  if (sm_enabled_ && sm_out_ - sm_last_request_ >= 5) {
    sm_last_request_ = sm_out_;
    writeRaw("<r xmlns='urn:xmpp:sm:3'/>");
  }
}

void C2sSession::closeWithError(const std::string& condition, const std::string& text,
                                const std::string& other_host) {
  if (closing_ || !attached()) return;
  closing_ = true;
  sm_resumable_ = false;  // a stream error ends the session (XEP-0198 §5)
  std::string data;
  if (stage_ == Stage::kConnected && stream_id_.empty()) {
    data = x::streamHeader(x::kNsClient, core_.config().domain, "", x::newId());
  }
  data += x::streamError(condition, text, other_host);
  writeRaw(std::move(data));
  if (proxied_) {
    // Ask the via server to close the client's stream after this output, then end here (later:
    // the caller may be iterating over the user's sessions).
    core_.proxy().control(via_, via_id_, "end");
    core_.proxy().dropProxied(via_, via_id_);
    via_id_.clear();
    auto self = shared_from_this();
    asio::post(core_.io(), [self] { self->onConnectionLost(true); });
    return;
  }
  if (!writing_) transport_->close();
}

// ---------------------------------------------------------------------------------------------
// Stream events

asio::awaitable<void> C2sSession::handle(Event ev) {
  switch (ev.kind) {
    case Event::kOpen:
      co_await onStreamOpen(ev.element);
      break;
    case Event::kClose:
    case Event::kLost:
      break;
    case Event::kStanza:
      core_.countStanzaIn();
      if (stage_ == Stage::kBound) {
        co_await onBound(std::move(ev.element));
      } else {
        co_await onPreBind(std::move(ev.element));
      }
      break;
  }
}

asio::awaitable<void> C2sSession::onStreamOpen(const Element& h) {
  const auto& cfg = core_.config();
  stream_id_ = x::newId();
  std::string out = x::streamHeader(x::kNsClient, cfg.domain, "", stream_id_);
  writeRaw(out);
  if (h.name() != "stream:stream" || h.attr("xmlns:stream") != x::kNsStreams) {
    closeWithError("invalid-namespace");
    co_return;
  }
  if (h.attr("xmlns") != x::kNsClient) {
    closeWithError("invalid-namespace", "this port serves jabber:client streams");
    co_return;
  }
  std::string to = h.attr("to");
  for (char& c : to) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (to != cfg.domain) {
    closeWithError("host-unknown", "this server serves the domain " + cfg.domain);
    co_return;
  }
  Element features("stream:features");
  if (stage_ == Stage::kConnected) {
    features.addChild(Element("starttls", x::kNsTls)).addChild(Element("required"));
  } else if (stage_ == Stage::kSecured) {
    // RFC 6120 §6.4.6: the client may name itself in `from`; redirect before authentication.
    if (auto from = x::Jid::parse(h.attr("from")); from && from->domain == cfg.domain &&
                                                     !from->local.empty()) {
      if (co_await redirectIfNotOwner(from->local, nullptr, true)) co_return;
    }
    Element& mechs = features.addChild(Element("mechanisms", x::kNsSasl));
    for (const char* m : {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}) {
      mechs.addChild(Element("mechanism")).addText(m);
    }
  } else {
    features.addChild(Element("bind", x::kNsBind));
    features.addChild(Element("session", x::kNsSession)).addChild(Element("optional"));
    features.addChild(Element("sm", x::kNsSm));
    features.addChild(Element("ver", "urn:xmpp:features:rosterver"));   // RFC 6121 §2.6.1
    features.addChild(Element("sub", "urn:xmpp:features:pre-approval"));  // RFC 6121 §3.4.1
  }
  writeRaw(features.toString());
}

asio::awaitable<void> C2sSession::onPreBind(Element st) {
  if (stage_ == Stage::kConnected) {
    if (st.name() == "starttls" && st.xmlns() == x::kNsTls) {
      writeRaw("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      co_await drained();
      co_await transport_->handshakeServer();
      stage_ = Stage::kSecured;
      restartStream();
      co_return;
    }
    closeWithError("policy-violation", "use STARTTLS before anything else");
    co_return;
  }
  if (stage_ == Stage::kSecured) {
    if (st.name() == "auth" && st.xmlns() == x::kNsSasl) {
      co_await onAuth(st);
    } else if (st.name() == "response" && st.xmlns() == x::kNsSasl) {
      co_await onSaslResponse(st);
    } else if (st.name() == "abort" && st.xmlns() == x::kNsSasl) {
      scram_.reset();
      writeRaw("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>");
    } else {
      closeWithError("not-authorized", "authenticate first");
    }
    co_return;
  }
  // Authenticated, not bound.
  if (st.name() == "iq" && st.child("bind", x::kNsBind) && st.attr("type") == "set") {
    co_await onBind(st);
  } else if (st.name() == "resume" && st.xmlns() == x::kNsSm) {
    co_await onResume(st);
  } else if (st.name() == "enable" && st.xmlns() == x::kNsSm) {
    writeRaw("<failed xmlns='urn:xmpp:sm:3'><unexpected-request "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
  } else if (st.name() == "iq") {
    send(x::errorReply(st, "cancel", "not-allowed", "bind a resource first"));
  } else {
    closeWithError("not-authorized", "bind a resource first");
  }
}

// ---------------------------------------------------------------------------------------------
// End of a connection and of a session

void C2sSession::onConnectionLost(bool clean) {
  auth_timer_.cancel();
  if (ended_) return;
  if (!bound_) {
    ended_ = true;
    return;
  }
  if (!clean && sm_resumable_ && !sm_id_.empty()) {
    // Keep the session for resumption: stanzas keep queueing in sm_unacked_.
    if (transport_) transport_->close();
    transport_.reset();
    core_.detached[sm_id_] = shared_from_this();
    resume_timer_.expires_after(core_.config().sm_resume_timeout);
    auto self = shared_from_this();
    resume_timer_.async_wait([self](asio::error_code ec) {
      if (ec || self->ended_) return;
      self->core_.detached.erase(self->sm_id_);
      self->endSession(true);
    });
    return;
  }
  endSession(!clean);
}

void C2sSession::endSession(bool redeliver) {
  if (ended_) return;
  ended_ = true;
  if (transport_) transport_->close();
  transport_.reset();
  auto self = shared_from_this();
  if (available_ || !directed_to_.empty()) core_.broadcastUnavailable(self);
  core_.unbindSession(self);
  // XEP-0198 §4 end: when the connection was lost, stanzas the client never acknowledged are
  // delivered again, to another resource or to offline storage; only messages are worth it.
  // After a clean close (</stream:stream>) the client had them: no duplicates.
  if (!redeliver) sm_unacked_.clear();
  for (auto& st : sm_unacked_) {
    if (st.name() != "message") continue;
    const std::string& type = st.attr("type");
    if (type == "error" || type == "groupchat" || type == "headline") continue;
    if (st.childText("body").empty() || st.child("received", x::kNsCarbons) ||
        st.child("sent", x::kNsCarbons))
      continue;
    if (auto to = x::Jid::parse(st.attr("to"))) core_.inboundMessage(st, *to);
  }
  sm_unacked_.clear();
}

}  // namespace tandem::frontend
