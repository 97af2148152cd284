// Proxy: sessions of clients that cannot follow see-other-host (issue 6 §4). The server the
// client reached (the "via" server) keeps the client's TCP/TLS stream and its XML parser; the
// owner of the bare JID holds the session itself (SASL, binding, roster, presence, offline
// delivery, carbons, stream management), exactly as for a direct client.
//
// Protocol, over the internal links (links.h; each server writes only on its own outbound link,
// so via -> owner goes over the via's link and owner -> via over the owner's):
//   via -> owner  <proxy op='open' id='P' remote='ADDR' tls='starttls|direct'><auth .../></proxy>
//                 <proxy op='header' id='P'><stream:stream .../></proxy>   a stream (re)start
//                 <proxy op='in' id='P'><message .../></proxy>               a client stanza
//                 <proxy op='close' id='P' how='clean|lost|error'/>          the client is gone
//   owner -> via  <proxy op='out' id='P'>raw XML text for the client</proxy>
//                 <proxy op='reset' id='P'/>    restart the parser (after SASL success)
//                 <proxy op='bound' id='P' jid='user@domain/res'/>   for status pages
//                 <proxy op='end' id='P'/>      close the client's connection after the output
// A link that drops (either direction) ends every proxied session that depends on it: the via
// ends its clients' streams with <reset/> (they reconnect and land wherever the ring says
// now); the owner treats the connection as lost (stream management may resume it later).
//
// Mode (CMS setting frontend.<pool>.redirect, read from the replica): `redirect` always sends
// see-other-host; `proxy` always proxies; `auto` (default) redirects first and proxies a bare
// JID that comes back to this server within kAutoWindow of being redirected (a client that did
// not follow the redirect: aioxmpp 0.13 reconnects to the address it was given).
// Lives on the network thread (core.h).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "frontend/internal/core.h"

namespace tandem::frontend {

inline constexpr std::chrono::seconds kAutoWindow{60};

enum class RedirectMode { kRedirect, kProxy, kAuto };
// Parses "redirect" | "proxy" | "auto"; nullopt otherwise.
std::optional<RedirectMode> parseRedirectMode(const std::string& s);
const char* redirectModeName(RedirectMode m);

class Proxy {
 public:
  explicit Proxy(Core& core) : core_(core) {}

  void setMode(RedirectMode m) { mode_ = m; }
  RedirectMode mode() const { return mode_; }

  // True when a client of `bare` reaching this (non-owner) server should be proxied now.
  bool shouldProxy(const std::string& bare) const;
  // Records that `bare` was just sent see-other-host by this server (for `auto`).
  void noteRedirect(const std::string& bare);

  // ---- via side ----
  // Starts relaying the connection of `s` to `owner`, handing it `auth` (the client's SASL
  // <auth/>). False (nothing changed) when the link to `owner` is not up.
  bool openRelay(const std::shared_ptr<C2sSession>& s, const std::string& owner,
                 const std::string& id, const xml::Element& auth);
  // Forwards a parsed client event: "header", "in" (stanza) or "close" (with `how`).
  void forward(const std::string& owner, const std::string& id, const std::string& op,
               const xml::Element* child, const std::string& how = "");
  void dropRelay(const std::string& id) { relays_.erase(id); }
  size_t relayCount() const { return relays_.size(); }
  // Relayed connections for status pages: id -> session.
  const std::map<std::string, std::weak_ptr<C2sSession>>& relays() const { return relays_; }

  // ---- owner side ----
  void toClient(const std::string& via, const std::string& id, const std::string& data);
  void control(const std::string& via, const std::string& id, const std::string& op,
               const std::string& jid = "");
  void dropProxied(const std::string& via, const std::string& id) {
    proxied_.erase(via + "|" + id);
  }
  size_t proxiedCount() const { return proxied_.size(); }

  // ---- both ----
  // A <proxy/> element that arrived over the inbound link from `peer`.
  void onLinkElement(const std::string& peer, xml::Element el);
  // A link to or from `peer` dropped: end what depended on it.
  void onPeerDown(const std::string& peer);

 private:
  Core& core_;
  RedirectMode mode_ = RedirectMode::kAuto;
  std::map<std::string, std::chrono::steady_clock::time_point> redirected_;  // bare -> when
  std::map<std::string, std::weak_ptr<C2sSession>> relays_;  // via side: id -> client stream
  std::map<std::string, std::shared_ptr<C2sSession>> proxied_;  // owner side: "via|id"
};

}  // namespace tandem::frontend
