// 1:1 messages (RFC 6121 §5 and §8.5): delivery to resources, offline storage, message carbons
// (XEP-0280) and blocking (XEP-0191) on the receiving side.
#include <spdlog/spdlog.h>

#include "frontend/internal/c2s_session.h"
#include "xmpp/stanza.h"

namespace tandem::frontend {

using xml::Element;
namespace x = xmpp;

namespace {

bool carbonEligible(const Element& m) {
  // XEP-0280 §6: chat messages (and normal ones with a body); not private, not no-copy.
  const std::string& type = m.attr("type");
  if (type != "chat" && !(type.empty() || type == "normal")) return false;
  if (type != "chat" && m.childText("body").empty()) return false;
  if (m.child("private", x::kNsCarbons) || m.child("no-copy", "urn:xmpp:hints")) return false;
  if (m.child("received", x::kNsCarbons) || m.child("sent", x::kNsCarbons)) return false;
  return true;
}

Element carbonCopy(const Element& m, const char* direction, const std::string& bare,
                   const std::string& to_full) {
  Element wrapper("message");
  wrapper.setAttr("from", bare).setAttr("to", to_full).setAttr("type", m.attr("type").empty() ? "normal" : m.attr("type"));
  Element inner = m;
  inner.setAttr("xmlns", x::kNsClient);
  wrapper.addChild(Element(direction, x::kNsCarbons))
      .addChild(Element("forwarded", x::kNsForward))
      .addChild(std::move(inner));
  return wrapper;
}

}  // namespace

void Core::outboundMessage(const std::shared_ptr<C2sSession>& s, Element m) {
  if (carbonEligible(m)) {
    if (auto user = onlineUser(s->jid().bare())) {
      for (auto& [res, other] : user->sessions) {
        if (other == s || !other->carbons()) continue;
        other->send(carbonCopy(m, "sent", s->jid().bare(), other->jid().full()));
      }
    }
  }
  if (m.hasAttr("to")) {
    m.removeChildren("private", x::kNsCarbons);
    route(std::move(m), Origin::kClient);
  }
}

void Core::inboundMessage(Element m, const x::Jid& to) {
  auto user = onlineUser(to.bare());
  const std::string& type = m.attr("type");
  auto from = x::Jid::parse(m.attr("from"));
  if (user && from && isBlocked(*user, from->full())) {
    // XEP-0191 §3.5: a blocked sender learns nothing beyond service-unavailable.
    if (type != "error") route(x::errorReply(m, "cancel", "service-unavailable"), Origin::kServer);
    return;
  }
  std::vector<std::shared_ptr<C2sSession>> targets;
  if (user && !to.isBare()) {
    if (auto it = user->sessions.find(to.resource); it != user->sessions.end()) {
      targets.push_back(it->second);
    }
  }
  if (targets.empty() && !to.isBare() && type == "groupchat") {
    return;  // RFC 6121 §8.5.3.2.1: groupchat to a gone resource is dropped silently
  }
  if (targets.empty() && user) {
    // RFC 6121 §8.5.2: to the available resources with non-negative priority.
    for (auto& [res, s] : user->sessions) {
      if (s->isAvailable() && s->priority() >= 0) targets.push_back(s);
    }
    if (type != "chat" && type != "headline" && targets.size() > 1) {
      auto best = *std::max_element(targets.begin(), targets.end(), [](auto& a, auto& b) {
        return a->priority() < b->priority();
      });
      targets = {best};
    }
  }
  if (targets.empty()) {
    if (type == "error" || type == "headline" || type == "groupchat") return;
    if (m.childText("body").empty() && !m.child("subject")) return;
    storeOffline(to.bare(), m);
    return;
  }
  for (auto& s : targets) s->send(m);
  if (carbonEligible(m)) {
    for (auto& [res, s] : user->sessions) {
      if (!s->carbons() || std::find(targets.begin(), targets.end(), s) != targets.end()) continue;
      s->send(carbonCopy(m, "received", to.bare(), s->jid().full()));
    }
  }
}

void Core::storeOffline(const std::string& bare, const Element& m) {
  Element copy = m;
  copy.removeAttr("xmlns");
  std::string text = copy.toString();
  metrics_.addCounter("tandem_frontend_offline_stored_total");
  spawn(storeOfflineAsync(bare, std::move(text), m), "offline store");
}

asio::awaitable<void> Core::storeOfflineAsync(std::string bare, std::string text, Element m) {
  co_await toDb();
  Status st = store_.storeOffline(bare, text);
  co_await toNetwork();
  if (!st.isOk()) {
    spdlog::warn("offline message for {}: {}", bare, st.message());
    if (m.attr("type") != "error" && !m.attr("from").empty()) {
      route(x::errorReply(m, "wait", "resource-constraint", "offline storage is unavailable"),
            Origin::kServer);
    }
  }
}

}  // namespace tandem::frontend
