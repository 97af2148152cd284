// Proxied sessions: the relay protocol over internal links (proxy.h has the design).
#include "frontend/internal/proxy.h"

#include <spdlog/spdlog.h>

#include "frontend/internal/c2s_session.h"
#include "frontend/internal/links.h"

namespace tandem::frontend {

using xml::Element;

std::optional<RedirectMode> parseRedirectMode(const std::string& s) {
  if (s == "redirect") return RedirectMode::kRedirect;
  if (s == "proxy") return RedirectMode::kProxy;
  if (s == "auto") return RedirectMode::kAuto;
  return std::nullopt;
}

const char* redirectModeName(RedirectMode m) {
  switch (m) {
    case RedirectMode::kRedirect:
      return "redirect";
    case RedirectMode::kProxy:
      return "proxy";
    case RedirectMode::kAuto:
      return "auto";
  }
  return "auto";
}

bool Proxy::shouldProxy(const std::string& bare) const {
  if (mode_ == RedirectMode::kProxy) return true;
  if (mode_ == RedirectMode::kRedirect) return false;
  auto it = redirected_.find(bare);
  return it != redirected_.end() && std::chrono::steady_clock::now() - it->second < kAutoWindow;
}

void Proxy::noteRedirect(const std::string& bare) {
  auto now = std::chrono::steady_clock::now();
  redirected_[bare] = now;
  // Bounded: forget entries older than the window whenever the map grows large.
  if (redirected_.size() > 10000) {
    std::erase_if(redirected_, [&](const auto& kv) { return now - kv.second >= kAutoWindow; });
  }
}

// ---------------------------------------------------------------------------------------------
// Via side

bool Proxy::openRelay(const std::shared_ptr<C2sSession>& s, const std::string& owner,
                      const std::string& id, const Element& auth) {
  Element open("proxy");
  open.setAttr("op", "open").setAttr("id", id).setAttr("remote", s->remoteAddress());
  open.addChild(auth);
  if (!core_.links().send(owner, open)) return false;
  relays_[id] = s;
  core_.metrics().addCounter("tandem_frontend_proxied_connections_total");
  return true;
}

void Proxy::forward(const std::string& owner, const std::string& id, const std::string& op,
                    const Element* child, const std::string& how) {
  Element el("proxy");
  el.setAttr("op", op).setAttr("id", id);
  if (!how.empty()) el.setAttr("how", how);
  if (child) el.addChild(*child);
  if (core_.links().send(owner, el)) return;
  // The link is down: onPeerDown ends the relay (it runs when the link's loop notices).
  if (auto it = relays_.find(id); it != relays_.end()) {
    if (auto s = it->second.lock()) {
      relays_.erase(it);
      s->onRelayOwnerGone();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Owner side

void Proxy::toClient(const std::string& via, const std::string& id, const std::string& data) {
  Element el("proxy");
  el.setAttr("op", "out").setAttr("id", id);
  el.addText(data);
  core_.links().send(via, el);  // a down link ends the session through onPeerDown
}

void Proxy::control(const std::string& via, const std::string& id, const std::string& op,
                    const std::string& jid) {
  Element el("proxy");
  el.setAttr("op", op).setAttr("id", id);
  if (!jid.empty()) el.setAttr("jid", jid);
  core_.links().send(via, el);
}

// ---------------------------------------------------------------------------------------------
// Both

void Proxy::onLinkElement(const std::string& peer, Element el) {
  const std::string op = el.attr("op");
  const std::string id = el.attr("id");
  if (id.empty()) return;
  Element* child = nullptr;
  for (auto& c : el.children()) {
    if (!c.isText()) {
      child = &c;
      break;
    }
  }
  if (op == "open") {
    // A client of a user we own, relayed by `peer`.
    if (!child) return;
    auto s = std::make_shared<C2sSession>(core_, peer, id, el.attr("remote"), false);
    proxied_[peer + "|" + id] = s;
    s->startProxied(std::move(*child));
    return;
  }
  if (op == "header" || op == "in" || op == "close") {
    auto it = proxied_.find(peer + "|" + id);
    if (it == proxied_.end()) {
      if (op != "close") control(peer, id, "end");  // unknown session: close that client
      return;
    }
    auto s = it->second;
    s->onProxiedEvent(op, child ? std::move(*child) : Element(), el.attr("how"));
    return;
  }
  // Owner -> via.
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  auto s = it->second.lock();
  if (!s) {
    relays_.erase(it);
    return;
  }
  if (op == "out") {
    s->onRelayOutput(el.text());
  } else if (op == "reset") {
    s->onRelayReset();
  } else if (op == "bound") {
    s->onRelayBound(el.attr("jid"));
  } else if (op == "end") {
    s->onRelayEnd();
  }
}

void Proxy::onPeerDown(const std::string& peer) {
  std::vector<std::shared_ptr<C2sSession>> relays, proxied;
  for (auto& [id, w] : relays_) {
    if (auto s = w.lock(); s && s->relayOwner() == peer) relays.push_back(s);
  }
  for (auto it = proxied_.begin(); it != proxied_.end();) {
    if (it->second->viaServer() == peer) {
      proxied.push_back(it->second);
      it = proxied_.erase(it);
    } else {
      ++it;
    }
  }
  if (!relays.empty() || !proxied.empty()) {
    spdlog::warn("link with {} dropped: ending {} proxied connection(s) to it and {} session(s) "
                 "proxied from it",
                 peer, relays.size(), proxied.size());
  }
  for (auto& s : relays) s->onRelayOwnerGone();
  for (auto& s : proxied) s->onViaGone();
}

}  // namespace tandem::frontend
