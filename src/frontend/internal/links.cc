// Internal links between front-end servers: connectors, acceptor, handshake, forwarding.
#include "frontend/internal/links.h"

#include <spdlog/spdlog.h>

#include <asio/experimental/awaitable_operators.hpp>

#include "frontend/internal/proxy.h"
#include "xmpp/sasl.h"
#include "xmpp/stanza.h"
#include "xmpp/stream_reader.h"

namespace tandem::frontend {

using namespace asio::experimental::awaitable_operators;
using xml::Element;
namespace x = xmpp;

Status Links::start(std::shared_ptr<asio::ssl::context> server_tls,
                    std::shared_ptr<asio::ssl::context> client_tls) {
  server_tls_ = std::move(server_tls);
  client_tls_ = std::move(client_tls);
  const auto& cfg = core_.config();
  asio::error_code ec;
  auto addr = asio::ip::make_address(cfg.address, ec);
  if (ec) return invalidArgument("server address `" + cfg.address + "` is not an IP address");
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(core_.io());
  asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(cfg.link_port));
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(128, ec);
  if (ec) {
    return unavailable("cannot listen on " + cfg.address + ":" + std::to_string(cfg.link_port) +
                       " (internal link): " + ec.message());
  }
  core_.spawn(acceptLoop(), "link acceptor");
  for (const auto& [pool, servers] : cfg.frontend_pools) {
    for (const auto& s : servers) {
      if (s.fqdn == cfg.server_fqdn) continue;
      auto peer = std::make_shared<Peer>();
      peer->info = s;
      peers_[s.fqdn] = peer;
      core_.spawn(connectLoop(peer), "link to " + s.fqdn);
    }
  }
  return Status::ok();
}

void Links::stop() {
  stopped_ = true;
  asio::error_code ec;
  if (acceptor_) acceptor_->close(ec);
  for (auto& [fqdn, p] : peers_) {
    if (p->transport) p->transport->close();
  }
}

bool Links::isUp(const std::string& fqdn) const {
  auto it = peers_.find(fqdn);
  return it != peers_.end() && it->second->up;
}

std::map<std::string, bool> Links::peerStates() const {
  std::map<std::string, bool> out;
  for (const auto& [fqdn, p] : peers_) out[fqdn] = p->up;
  return out;
}

bool Links::send(const std::string& fqdn, const Element& stanza) {
  auto it = peers_.find(fqdn);
  if (it == peers_.end() || !it->second->up) return false;
  auto& peer = it->second;
  peer->out += stanza.toString();
  if (!peer->writing) core_.spawn(flush(peer), "link write");
  core_.metrics().addCounter("tandem_frontend_link_stanzas_out_total", 1, {{"peer", fqdn}});
  return true;
}

asio::awaitable<void> Links::flush(std::shared_ptr<Peer> peer) {
  peer->writing = true;
  auto t = peer->transport;
  try {
    while (peer->up && t && peer->transport == t && !peer->out.empty()) {
      std::string chunk;
      chunk.swap(peer->out);
      co_await t->writeAll(std::move(chunk));
    }
  } catch (const std::exception&) {
    if (t) t->close();
  }
  peer->writing = false;
}

asio::awaitable<bool> Links::connectOnce(Peer& peer) {
  const auto& cfg = core_.config();
  asio::ip::tcp::socket sock(core_.io());
  asio::ip::tcp::endpoint ep(asio::ip::make_address(peer.info.address),
                             static_cast<unsigned short>(cfg.link_port));
  asio::steady_timer timer(core_.io());
  timer.expires_after(std::chrono::seconds(2));
  auto r = co_await (sock.async_connect(ep, asio::use_awaitable) ||
                     timer.async_wait(asio::use_awaitable));
  if (r.index() != 0) co_return false;
  peer.transport = std::make_shared<x::Transport>(std::move(sock), client_tls_);
  auto t = peer.transport;  // this attempt's stream, alive until the attempt ends
  timer.expires_after(std::chrono::seconds(5));
  auto hs = co_await (t->handshakeClient(peer.info.address) ||
                      timer.async_wait(asio::use_awaitable));
  if (hs.index() != 0) co_return false;
  co_await t->writeAll(x::streamHeader(kNsLink, cfg.server_fqdn, peer.info.fqdn, ""));
  x::StreamReader reader(*t);
  auto ev = co_await reader.next();
  if (ev.kind != x::StreamEvent::kOpen || ev.element.attr("id").empty()) co_return false;
  std::string digest = x::sha1Hex(ev.element.attr("id") + cfg.token);
  co_await t->writeAll("<handshake>" + digest + "</handshake>");
  ev = co_await reader.next();
  if (ev.kind != x::StreamEvent::kStanza || ev.element.name() != "handshake") {
    spdlog::warn("internal link to {} refused: {}", peer.info.fqdn, ev.element.toString());
    co_return false;
  }
  peer.up = true;
  spdlog::info("internal link to {} is up", peer.info.fqdn);
  core_.onHealthChanged();
  // Hold the link: the acceptor sends nothing more, so any read result means it is gone.
  while (true) {
    ev = co_await reader.next();
    if (ev.kind == x::StreamEvent::kClose || ev.kind == x::StreamEvent::kError) break;
  }
  co_return true;
}

asio::awaitable<void> Links::connectLoop(std::shared_ptr<Peer> peer) {
  asio::steady_timer wait(core_.io());
  while (!stopped_) {
    try {
      co_await connectOnce(*peer);
    } catch (const std::exception& e) {
      spdlog::debug("internal link to {}: {}", peer->info.fqdn, e.what());
    }
    if (!peer->tried) {
      peer->tried = true;
      attempts_done_++;
    }
    bool was_up = peer->up;
    peer->up = false;
    peer->out.clear();
    if (peer->transport) peer->transport->close();
    if (was_up) {
      spdlog::warn("internal link to {} is down", peer->info.fqdn);
      core_.metrics().addCounter("tandem_frontend_link_down_total", 1, {{"peer", peer->info.fqdn}});
      core_.proxy().onPeerDown(peer->info.fqdn);
      core_.onHealthChanged();
    }
    if (stopped_) break;
    wait.expires_after(std::chrono::seconds(1));
    co_await wait.async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> Links::acceptLoop() {
  while (!stopped_) {
    asio::error_code ec;
    auto sock = co_await acceptor_->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopped_ || ec == asio::error::operation_aborted) break;
      co_await core_.acceptBackoff(ec, "internal link");
      continue;
    }
    core_.spawn(serveInbound(std::move(sock)), "inbound link");
  }
}

asio::awaitable<void> Links::serveInbound(asio::ip::tcp::socket socket) {
  const auto& cfg = core_.config();
  x::Transport t(std::move(socket), server_tls_);
  std::string authenticated;  // the peer, once its handshake succeeded
  try {
    asio::steady_timer timer(core_.io());
    timer.expires_after(std::chrono::seconds(5));
    auto hs = co_await (t.handshakeServer() || timer.async_wait(asio::use_awaitable));
    if (hs.index() != 0) co_return;
    x::StreamReader reader(t, {4 * 1024 * 1024, 64});
    auto ev = co_await reader.next();
    if (ev.kind != x::StreamEvent::kOpen) co_return;
    std::string peer = ev.element.attr("from");
    std::string id = x::newId();
    co_await t.writeAll(x::streamHeader(kNsLink, cfg.server_fqdn, peer, id));
    if (core_.addressOf(peer).empty()) {
      co_await t.writeAll(x::streamError("not-authorized", "unknown front-end server"));
      co_return;
    }
    ev = co_await reader.next();
    if (ev.kind != x::StreamEvent::kStanza || ev.element.name() != "handshake" ||
        ev.element.text() != x::sha1Hex(id + cfg.token)) {
      core_.metrics().addCounter("tandem_frontend_link_auth_failures_total");
      co_await t.writeAll(x::streamError("not-authorized", "wrong deployment secret"));
      co_return;
    }
    co_await t.writeAll("<handshake/>");
    authenticated = peer;
    while (true) {
      ev = co_await reader.next();
      if (ev.kind != x::StreamEvent::kStanza) break;
      if (ev.element.name() == "proxy") {  // a proxied client's traffic (proxy.h)
        core_.proxy().onLinkElement(peer, std::move(ev.element));
        continue;
      }
      core_.countStanzaIn();
      ev.element.removeAttr("xmlns");
      core_.route(std::move(ev.element), Origin::kLink);
    }
  } catch (const std::exception& e) {
    spdlog::debug("inbound internal link: {}", e.what());
  }
  t.close();
  // The peer's outbound link is gone: what it relayed to us (or for us) is cut off.
  if (!authenticated.empty() && !stopped_) core_.proxy().onPeerDown(authenticated);
}

}  // namespace tandem::frontend
