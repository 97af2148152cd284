// C2sSession after binding: stanza dispatch, the user's own IQs (carbons, blocking, ping,
// session) and stream-management requests.
#include <spdlog/spdlog.h>

#include "frontend/internal/c2s_session.h"
#include "xmpp/stanza.h"

namespace tandem::frontend {

using xml::Element;
namespace x = xmpp;

asio::awaitable<void> C2sSession::onBound(Element st) {
  const std::string& name = st.name();
  if (st.xmlns() == x::kNsSm) {
    if (name == "r") {
      writeRaw("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(sm_in_) + "'/>");
    } else if (name == "a") {
      onSmAck(static_cast<uint32_t>(std::strtoul(st.attr("h").c_str(), nullptr, 10)));
    } else if (name == "enable") {
      onSmEnable(st);
    } else {
      writeRaw("<failed xmlns='urn:xmpp:sm:3'><unexpected-request "
               "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    }
    co_return;
  }
  if (name != "iq" && name != "message" && name != "presence") {
    closeWithError("unsupported-stanza-type", "<" + name + "/> is not a stanza");
    co_return;
  }
  if (sm_enabled_) sm_in_++;
  const std::string& ns = st.xmlns();
  if (!ns.empty() && ns != x::kNsClient) {
    closeWithError("invalid-namespace");
    co_return;
  }
  st.removeAttr("xmlns");
  st.setAttr("from", jid_.full());  // RFC 6120 §8.1.2.1: the server stamps the sender
  std::optional<x::Jid> to;
  if (st.hasAttr("to")) {
    auto parsed = x::Jid::parse(st.attr("to"));
    if (!parsed) {
      if (st.attr("type") != "error") send(x::errorReply(st, "modify", "jid-malformed"));
      co_return;
    }
    to = *parsed;
    st.setAttr("to", to->full());
  }
  if (name == "presence") {
    auto self = shared_from_this();
    co_await core_.outboundPresence(self, std::move(st));
    co_return;
  }
  auto user = core_.onlineUser(jid_.bare());
  if (to && user && isBlocked(*user, to->full()) && st.attr("type") != "error") {
    // XEP-0191 §3.4: stanzas to a blocked contact are refused with <blocked/>.
    Element err = x::errorReply(st, "cancel", "not-acceptable");
    err.child("error")->addChild(Element("blocked", "urn:xmpp:blocking:errors"));
    send(err);
    co_return;
  }
  if (name == "message") {
    core_.outboundMessage(shared_from_this(), std::move(st));
    co_return;
  }
  // iq
  if (!to || (to->bare() == jid_.bare() && to->isBare())) {
    co_await onOwnIq(std::move(st));
  } else if (to->local.empty() && to->domain == core_.config().domain && to->isBare()) {
    auto self = shared_from_this();
    core_.handleServerStanza(st, [self](Element r) { self->send(r); });
  } else {
    core_.route(std::move(st), Origin::kClient);
  }
}

asio::awaitable<void> C2sSession::onOwnIq(Element iq) {
  const std::string& type = iq.attr("type");
  if (type == "result" || type == "error") co_return;
  if (iq.child("query", x::kNsRoster)) {
    co_await onRosterIq(std::move(iq));
    co_return;
  }
  if (iq.child("blocklist", x::kNsBlocking) || iq.child("block", x::kNsBlocking) ||
      iq.child("unblock", x::kNsBlocking)) {
    co_await onBlockingIq(std::move(iq));
    co_return;
  }
  if (type == "set" && iq.child("enable", x::kNsCarbons)) {
    carbons_ = true;
    send(x::iqResult(iq));
    co_return;
  }
  if (type == "set" && iq.child("disable", x::kNsCarbons)) {
    carbons_ = false;
    send(x::iqResult(iq));
    co_return;
  }
  if (iq.child("session", x::kNsSession) || iq.child("ping", x::kNsPing)) {
    send(x::iqResult(iq));
    co_return;
  }
  if (auto r = accountDisco(iq)) {
    send(*r);
    co_return;
  }
  send(x::errorReply(iq, "cancel", "service-unavailable"));
}

asio::awaitable<void> C2sSession::onBlockingIq(Element iq) {
  auto user = core_.onlineUser(jid_.bare());
  if (!user) co_return;
  const std::string& type = iq.attr("type");
  if (type == "get" && iq.child("blocklist", x::kNsBlocking)) {
    Element r = x::iqResult(iq);
    Element& list = r.addChild(Element("blocklist", x::kNsBlocking));
    for (const auto& b : user->blocks) list.addChild(Element("item")).setAttr("jid", b);
    send(r);
    co_return;
  }
  const Element* op = iq.child("block", x::kNsBlocking);
  bool block = op != nullptr;
  if (!op) op = iq.child("unblock", x::kNsBlocking);
  if (type != "set" || !op) {
    send(x::errorReply(iq, "modify", "bad-request"));
    co_return;
  }
  std::vector<std::string> jids;
  for (const Element* item : op->childrenNamed("item")) {
    auto j = x::Jid::parse(item->attr("jid"));
    if (!j) {
      send(x::errorReply(iq, "modify", "jid-malformed"));
      co_return;
    }
    jids.push_back(j->full());
  }
  if (block && jids.empty()) {
    send(x::errorReply(iq, "modify", "bad-request", "name at least one JID to block"));
    co_return;
  }
  std::string owner = jid_.bare();
  co_await core_.toDb();
  Status st = (!block && jids.empty()) ? core_.store().clearBlocks(owner)
                                       : core_.store().setBlocked(owner, jids, block);
  co_await core_.toNetwork();
  if (!st.isOk()) {
    spdlog::warn("block list of {}: {}", owner, st.message());
    send(x::errorReply(iq, "wait", "internal-server-error"));
    co_return;
  }
  UserState before;  // which contacts saw our presence before the change
  before.blocks = user->blocks;
  if (block) {
    for (const auto& j : jids) user->blocks.insert(j);
  } else if (jids.empty()) {
    user->blocks.clear();
  } else {
    for (const auto& j : jids) user->blocks.erase(j);
  }
  send(x::iqResult(iq));
  // XEP-0191 §3.3: push the change to every resource.
  for (auto& [res, s] : user->sessions) {
    Element push("iq");
    push.setAttr("type", "set").setAttr("id", x::newId()).setAttr("to", s->jid().full());
    Element& p = push.addChild(Element(block ? "block" : "unblock", x::kNsBlocking));
    for (const auto& j : jids) p.addChild(Element("item")).setAttr("jid", j);
    s->send(push);
  }
  // XEP-0191 §3.3: contacts that saw our presence and are now blocked see each available
  // resource go; §3.4: unblocked ones get the current presence again.
  for (const auto& [contact, item] : user->roster) {
    if (item.subscription != "from" && item.subscription != "both") continue;
    bool was = isBlocked(before, contact), is = isBlocked(*user, contact);
    if (was == is) continue;
    if (is) {
      for (const auto& [res, s] : user->sessions) {
        if (!s->isAvailable()) continue;
        Element gone("presence");
        gone.setAttr("type", "unavailable").setAttr("from", s->jid().full()).setAttr("to", contact);
        core_.route(std::move(gone), Origin::kServer);
      }
    } else {
      sendCurrentPresence(core_, *user, contact);
    }
  }
}

}  // namespace tandem::frontend
