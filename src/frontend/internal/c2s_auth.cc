// C2sSession signing in: SASL (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN over TLS) with the redirect
// or relay of a user owned elsewhere, resource binding and stream-management resumption.
#include <spdlog/spdlog.h>

#include "frontend/internal/c2s_session.h"
#include "frontend/internal/links.h"
#include "frontend/internal/proxy.h"
#include "xmpp/stanza.h"

namespace tandem::frontend {

using xml::Element;
namespace x = xmpp;

// SASL (RFC 6120 §6)

asio::awaitable<bool> C2sSession::redirectIfNotOwner(const std::string& user, const Element* auth,
                                                     bool header) {
  const auto& cfg = core_.config();
  std::string pool = co_await core_.findHomePool(user);
  if (pool.empty()) co_return false;  // unknown user: authentication will fail
  std::string bare = user + "@" + cfg.domain;
  std::string owner = core_.ownerOf(pool, bare);
  if (owner.empty() || owner == cfg.server_fqdn) co_return false;
  // A session proxied to us is never proxied again (no chains): if the ring moved, redirect.
  if (!proxied_ && core_.proxy().shouldProxy(bare)) {
    if (header) co_return false;  // proxy from the SASL <auth/> on
    if (auth && startRelay(owner, *auth)) co_return true;
    // No link to the owner (or too late to proxy): redirect after all.
  }
  core_.proxy().noteRedirect(bare);
  std::string host = core_.addressOf(owner);
  if (direct_tls_) host += ":" + std::to_string(cfg.c2s_tls_port);
  core_.metrics().addCounter("tandem_frontend_redirects_total");
  spdlog::info("redirecting {} to {} ({})", bare, owner, host);
  closeWithError("see-other-host", "user " + bare + " is served by " + owner, host);
  co_return true;
}

asio::awaitable<void> C2sSession::onAuth(const Element& auth) {
  if (core_.isAuthBlocked(remote_)) {
    // Too many failures from this address lately: no password is even checked.
    core_.metrics().addCounter("tandem_frontend_auth_refused_total");
    writeRaw("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><temporary-auth-failure/></failure>");
    closeWithError("policy-violation", "too many failed sign-ins from " + remote_ +
                                           "; try again in a minute");
    co_return;
  }
  mechanism_ = auth.attr("mechanism");
  auto raw = x::base64Decode(auth.text() == "=" ? "" : auth.text());
  if (!raw) {
    co_await saslFailure("incorrect-encoding");
    co_return;
  }
  if (mechanism_ == "PLAIN") {
    auto plain = x::parsePlain(*raw);
    if (!plain) {
      co_await saslFailure("malformed-request");
      co_return;
    }
    std::string user = plain->authcid;
    for (char& c : user) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!x::isValidUserName(user)) {
      co_await saslFailure("not-authorized");
      co_return;
    }
    if (co_await redirectIfNotOwner(user, &auth)) co_return;
    co_await core_.toDb(true);
    auto creds = core_.store().credentials(user, x::ScramHash::kSha256);
    bool ok = false;
    if (creds && *creds) ok = x::verifyPassword(x::ScramHash::kSha256, **creds, plain->password);
    co_await core_.toNetwork();
    if (!creds) {
      spdlog::warn("sign-in of {}: {}", user, creds.error().message());
      co_await saslFailure("temporary-auth-failure");
      co_return;
    }
    std::string authz = plain->authzid;
    if (!authz.empty() && authz != user + "@" + core_.config().domain) ok = false;
    if (!ok) {
      co_await saslFailure("not-authorized");
      co_return;
    }
    sasl_user_ = user;
    co_await saslSuccess(std::string_view());
    co_return;
  }
  x::ScramHash hash;
  if (mechanism_ == "SCRAM-SHA-256") {
    hash = x::ScramHash::kSha256;
  } else if (mechanism_ == "SCRAM-SHA-1") {
    hash = x::ScramHash::kSha1;
  } else {
    co_await saslFailure("invalid-mechanism");
    co_return;
  }
  scram_.emplace(hash);
  auto user = scram_->start(*raw);
  if (!user) {
    scram_.reset();
    co_await saslFailure("malformed-request");
    co_return;
  }
  std::string name = *user;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (x::isValidUserName(name)) {
    sasl_user_ = name;
    if (co_await redirectIfNotOwner(name, &auth)) {
      scram_.reset();
      co_return;
    }
  }
  std::optional<x::ScramCredentials> creds;
  if (x::isValidUserName(name)) {
    co_await core_.toDb(true);
    auto r = core_.store().credentials(name, hash);
    co_await core_.toNetwork();
    if (!r) {
      spdlog::warn("sign-in of {}: {}", name, r.error().message());
      scram_.reset();
      co_await saslFailure("temporary-auth-failure");
      co_return;
    }
    creds = *r;
  }
  sasl_user_ = name;
  std::string challenge = scram_->serverFirst(creds.value_or(x::ScramCredentials{}));
  writeRaw("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + x::base64Encode(challenge) +
           "</challenge>");
}

asio::awaitable<void> C2sSession::onSaslResponse(const Element& resp) {
  if (!scram_) {
    co_await saslFailure("malformed-request");
    co_return;
  }
  auto raw = x::base64Decode(resp.text());
  if (!raw) {
    scram_.reset();
    co_await saslFailure("incorrect-encoding");
    co_return;
  }
  auto final_msg = scram_->finish(*raw);
  scram_.reset();
  if (!final_msg) {
    co_await saslFailure("not-authorized");
    co_return;
  }
  co_await saslSuccess(*final_msg);
}

asio::awaitable<void> C2sSession::saslSuccess(std::string_view additional) {
  user_ = sasl_user_;
  jid_ = x::Jid{user_, core_.config().domain, ""};
  core_.metrics().addCounter("tandem_frontend_sign_ins_total", 1, {{"mechanism", mechanism_}});
  std::string body = additional.empty() ? "" : x::base64Encode(additional);
  writeRaw("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + body + "</success>");
  stage_ = Stage::kAuthenticated;
  restartStream();
  co_return;
}

asio::awaitable<void> C2sSession::saslFailure(const char* condition) {
  auth_failures_++;
  core_.noteAuthFailure(remote_);
  core_.metrics().addCounter("tandem_frontend_auth_failures_total");
  // Backoff: each failure on this connection waits longer (0.5 s, 1 s, 2 s), then we hang up,
  // so guessing passwords costs the guesser, not the other users.
  asio::steady_timer t(core_.io());
  t.expires_after(std::chrono::milliseconds(250 << std::min(auth_failures_, 4)));
  co_await t.async_wait(asio::use_awaitable);
  writeRaw(std::string("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><") + condition +
           "/></failure>");
  if (auth_failures_ >= 5) closeWithError("policy-violation", "too many failed sign-ins");
}

// ---------------------------------------------------------------------------------------------
// Binding (RFC 6120 §7) and resumption (XEP-0198 §5)

asio::awaitable<void> C2sSession::onBind(const Element& iq) {
  std::string resource = iq.child("bind", x::kNsBind)->childText("resource");
  if (resource.empty() || resource.size() > 256) resource = x::newId();
  auto full = x::Jid::parse(user_ + "@" + core_.config().domain + "/" + resource);
  if (!full) {
    send(x::errorReply(iq, "modify", "bad-request", "the resource is invalid"));
    co_return;
  }
  // Ownership may have changed since authentication (a peer came back): check once more.
  if (co_await redirectIfNotOwner(user_)) co_return;
  std::string bare = full->bare();
  auto user = core_.onlineUser(bare);
  if (!user) user = co_await core_.loadUser(bare);
  if (!user) {
    send(x::errorReply(iq, "wait", "internal-server-error", "the user store is unavailable"));
    co_return;
  }
  if (closing_ || !attached()) co_return;
  jid_ = *full;
  bound_ = true;
  stage_ = Stage::kBound;
  auth_timer_.cancel();
  core_.bindSession(shared_from_this(), user);
  Element result = x::iqResult(iq);
  result.removeAttr("from");
  result.removeAttr("to");
  result.addChild(Element("bind", x::kNsBind)).addChild(Element("jid")).addText(jid_.full());
  send(result);
  if (proxied_ && !via_id_.empty()) core_.proxy().control(via_, via_id_, "bound", jid_.full());
}

void C2sSession::onSmEnable(const Element& enable) {
  if (sm_enabled_) {
    writeRaw("<failed xmlns='urn:xmpp:sm:3'><unexpected-request "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    return;
  }
  sm_enabled_ = true;
  std::string resume = enable.attr("resume");
  sm_resumable_ = resume == "true" || resume == "1";
  Element enabled("enabled", x::kNsSm);
  if (sm_resumable_) {
    sm_id_ = x::newId();
    enabled.setAttr("id", sm_id_);
    enabled.setAttr("resume", "true");
    enabled.setAttr("max", std::to_string(core_.config().sm_resume_timeout.count()));
  }
  writeRaw(enabled.toString());
}

void C2sSession::onSmAck(uint32_t h) {
  // h counts stanzas the client handled; drop those from the resend queue (mod 2^32).
  while (!sm_unacked_.empty() && static_cast<int32_t>(h - sm_acked_) > 0) {
    sm_unacked_.pop_front();
    sm_acked_++;
  }
}

void C2sSession::adopt(C2sSession& old) {
  jid_ = old.jid_;
  user_ = old.user_;
  available_ = old.available_;
  initial_presence_sent_ = old.initial_presence_sent_;
  priority_ = old.priority_;
  presence_ = old.presence_;
  carbons_ = old.carbons_;
  interested_ = old.interested_;
  directed_to_ = old.directed_to_;
  since_ = old.since_;
  sm_enabled_ = true;
  sm_resumable_ = true;
  sm_id_ = x::newId();
  sm_in_ = old.sm_in_;
  sm_out_ = old.sm_acked_;
  sm_acked_ = old.sm_acked_;
  sm_last_request_ = sm_out_;
  old.ended_ = true;  // its state lives on here; its end must not announce anything
  old.resume_timer_.cancel();
  if (old.transport_) old.transport_->close();
  old.transport_.reset();
  if (!old.via_id_.empty()) {
    // The old connection is a relay at a via server: close it there.
    core_.proxy().control(old.via_, old.via_id_, "end");
    core_.proxy().dropProxied(old.via_, old.via_id_);
    old.via_id_.clear();
  }
}

asio::awaitable<void> C2sSession::onResume(const Element& resume) {
  std::string previd = resume.attr("previd");
  auto it = core_.detached.find(previd);
  std::shared_ptr<C2sSession> old;
  if (it != core_.detached.end()) {
    old = it->second;
  } else if (auto user = core_.onlineUser(user_ + "@" + core_.config().domain)) {
    // The old connection may not have noticed it is dead yet.
    for (auto& [res, s] : user->sessions) {
      if (s->sm_id_ == previd && s->sm_resumable_) old = s;
    }
  }
  if (!old || old->user_ != user_ || old->ended_) {
    writeRaw("<failed xmlns='urn:xmpp:sm:3'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    co_return;
  }
  core_.detached.erase(old->sm_id_);
  uint32_t h = static_cast<uint32_t>(std::strtoul(resume.attr("h").c_str(), nullptr, 10));
  old->onSmAck(h);
  std::deque<Element> resend = std::move(old->sm_unacked_);
  std::string previous_id = old->sm_id_;
  adopt(*old);
  bound_ = true;
  stage_ = Stage::kBound;
  auth_timer_.cancel();
  sm_id_ = previous_id;  // the id stays valid for a later resumption
  auto user = core_.onlineUser(jid_.bare());
  if (!user) user = co_await core_.loadUser(jid_.bare());
  if (user) {
    user->sessions[jid_.resource] = shared_from_this();
  }
  if (proxied_ && !via_id_.empty()) core_.proxy().control(via_, via_id_, "bound", jid_.full());
  Element resumed("resumed", x::kNsSm);
  resumed.setAttr("previd", previd);
  resumed.setAttr("h", std::to_string(sm_in_));
  writeRaw(resumed.toString());
  for (auto& st : resend) send(st);
  core_.metrics().addCounter("tandem_frontend_sm_resumptions_total");
}

}  // namespace tandem::frontend
