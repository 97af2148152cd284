// Roster management IQs (RFC 6121 §2): get, set and remove, with pushes to every resource.
//
// Roster versioning (RFC 6121 §2.6): the version is a digest of the roster's content, so it
// needs no storage, is the same on whichever server owns the user, and a roster that comes back
// to an earlier content comes back to that content's version (which the client then holds).
// A get naming the current version is answered with an empty result; any other gets the whole
// roster (§2.6.3 allows it in place of interim pushes).
#include <spdlog/spdlog.h>

#include "frontend/internal/c2s_session.h"
#include "xmpp/stanza.h"

namespace tandem::frontend {

using xml::Element;
namespace x = xmpp;

Element rosterItemElement(const RosterItem& item, bool removed) {
  Element e("item");
  e.setAttr("jid", item.contact);
  if (removed) {
    e.setAttr("subscription", "remove");
    return e;
  }
  if (!item.name.empty()) e.setAttr("name", item.name);
  e.setAttr("subscription", item.subscription);
  if (item.ask) e.setAttr("ask", "subscribe");
  if (item.approved) e.setAttr("approved", "true");
  for (const auto& g : item.groups) e.addChild(Element("group")).addText(g);
  return e;
}

std::string rosterVersion(const UserState& user) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64 over the items, in contact order
  for (const auto& [contact, item] : user.roster) {
    for (char c : rosterItemElement(item, false).toString() + "\n") {
      h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    }
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void Core::pushRoster(UserState& user, const RosterItem& item, bool removed) {
  const std::string ver = rosterVersion(user);
  for (auto& [res, s] : user.sessions) {
    if (!s->interested()) continue;
    Element push("iq");
    push.setAttr("type", "set").setAttr("id", x::newId()).setAttr("to", s->jid().full());
    push.addChild(Element("query", x::kNsRoster))
        .setAttr("ver", ver)
        .addChild(rosterItemElement(item, removed));
    s->send(push);
  }
}

asio::awaitable<void> C2sSession::onRosterIq(Element iq) {
  auto user = core_.onlineUser(jid_.bare());
  if (!user) co_return;
  const std::string& type = iq.attr("type");
  const Element* query = iq.child("query", x::kNsRoster);
  if (type == "get") {
    interested_ = true;
    Element r = x::iqResult(iq);
    const std::string ver = rosterVersion(*user);
    if (query->hasAttr("ver") && query->attr("ver") == ver) {
      send(r);  // RFC 6121 §2.6.3: the client's copy is current
      co_return;
    }
    Element& q = r.addChild(Element("query", x::kNsRoster));
    q.setAttr("ver", ver);
    for (const auto& [contact, item] : user->roster) q.addChild(rosterItemElement(item, false));
    send(r);
    co_return;
  }
  auto items = query->childrenNamed("item");
  if (type != "set" || items.size() != 1) {
    send(x::errorReply(iq, "modify", "bad-request", "a roster set carries exactly one item"));
    co_return;
  }
  const Element& in = *items[0];
  auto contact = x::Jid::parse(in.attr("jid"));
  if (!contact || contact->bare() == jid_.bare()) {
    send(x::errorReply(iq, "modify", "bad-request", "the item's JID is invalid"));
    co_return;
  }
  std::string owner = jid_.bare();
  std::string cjid = contact->bare();
  if (in.attr("subscription") == "remove") {
    auto it = user->roster.find(cjid);
    if (it == user->roster.end()) {
      send(x::errorReply(iq, "cancel", "item-not-found"));
      co_return;
    }
    RosterItem old = it->second;
    co_await core_.toDb();
    Status st = core_.store().removeRosterItem(owner, cjid);
    if (st.isOk()) st = core_.store().removePendingIn(owner, cjid);
    co_await core_.toNetwork();
    if (!st.isOk()) {
      spdlog::warn("roster of {}: {}", owner, st.message());
      send(x::errorReply(iq, "wait", "internal-server-error"));
      co_return;
    }
    user->roster.erase(cjid);
    send(x::iqResult(iq));
    core_.pushRoster(*user, old, true);
    // RFC 6121 §2.5.2: cancel both directions of the subscription.
    for (const char* t : {"unsubscribe", "unsubscribed"}) {
      bool needed = std::string(t) == "unsubscribe"
                        ? (old.subscription == "to" || old.subscription == "both" || old.ask)
                        : (old.subscription == "from" || old.subscription == "both");
      if (!needed) continue;
      Element p("presence");
      p.setAttr("type", t).setAttr("from", owner).setAttr("to", cjid);
      core_.route(p, Origin::kServer);
    }
    co_return;
  }
  RosterItem item;
  if (auto it = user->roster.find(cjid); it != user->roster.end()) item = it->second;
  item.contact = cjid;
  item.name = in.attr("name");
  item.groups.clear();
  for (const Element* g : in.childrenNamed("group")) {
    std::string name = g->text();
    if (name.empty() || name.size() > 1024) {
      send(x::errorReply(iq, "modify", "not-acceptable", "a group name is empty or too long"));
      co_return;
    }
    item.groups.push_back(name);
  }
  co_await core_.toDb();
  Status st = core_.store().putRosterItem(owner, item);
  co_await core_.toNetwork();
  if (!st.isOk()) {
    spdlog::warn("roster of {}: {}", owner, st.message());
    send(x::errorReply(iq, "wait", "internal-server-error"));
    co_return;
  }
  user->roster[cjid] = item;
  send(x::iqResult(iq));
  core_.pushRoster(*user, item, false);
}

}  // namespace tandem::frontend
