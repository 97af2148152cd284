// Presence (RFC 6121 §4) and subscriptions (RFC 6121 §3).
//
// - Outbound (from a session of ours): broadcast to contacts with a `from` subscription and to
//   the user's own resources; the first available presence also probes contacts with a `to`
//   subscription and releases offline messages and pending subscription requests.
// - Inbound (for a user this server owns): subscription state changes are stored in rtc
//   before anything is delivered; probes are answered from live sessions.
#include <spdlog/spdlog.h>

#include "frontend/internal/c2s_session.h"
#include "xml/stream_parser.h"
#include "xmpp/stanza.h"

namespace tandem::frontend {

using xml::Element;
namespace x = xmpp;

namespace {

bool hasTo(const RosterItem& i) { return i.subscription == "to" || i.subscription == "both"; }
bool hasFrom(const RosterItem& i) { return i.subscription == "from" || i.subscription == "both"; }

std::string withTo(const std::string& sub, bool on) {
  bool from = sub == "from" || sub == "both";
  if (on) return from ? "both" : "to";
  return from ? "from" : "none";
}
std::string withFrom(const std::string& sub, bool on) {
  bool to = sub == "to" || sub == "both";
  if (on) return to ? "both" : "from";
  return to ? "to" : "none";
}

int priorityOf(const Element& p) {
  std::string s = p.childText("priority");
  if (s.empty()) return 0;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  return static_cast<int>(std::clamp(v, -128L, 127L));
}

}  // namespace

// RFC 6121 §4.6.3: entities `s` sent directed presence to, and that get no broadcast (not a
// contact with a 'from' subscription), learn that it went unavailable; the list starts afresh.
static void tellDirected(Core& core, const UserState* user, C2sSession& s, const Element& gone) {
  for (const auto& to : s.directedTo()) {
    auto j = x::Jid::parse(to);
    if (!j) continue;
    if (user) {
      auto it = user->roster.find(j->bare());
      if (it != user->roster.end() && hasFrom(it->second) && s.initialPresenceSent()) continue;
    }
    Element copy = gone;
    copy.setAttr("to", to);
    core.route(std::move(copy), Origin::kServer);
  }
  s.directedTo().clear();
}

// Whether `contact` asked `owner` for a subscription that is not answered yet (pending in).
static asio::awaitable<bool> hasPendingIn(Core& core, std::string owner, std::string contact) {
  co_await core.toDb();
  auto pending = core.store().pendingIn(owner);
  co_await core.toNetwork();
  if (!pending) {
    spdlog::warn("pending subscriptions of {}: {}", owner, pending.error().message());
    co_return true;  // cannot tell: handle it as an answer, as before pre-approval existed
  }
  for (const auto& [from, text] : *pending) {
    if (from == contact) co_return true;
  }
  co_return false;
}

// Each available resource's current presence to `to` (a new subscriber, RFC 6121 §3.1.5; an
// unblocked contact, XEP-0191 §3.4).
void sendCurrentPresence(Core& core, const UserState& user, const std::string& to) {
  for (const auto& [res, s] : user.sessions) {
    if (!s->isAvailable()) continue;
    Element copy = s->presence();
    copy.setAttr("from", s->jid().full()).setAttr("to", to);
    core.route(std::move(copy), Origin::kServer);
  }
}

// Stores a roster item and pushes it; false (and a log line) when the store failed.
static asio::awaitable<bool> saveItem(Core& core, std::shared_ptr<UserState> user,
                                      RosterItem item, bool drop_pending) {
  std::string owner = user->bare;
  // In memory first: a second subscription stanza for the same contact, handled while this one
  // waits for the store (e.g. unsubscribe then unsubscribed after a roster remove), starts from
  // this state rather than the one before it; both writes reach the store in order (one thread).
  std::optional<RosterItem> before;
  if (auto it = user->roster.find(item.contact); it != user->roster.end()) before = it->second;
  user->roster[item.contact] = item;
  co_await core.toDb();
  Status st = core.store().putRosterItem(owner, item);
  if (st.isOk() && drop_pending) st = core.store().removePendingIn(owner, item.contact);
  co_await core.toNetwork();
  if (!st.isOk()) {
    spdlog::warn("roster of {}: {}", owner, st.message());
    // Undone in memory too, unless a later change replaced it meanwhile.
    auto it = user->roster.find(item.contact);
    if (it != user->roster.end() && rosterItemElement(it->second, false).toString() ==
                                        rosterItemElement(item, false).toString()) {
      if (before) it->second = *before;
      else user->roster.erase(it);
    }
    co_return false;
  }
  core.pushRoster(*user, item, false);
  co_return true;
}

asio::awaitable<void> Core::outboundPresence(std::shared_ptr<C2sSession> s, Element p) {
  auto user = onlineUser(s->jid().bare());
  if (!user) co_return;
  const std::string type = p.attr("type");
  const std::string bare = s->jid().bare();
  if (!p.hasAttr("to") && (type.empty() || type == "unavailable")) {
    bool available = type.empty();
    bool initial = available && !s->initialPresenceSent();
    s->setPresence(p, available, priorityOf(p));
    for (const auto& [contact, item] : user->roster) {
      if (!hasFrom(item) || isBlocked(*user, contact)) continue;  // XEP-0191 §3.3
      Element copy = p;
      copy.setAttr("to", contact);
      route(std::move(copy), Origin::kClient);
    }
    for (auto& [res, other] : user->sessions) {
      if (!other->initialPresenceSent() && other != s) continue;
      Element copy = p;
      copy.setAttr("to", other->jid().full());
      other->send(copy);
    }
    if (!available) tellDirected(*this, user.get(), *s, p);
    if (!initial) co_return;
    s->markInitialPresence();
    // The other resources' presence, then probes (RFC 6121 §4.3), then what waited offline.
    for (auto& [res, other] : user->sessions) {
      if (other == s || !other->isAvailable()) continue;
      Element copy = other->presence();
      copy.setAttr("to", s->jid().full());
      s->send(copy);
    }
    for (const auto& [contact, item] : user->roster) {
      if (!hasTo(item)) continue;
      Element probe("presence");
      probe.setAttr("type", "probe").setAttr("from", bare).setAttr("to", contact);
      route(std::move(probe), Origin::kServer);
    }
    co_await toDb();
    auto pending = store_.pendingIn(bare);
    auto offline = store_.takeOffline(bare);
    co_await toNetwork();
    if (pending) {
      for (auto& [contact, text] : *pending) {
        if (auto e = xml::parseElement(text)) s->send(*e);
      }
    }
    if (!offline) {
      spdlog::warn("offline messages of {}: {}", bare, offline.error().message());
      co_return;
    }
    for (auto& m : *offline) {
      auto e = xml::parseElement(m.stanza);
      if (!e) continue;
      e->addChild(Element("delay", x::kNsDelay))
          .setAttr("from", config_.domain)
          .setAttr("stamp", m.stored_at);
      x::Jid to = x::Jid::parse(e->attr("to")).value_or(s->jid().bareJid());
      inboundMessage(std::move(*e), to.bareJid());
    }
    co_return;
  }
  auto to = x::Jid::parse(p.attr("to"));
  if (!to) co_return;
  std::string contact = to->bare();
  if (type == "subscribe" || type == "subscribed" || type == "unsubscribe" ||
      type == "unsubscribed") {
    p.setAttr("from", bare);  // RFC 6121 §3.1.2: subscription stanzas carry the bare JID
    p.setAttr("to", contact);
    RosterItem item;
    bool existed = false;
    if (auto it = user->roster.find(contact); it != user->roster.end()) {
      item = it->second;
      existed = true;
    }
    item.contact = contact;
    if (type == "subscribe") {
      if (!hasTo(item)) item.ask = true;
      if (!co_await saveItem(*this, user, item, false)) co_return;
    } else if (type == "subscribed") {
      if (!hasFrom(item) && !co_await hasPendingIn(*this, bare, contact)) {
        // RFC 6121 §3.4: no request to approve: a pre-approval. The item stays as it is,
        // marked approved; nothing goes to the contact until it asks.
        item.approved = true;
        co_await saveItem(*this, user, item, false);
        co_return;
      }
      item.subscription = withFrom(item.subscription, true);
      item.approved = false;
      if (!co_await saveItem(*this, user, item, true)) co_return;
      route(p, Origin::kClient);
      sendCurrentPresence(*this, *user, contact);  // the new subscriber sees us at once
      co_return;
    } else if (type == "unsubscribe") {
      if (!existed) {
        route(p, Origin::kClient);
        co_return;
      }
      item.subscription = withTo(item.subscription, false);
      item.ask = false;
      if (!co_await saveItem(*this, user, item, false)) co_return;
    } else {  // unsubscribed
      if (existed) {
        item.subscription = withFrom(item.subscription, false);
        item.approved = false;  // also cancels a pre-approval (RFC 6121 §3.4)
        if (!co_await saveItem(*this, user, item, true)) co_return;
      } else {
        co_await toDb();
        Status ignored = store_.removePendingIn(bare, contact);  // best effort: nothing to undo
        co_await toNetwork();
        (void)ignored;
      }
      route(p, Origin::kClient);
      for (auto& [res, other] : user->sessions) {
        Element gone("presence");
        gone.setAttr("type", "unavailable").setAttr("from", other->jid().full()).setAttr("to", contact);
        route(std::move(gone), Origin::kServer);
      }
      co_return;
    }
    route(std::move(p), Origin::kClient);
    co_return;
  }
  if (type == "probe") {
    // RFC 6121 §4.3: a client SHOULD NOT probe, but when it does its server handles the probe as
    // one of its own: from the bare JID, answered by the contact's server from its sessions.
    p.setAttr("from", bare).setAttr("to", contact);
    route(std::move(p), Origin::kServer);
    co_return;
  }
  if (type.empty()) s->directedTo().insert(to->full());
  if (type == "unavailable") s->directedTo().erase(to->full());
  route(std::move(p), Origin::kClient);  // directed presence
}

asio::awaitable<void> Core::inboundPresence(Element p, x::Jid to) {
  const std::string type = p.attr("type");
  auto from = x::Jid::parse(p.attr("from"));
  if (!from) co_return;
  std::string contact = from->bare();
  auto user = onlineUser(to.bare());
  bool subscription = type == "subscribe" || type == "subscribed" || type == "unsubscribe" ||
                      type == "unsubscribed";
  if (!user && (subscription || type == "probe")) {
    user = co_await loadUser(to.bare());  // a probe is answered even with nobody online
    if (!user) co_return;
  }
  if (!user) co_return;  // presence for an offline user is dropped (RFC 6121 §4.3)
  if (isBlocked(*user, from->full())) co_return;  // XEP-0191 §3.5
  auto deliverAll = [&](const Element& st) {
    for (auto& [res, s] : user->sessions) {
      if (!s->initialPresenceSent()) continue;
      Element copy = st;
      copy.setAttr("to", s->jid().full());
      s->send(copy);
    }
  };
  RosterItem item;
  bool existed = false;
  if (auto it = user->roster.find(contact); it != user->roster.end()) {
    item = it->second;
    existed = true;
  }
  item.contact = contact;
  if (type == "subscribe") {
    if (existed && (hasFrom(item) || item.approved)) {
      if (!hasFrom(item)) {
        // RFC 6121 §3.4: pre-approved: subscribed at once, the user is not asked.
        item.subscription = withFrom(item.subscription, true);
        item.approved = false;
        if (!co_await saveItem(*this, user, item, false)) co_return;
      }
      Element ok("presence");
      ok.setAttr("type", "subscribed").setAttr("from", user->bare).setAttr("to", contact);
      route(std::move(ok), Origin::kServer);
      sendCurrentPresence(*this, *user, contact);
      co_return;
    }
    std::string text = p.toString();
    std::string owner = user->bare;
    co_await toDb();
    Status st = store_.addPendingIn(owner, contact, text);
    co_await toNetwork();
    if (!st.isOk()) spdlog::warn("subscription request for {}: {}", owner, st.message());
    deliverAll(p);
  } else if (type == "subscribed") {
    if (!existed || (!item.ask && hasTo(item))) co_return;
    item.subscription = withTo(item.subscription, true);
    item.ask = false;
    if (!co_await saveItem(*this, user, item, false)) co_return;
    deliverAll(p);
  } else if (type == "unsubscribe") {
    if (!existed) {
      std::string owner = user->bare;
      co_await toDb();
      Status ignored = store_.removePendingIn(owner, contact);  // best effort
      co_await toNetwork();
      (void)ignored;
      co_return;
    }
    item.subscription = withFrom(item.subscription, false);
    if (!co_await saveItem(*this, user, item, true)) co_return;
    deliverAll(p);
  } else if (type == "unsubscribed") {
    if (!existed) co_return;
    item.subscription = withTo(item.subscription, false);
    item.ask = false;
    if (!co_await saveItem(*this, user, item, false)) co_return;
    deliverAll(p);
  } else if (type == "probe") {
    if (!existed || !hasFrom(item)) co_return;  // §4.3.2: nothing revealed to non-subscribers
    bool any = false;
    for (auto& [res, s] : user->sessions) any = any || s->isAvailable();
    if (any) {
      sendCurrentPresence(*this, *user, from->full());
    } else {
      // RFC 6121 §4.3.2: no available resource: SHOULD answer unavailable, from the bare JID.
      Element gone("presence");
      gone.setAttr("type", "unavailable").setAttr("from", user->bare).setAttr("to", from->full());
      route(std::move(gone), Origin::kServer);
    }
  } else if (type.empty() || type == "unavailable" || type == "error") {
    if (!to.isBare()) {
      if (auto it = user->sessions.find(to.resource); it != user->sessions.end()) it->second->send(p);
      co_return;
    }
    deliverAll(p);
  }
}

void Core::broadcastUnavailable(const std::shared_ptr<C2sSession>& s) {
  Element p("presence");
  p.setAttr("type", "unavailable").setAttr("from", s->jid().full());
  auto user = onlineUser(s->jid().bare());
  if (user && s->isAvailable()) {
    for (const auto& [contact, item] : user->roster) {
      if (!hasFrom(item)) continue;
      Element copy = p;
      copy.setAttr("to", contact);
      route(std::move(copy), Origin::kServer);
    }
    for (auto& [res, other] : user->sessions) {
      if (other == s || !other->initialPresenceSent()) continue;
      Element copy = p;
      copy.setAttr("to", other->jid().full());
      other->send(copy);
    }
  }
  tellDirected(*this, user.get(), *s, p);
}

}  // namespace tandem::frontend
