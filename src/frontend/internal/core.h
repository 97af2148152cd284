// Core: the shared state of one front-end server and the routing between its parts.
//
// Threading: everything here lives on one io_context thread (the "network thread"): sessions,
// the user map, links and components are touched only there, so none of it needs locks.
// PostgreSQL calls run on `db_` (one thread: it keeps each user's writes in the order they were
// issued, e.g. offline messages) or `auth_db_` (credential reads), and resume on the network
// thread. The admin endpoint's handlers post to the network thread and wait for the answer.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <asio.hpp>

#include "common/hash_ring.h"
#include "frontend/config.h"
#include "frontend/user_store.h"
#include "rpc/metrics.h"
#include "xml/element.h"
#include "xmpp/jid.h"

namespace tandem::frontend {

class C2sSession;
class Core;
class Links;
class Components;
class Proxy;

// What we keep for a user while at least one of their sessions is bound.
struct UserState {
  std::string bare;
  std::map<std::string, RosterItem> roster;  // by contact bare JID
  std::set<std::string> blocks;
  std::map<std::string, std::shared_ptr<C2sSession>> sessions;  // by resource
};

// <item/> of a roster (RFC 6121 §2.1.2); `removed` gives subscription='remove'.
xml::Element rosterItemElement(const RosterItem& item, bool removed);
// The roster's version (RFC 6121 §2.6): a digest of its items, the same for the same content.
std::string rosterVersion(const UserState& user);
// Whether `jid` matches the user's block list (XEP-0191 §6: full JID, bare JID or domain).
bool isBlocked(const UserState& user, const std::string& jid);
// Each available resource of `user` sends its current presence to `to` (presence.cc).
void sendCurrentPresence(Core& core, const UserState& user, const std::string& to);
// disco#info / disco#items answered by the server for a user's bare JID (XEP-0030 §3: the
// account; RFC 6120 §10.5.4); nullopt when `iq` is neither.
std::optional<xml::Element> accountDisco(const xml::Element& iq);

// Where a stanza came from, for loop prevention and trust.
enum class Origin { kClient, kLink, kComponent, kServer };

class Core {
 public:
  Core(asio::io_context& io, FrontendConfig config, rpc::Metrics& metrics);
  ~Core();

  asio::io_context& io() { return io_; }
  const FrontendConfig& config() const { return config_; }
  UserStore& store() { return store_; }
  rpc::Metrics& metrics() { return metrics_; }
  Links& links() { return *links_; }
  Components& components() { return *components_; }
  Proxy& proxy() { return *proxy_; }

  // Moves the calling coroutine to a PostgreSQL thread (`auth`: the credential-lookup pool) /
  // back to the network thread. Between the two, touch only the store:
  //   co_await core.toDb(); auto r = core.store().roster(bare); co_await core.toNetwork();
  // (No lambdas are handed to coroutines: GCC 12 miscompiles lambda captures in coroutine
  // parameters and temporaries in co_await expressions.)
  asio::awaitable<void> toDb(bool auth = false);
  asio::awaitable<void> toNetwork();
  // Runs a coroutine detached on the network thread, logging what it throws.
  void spawn(asio::awaitable<void> a, std::string what);
  // After a failed accept (not a closed acceptor) on the `what` port: counts it
  // (tandem_frontend_accept_errors_total), logs it at most once a second and waits 100 ms.
  // Out of descriptors (EMFILE) the connection stays queued and the next accept fails at once:
  // without the wait an accept loop would spin a core while the server is full.
  asio::awaitable<void> acceptBackoff(asio::error_code ec, const char* what);

  // ---- ownership (ring over each front-end pool's healthy servers) ----
  // Replaces the users known from the CMS (settings users.<name>): name -> home pool.
  void setCmsDirectory(std::map<std::string, std::string> users) { cms_directory_ = std::move(users); }
  // The pool a user belongs to, from the directory; "" when unknown.
  std::string homePoolOf(const std::string& user) const;
  // Looks a user up in every pool's rtc when the directory does not know it (cached).
  asio::awaitable<std::string> findHomePool(const std::string& user);
  // The server of `pool` that owns `bare` right now; "" when none is healthy.
  std::string ownerOf(const std::string& pool, const std::string& bare) const;
  std::vector<std::string> healthyServers(const std::string& pool) const;
  std::string addressOf(const std::string& server_fqdn) const;
  // Called by Links when a peer goes up or down: redirects sessions we no longer own.
  void onHealthChanged();

  // ---- routing ----
  // Routes a stanza whose `from` is already trusted/stamped.
  void route(xml::Element stanza, Origin origin);
  // A stanza for a user this server owns (bare or full `to`).
  void deliverLocal(xml::Element stanza, const xmpp::Jid& to, Origin origin);
  // Stanzas addressed to the domain itself (disco, ping) from a session or peer.
  void handleServerStanza(const xml::Element& stanza, const std::function<void(xml::Element)>& reply);

  // ---- sessions and users ----
  std::shared_ptr<UserState> onlineUser(const std::string& bare) const;
  // Loads roster and blocks from the store (for a user with no online state yet).
  asio::awaitable<std::shared_ptr<UserState>> loadUser(const std::string& bare);
  // Registers a bound session; replaces (and closes) one with the same resource.
  void bindSession(const std::shared_ptr<C2sSession>& s, std::shared_ptr<UserState> user);
  void unbindSession(const std::shared_ptr<C2sSession>& s);
  // Sessions detached by stream management, waiting for resumption: by SM id.
  std::map<std::string, std::shared_ptr<C2sSession>> detached;
  size_t sessionCount() const;
  std::vector<std::shared_ptr<C2sSession>> allSessions() const;

  // Presence and subscriptions (presence.cc).
  asio::awaitable<void> outboundPresence(std::shared_ptr<C2sSession> s, xml::Element p);
  asio::awaitable<void> inboundPresence(xml::Element p, xmpp::Jid to);
  void broadcastUnavailable(const std::shared_ptr<C2sSession>& s);
  // Pushes a roster item to every session of `user` (RFC 6121 §2.1.6).
  void pushRoster(UserState& user, const RosterItem& item, bool removed);

  // Messages (messages.cc).
  void outboundMessage(const std::shared_ptr<C2sSession>& s, xml::Element m);
  void inboundMessage(xml::Element m, const xmpp::Jid& to);
  void storeOffline(const std::string& bare, const xml::Element& m);

  // Delivery of a stanza for a user whose home pool must be looked up first.
  asio::awaitable<void> routeAfterLookup(xml::Element stanza, xmpp::Jid to, Origin origin);
  void routeToUser(xml::Element stanza, const xmpp::Jid& to, const std::string& pool, Origin origin,
                   std::chrono::steady_clock::time_point started);
  asio::awaitable<void> storeOfflineAsync(std::string bare, std::string text, xml::Element m);

  // Sign-in failures per client address (auth failure backoff across connections): blocked
  // once config().max_auth_failures_per_address failed within config().auth_failure_window.
  bool isAuthBlocked(const std::string& address) const;
  void noteAuthFailure(const std::string& address);

  // Counters.
  void countStanzaIn() { metrics_.addCounter("tandem_frontend_stanzas_in_total"); }
  void countStanzaOut() { metrics_.addCounter("tandem_frontend_stanzas_out_total"); }

  // When the server started listening (health, status).
  std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();

 private:
  asio::io_context& io_;
  std::chrono::steady_clock::time_point last_accept_warning_{};
  FrontendConfig config_;
  rpc::Metrics& metrics_;
  UserStore store_;
  asio::thread_pool db_{1};
  asio::thread_pool auth_db_;
  std::unique_ptr<Links> links_;
  std::unique_ptr<Components> components_;
  std::unique_ptr<Proxy> proxy_;
  std::map<std::string, std::shared_ptr<UserState>> users_;
  std::map<std::string, std::string> cms_directory_;
  std::map<std::string, std::string> found_users_;  // name -> pool, from rtc lookups
  std::map<std::string, std::chrono::steady_clock::time_point> missing_users_;  // negative cache
  // Stanzas for a user whose home pool is being looked up, by user name, in arrival order: one
  // lookup per user at a time, so none overtakes another (routeAfterLookup).
  std::map<std::string, std::vector<std::pair<xml::Element, Origin>>> waiting_for_lookup_;
  struct AuthFailures {
    int count = 0;
    std::chrono::steady_clock::time_point window_start;
  };
  std::map<std::string, AuthFailures> auth_failures_;  // by client address
};

}  // namespace tandem::frontend
