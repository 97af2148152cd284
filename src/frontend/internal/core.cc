// Core: ownership (hash ring over healthy servers), the user map and stanza routing.
//
// Routing, in order (RFC 6120 §10 adapted to a pool of servers):
//   1. to our domain, no localpart   -> the server itself (disco, ping)
//   2. to a user of our domain       -> the server that owns the bare JID in the user's home
//                                       pool: here, or over the internal link
//   3. to a chat pool's domain       -> the component connection of the room's chat server
//   4. anything else                 -> remote-server-not-found (federation goes via the edge)
// Stanzas that arrived over an internal link are never forwarded again (no loops): if the ring
// views of two servers disagree for a moment, the receiver delivers locally.
#include "frontend/internal/core.h"

#include <spdlog/spdlog.h>

#include "frontend/internal/c2s_session.h"
#include "frontend/internal/components.h"
#include "frontend/internal/links.h"
#include "frontend/internal/proxy.h"
#include "store/connection.h"
#include "store/pool.h"
#include "xmpp/stanza.h"

namespace tandem::frontend {

using xml::Element;
namespace x = xmpp;

Core::Core(asio::io_context& io, FrontendConfig config, rpc::Metrics& metrics)
    : io_(io),
      config_(std::move(config)),
      metrics_(metrics),
      store_(config_.store_addresses, config_.token, static_cast<size_t>(config_.db_threads) + 2),
      auth_db_(static_cast<size_t>(std::max(1, config_.db_threads))) {
  links_ = std::make_unique<Links>(*this);
  components_ = std::make_unique<Components>(*this);
  proxy_ = std::make_unique<Proxy>(*this);
}

Core::~Core() {
  db_.join();
  auth_db_.join();
}

asio::awaitable<void> Core::toDb(bool auth) {
  // The completion is bound to the pool's executor, so the coroutine resumes on a pool thread.
  if (auth) {
    co_await asio::post(asio::bind_executor(auth_db_, asio::use_awaitable));
  } else {
    co_await asio::post(asio::bind_executor(db_, asio::use_awaitable));
  }
}

asio::awaitable<void> Core::toNetwork() {
  co_await asio::post(io_.get_executor(), asio::use_awaitable);
}

void Core::spawn(asio::awaitable<void> a, std::string what) {
  asio::co_spawn(io_, std::move(a), [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::debug("{} ended: {}", what, ex.what());
    }
  });
}

asio::awaitable<void> Core::acceptBackoff(asio::error_code ec, const char* what) {
  metrics_.addCounter("tandem_frontend_accept_errors_total", 1, {{"port", what}});
  auto now = std::chrono::steady_clock::now();
  if (now - last_accept_warning_ >= std::chrono::seconds(1)) {
    last_accept_warning_ = now;
    spdlog::warn("cannot accept a {} connection: {} (retrying every 100 ms)", what, ec.message());
  }
  asio::steady_timer wait(io_, std::chrono::milliseconds(100));
  co_await wait.async_wait(asio::use_awaitable);
}

// ---------------------------------------------------------------------------------------------
// Ownership

std::string Core::homePoolOf(const std::string& user) const {
  if (auto it = cms_directory_.find(user); it != cms_directory_.end()) return it->second;
  if (auto it = config_.directory.find(user); it != config_.directory.end()) return it->second;
  if (auto it = found_users_.find(user); it != found_users_.end()) return it->second;
  return "";
}

asio::awaitable<std::string> Core::findHomePool(const std::string& user) {
  std::string known = homePoolOf(user);
  if (!known.empty()) co_return known;
  auto now = std::chrono::steady_clock::now();
  if (auto it = missing_users_.find(user); it != missing_users_.end() && it->second > now) {
    co_return "";
  }
  std::string found;
  co_await toDb(true);
  if (auto mine = store_.findUser(user); mine && *mine) {
    found = (*mine)->pool;
  } else {
    for (const auto& [pool, addrs] : config_.pool_store_addresses) {
      if (pool == config_.pool_fqdn || addrs.empty()) continue;
      auto c = store::Connection::open(store::connectionString(addrs, "rtc", config_.token));
      if (!c) continue;
      auto r = (*c)->exec("SELECT pool FROM users WHERE name = $1", {user});
      if (r && !r->rows.empty()) {
        found = r->rows[0][0];
        break;
      }
    }
  }
  co_await toNetwork();
  if (found.empty()) {
    missing_users_[user] = now + std::chrono::seconds(3);
  } else {
    found_users_[user] = found;
  }
  co_return found;
}

std::vector<std::string> Core::healthyServers(const std::string& pool) const {
  std::vector<std::string> out;
  auto it = config_.frontend_pools.find(pool);
  if (it == config_.frontend_pools.end()) return out;
  for (const auto& s : it->second) {
    if (s.fqdn == config_.server_fqdn || links_->isUp(s.fqdn)) out.push_back(s.fqdn);
  }
  return out;
}

std::string Core::ownerOf(const std::string& pool, const std::string& bare) const {
  return HashRing(healthyServers(pool)).ownerOf(bare);
}

std::string Core::addressOf(const std::string& server_fqdn) const {
  for (const auto& [pool, servers] : config_.frontend_pools) {
    for (const auto& s : servers) {
      if (s.fqdn == server_fqdn) return s.address;
    }
  }
  return "";
}

void Core::onHealthChanged() {
  std::vector<std::shared_ptr<C2sSession>> moved;
  for (auto& [bare, user] : users_) {
    std::string owner = ownerOf(config_.pool_fqdn, bare);
    if (owner.empty() || owner == config_.server_fqdn) continue;
    for (auto& [res, s] : user->sessions) moved.push_back(s);
  }
  for (auto& s : moved) {
    std::string owner = ownerOf(config_.pool_fqdn, s->jid().bare());
    spdlog::info("{} now belongs to {}: redirecting its session", s->jid().full(), owner);
    s->closeWithError("see-other-host", "user " + s->jid().bare() + " is served by " + owner,
                      addressOf(owner));
  }
}

// ---------------------------------------------------------------------------------------------
// Sign-in failures per address

bool Core::isAuthBlocked(const std::string& address) const {
  auto it = auth_failures_.find(address);
  if (it == auth_failures_.end()) return false;
  if (std::chrono::steady_clock::now() - it->second.window_start >= config_.auth_failure_window)
    return false;
  return it->second.count >= config_.max_auth_failures_per_address;
}

void Core::noteAuthFailure(const std::string& address) {
  auto now = std::chrono::steady_clock::now();
  auto& f = auth_failures_[address];
  if (f.count == 0 || now - f.window_start >= config_.auth_failure_window) {
    f.count = 0;
    f.window_start = now;
  }
  f.count++;
  // Bounded: many addresses (a botnet) only ever keep the current window's entries.
  if (auth_failures_.size() > 100000) {
    std::erase_if(auth_failures_, [&](const auto& kv) {
      return now - kv.second.window_start >= config_.auth_failure_window;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Users and sessions

std::shared_ptr<UserState> Core::onlineUser(const std::string& bare) const {
  auto it = users_.find(bare);
  return it == users_.end() ? nullptr : it->second;
}

asio::awaitable<std::shared_ptr<UserState>> Core::loadUser(const std::string& bare) {
  Status status;
  std::vector<RosterItem> roster;
  std::vector<std::string> blocks;
  co_await toDb();
  if (auto r = store_.roster(bare); !r) {
    status = r.error();
  } else {
    roster = std::move(*r);
    if (auto b = store_.blocks(bare); !b) {
      status = b.error();
    } else {
      blocks = std::move(*b);
    }
  }
  co_await toNetwork();
  if (auto existing = onlineUser(bare)) co_return existing;
  if (!status.isOk()) {
    spdlog::warn("loading user {}: {}", bare, status.message());
    co_return nullptr;
  }
  auto u = std::make_shared<UserState>();
  u->bare = bare;
  for (auto& item : roster) u->roster[item.contact] = item;
  u->blocks.insert(blocks.begin(), blocks.end());
  co_return u;
}

void Core::bindSession(const std::shared_ptr<C2sSession>& s, std::shared_ptr<UserState> user) {
  auto& slot = users_[user->bare];
  if (!slot) slot = std::move(user);
  auto& existing = slot->sessions[s->jid().resource];
  if (existing && existing != s) {
    auto old = existing;
    existing = s;
    old->closeWithError("conflict", "replaced by a new connection with the same resource");
  }
  existing = s;
  metrics_.setGauge("tandem_frontend_sessions", static_cast<double>(sessionCount()), {},
                    "bound client sessions on this server");
}

void Core::unbindSession(const std::shared_ptr<C2sSession>& s) {
  auto it = users_.find(s->jid().bare());
  if (it == users_.end()) return;
  auto& sessions = it->second->sessions;
  auto si = sessions.find(s->jid().resource);
  if (si != sessions.end() && si->second == s) sessions.erase(si);
  if (sessions.empty()) users_.erase(it);
  metrics_.setGauge("tandem_frontend_sessions", static_cast<double>(sessionCount()));
}

size_t Core::sessionCount() const {
  size_t n = 0;
  for (const auto& [bare, u] : users_) n += u->sessions.size();
  return n;
}

std::vector<std::shared_ptr<C2sSession>> Core::allSessions() const {
  std::vector<std::shared_ptr<C2sSession>> out;
  for (const auto& [bare, u] : users_) {
    for (const auto& [res, s] : u->sessions) out.push_back(s);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Routing

namespace {
bool bounceable(const Element& st) {
  const std::string& type = st.attr("type");
  if (type == "error") return false;
  if (st.name() == "iq" && type == "result") return false;
  if (st.name() == "presence") return false;
  return true;
}
}  // namespace

void Core::route(Element st, Origin origin) {
  auto started = std::chrono::steady_clock::now();
  auto bounce = [this](const Element& s, const char* cond, const std::string& text) {
    if (!bounceable(s) || s.attr("from").empty()) return;
    route(x::errorReply(s, "cancel", cond, text), Origin::kServer);
  };
  auto to = x::Jid::parse(st.attr("to"));
  if (!to) {
    bounce(st, "jid-malformed", "");
    return;
  }
  if (to->domain == config_.domain) {
    if (to->local.empty()) {
      handleServerStanza(st, [this](Element r) { route(std::move(r), Origin::kServer); });
      return;
    }
    std::string pool = homePoolOf(to->local);
    if (!pool.empty()) {
      routeToUser(std::move(st), *to, pool, origin, started);
    } else if (auto w = waiting_for_lookup_.find(to->local); w != waiting_for_lookup_.end()) {
      w->second.emplace_back(std::move(st), origin);  // behind the stanza being looked up
    } else {
      waiting_for_lookup_[to->local];
      spawn(routeAfterLookup(std::move(st), *to, origin), "user lookup");
    }
    return;
  }
  if (config_.chat_pools.count(to->domain)) {
    components_->route(std::move(st), to->domain, origin);
    return;
  }
  bounce(st, "remote-server-not-found", "federation with " + to->domain + " is not available here");
}

asio::awaitable<void> Core::routeAfterLookup(Element st, x::Jid to, Origin origin) {
  auto started = std::chrono::steady_clock::now();
  std::string user = to.local;
  std::string pool;
  try {
    pool = co_await findHomePool(user);
  } catch (const std::exception& e) {
    spdlog::warn("looking up the home pool of {}: {}", user, e.what());
  }
  routeToUser(std::move(st), to, pool, origin, started);
  // Stanzas for the same user that arrived during the lookup, in their order (a second lookup
  // running beside the first could finish first and let a later stanza overtake, #14).
  auto waiting = std::move(waiting_for_lookup_[user]);
  waiting_for_lookup_.erase(user);
  for (auto& [w, o] : waiting) {
    auto wto = x::Jid::parse(w.attr("to"));
    if (wto) routeToUser(std::move(w), *wto, pool, o, started);
  }
}

void Core::routeToUser(Element st, const x::Jid& to, const std::string& pool, Origin origin,
                       std::chrono::steady_clock::time_point started) {
  auto bounce = [this](const Element& s, const std::string& text) {
    if (!bounceable(s) || s.attr("from").empty()) return;
    route(x::errorReply(s, "cancel", "service-unavailable", text), Origin::kServer);
  };
  if (pool.empty()) {
    bounce(st, "there is no user " + to.bare());
    return;
  }
  std::string owner = ownerOf(pool, to.bare());
  if (owner == config_.server_fqdn || (origin == Origin::kLink && pool == config_.pool_fqdn)) {
    deliverLocal(std::move(st), to, origin);
  } else if (owner.empty() || origin == Origin::kLink || !links_->send(owner, st)) {
    bounce(st, "the home pool of " + to.bare() + " is unreachable");
    return;
  }
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - started)
                .count();
  metrics_.addCounter("tandem_frontend_routed_total");
  metrics_.addCounter("tandem_frontend_routing_microseconds_total", static_cast<double>(us));
}

void Core::deliverLocal(Element st, const x::Jid& to, Origin /*origin*/) {
  if (st.name() == "message") {
    inboundMessage(std::move(st), to);
    return;
  }
  if (st.name() == "presence") {
    spawn(inboundPresence(std::move(st), to), "inbound presence");
    return;
  }
  // iq
  auto user = onlineUser(to.bare());
  if (user && isBlocked(*user, st.attr("from"))) {
    // XEP-0191 §3.5: nothing from a blocked entity is delivered; it learns only this.
    if (bounceable(st)) route(x::errorReply(st, "cancel", "service-unavailable"), Origin::kServer);
    return;
  }
  if (!to.isBare()) {
    if (user) {
      if (auto it = user->sessions.find(to.resource); it != user->sessions.end()) {
        it->second->send(st);
        return;
      }
    }
    if (bounceable(st)) route(x::errorReply(st, "cancel", "service-unavailable"), Origin::kServer);
    return;
  }
  // An iq to a user's bare JID is answered by the server on the user's behalf (RFC 6120 §10.5.4).
  const std::string& type = st.attr("type");
  if (type == "result" || type == "error") return;
  if (auto r = accountDisco(st)) {
    route(std::move(*r), Origin::kServer);
    return;
  }
  if (st.child("ping", x::kNsPing)) {
    route(x::iqResult(st), Origin::kServer);
    return;
  }
  route(x::errorReply(st, "cancel", "service-unavailable"), Origin::kServer);
}

bool isBlocked(const UserState& user, const std::string& jid) {
  if (user.blocks.empty()) return false;
  auto j = x::Jid::parse(jid);
  if (!j) return false;
  return user.blocks.count(j->full()) || user.blocks.count(j->bare()) ||
         user.blocks.count(j->domain);
}

// XEP-0030 §3.2 / §4.2: the server and accounts publish no nodes.
static std::optional<Element> unknownDiscoNode(const Element& iq) {
  for (const char* ns : {x::kNsDiscoInfo, x::kNsDiscoItems}) {
    const Element* q = iq.child("query", ns);
    if (q && !q->attr("node").empty()) {
      return x::errorReply(iq, "cancel", "item-not-found", "there is no node " + q->attr("node"));
    }
  }
  return std::nullopt;
}

std::optional<Element> accountDisco(const Element& iq) {
  if (iq.attr("type") != "get") return std::nullopt;
  if (auto err = unknownDiscoNode(iq)) return err;
  if (iq.child("query", x::kNsDiscoInfo)) {
    Element r = x::iqResult(iq);
    Element& q = r.addChild(Element("query", x::kNsDiscoInfo));
    q.addChild(Element("identity")).setAttr("category", "account").setAttr("type", "registered");
    q.addChild(Element("feature")).setAttr("var", x::kNsDiscoInfo);  // XEP-0030 §3.1: MUST
    return r;
  }
  if (iq.child("query", x::kNsDiscoItems)) {
    Element r = x::iqResult(iq);
    r.addChild(Element("query", x::kNsDiscoItems));  // an account publishes no items here
    return r;
  }
  return std::nullopt;
}

void Core::handleServerStanza(const Element& st, const std::function<void(Element)>& reply) {
  if (st.name() != "iq") return;
  const std::string& type = st.attr("type");
  if (type == "result" || type == "error") return;
  if (auto err = unknownDiscoNode(st); err && type == "get") {
    reply(std::move(*err));
    return;
  }
  if (type == "get" && st.child("query", x::kNsDiscoInfo)) {
    Element r = x::iqResult(st);
    Element& q = r.addChild(Element("query", x::kNsDiscoInfo));
    q.addChild(Element("identity"))
        .setAttr("category", "server")
        .setAttr("type", "im")
        .setAttr("name", "Tandem");
    for (const char* f : {x::kNsDiscoInfo, x::kNsDiscoItems, x::kNsPing, x::kNsCarbons,
                          x::kNsBlocking, x::kNsSm, "jabber:iq:roster", "urn:xmpp:delay"}) {
      q.addChild(Element("feature")).setAttr("var", f);
    }
    reply(std::move(r));
    return;
  }
  if (type == "get" && st.child("query", x::kNsDiscoItems)) {
    Element r = x::iqResult(st);
    Element& q = r.addChild(Element("query", x::kNsDiscoItems));
    for (const auto& [fqdn, chat] : config_.chat_pools) {
      q.addChild(Element("item")).setAttr("jid", fqdn).setAttr("name", "Persistent chat");
    }
    reply(std::move(r));
    return;
  }
  if (st.child("ping", x::kNsPing)) {
    reply(x::iqResult(st));
    return;
  }
  reply(x::errorReply(st, "cancel", "service-unavailable"));
}

}  // namespace tandem::frontend
