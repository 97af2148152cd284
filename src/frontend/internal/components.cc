// The component port (XEP-0114) and room routing to the owning chat server.
#include "frontend/internal/components.h"

#include <spdlog/spdlog.h>

#include "common/hash_ring.h"
#include "frontend/internal/links.h"
#include "xmpp/jid.h"
#include "xmpp/sasl.h"
#include "xmpp/stanza.h"
#include "xmpp/stream_reader.h"

namespace tandem::frontend {

using xml::Element;
namespace x = xmpp;

Status Components::start() {
  const auto& cfg = core_.config();
  asio::error_code ec;
  auto addr = asio::ip::make_address(cfg.address, ec);
  if (ec) return invalidArgument("server address `" + cfg.address + "` is not an IP address");
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(core_.io());
  asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(cfg.component_port));
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(128, ec);
  if (ec) {
    return unavailable("cannot listen on " + cfg.address + ":" +
                       std::to_string(cfg.component_port) + " (component port): " + ec.message());
  }
  core_.spawn(acceptLoop(), "component acceptor");
  return Status::ok();
}

void Components::stop() {
  stopped_ = true;
  asio::error_code ec;
  if (acceptor_) acceptor_->close(ec);
  for (auto& [s, c] : conns_) {
    if (c->transport) c->transport->close();
  }
}

void Components::setActiveServers(const std::string& chat_pool, std::vector<std::string> servers) {
  active_override_[chat_pool] = std::move(servers);
}

std::vector<std::string> Components::activeServers(const std::string& chat_pool) const {
  if (auto it = active_override_.find(chat_pool); it != active_override_.end()) return it->second;
  auto it = core_.config().chat_pools.find(chat_pool);
  return it == core_.config().chat_pools.end() ? std::vector<std::string>{}
                                                : it->second.active_servers;
}

std::string Components::ownerOf(const std::string& chat_pool, const std::string& room_bare) const {
  return HashRing(activeServers(chat_pool)).ownerOf(room_bare);
}

std::vector<Components::ConnectionInfo> Components::connections() const {
  std::vector<ConnectionInfo> out;
  for (const auto& [s, c] : conns_) out.push_back({c->chat_pool, c->server, c->remote});
  return out;
}

void Components::sendTo(const std::shared_ptr<Conn>& c, const Element& st) {
  c->out += st.toString();
  core_.countStanzaOut();
  if (!c->writing) core_.spawn(flush(c), "component write");
}

asio::awaitable<void> Components::flush(std::shared_ptr<Conn> c) {
  c->writing = true;
  try {
    while (c->transport && !c->out.empty()) {
      std::string chunk;
      chunk.swap(c->out);
      co_await c->transport->writeAll(chunk);
    }
  } catch (const std::exception&) {
    if (c->transport) c->transport->close();
  }
  c->writing = false;
}

void Components::route(Element st, const std::string& chat_pool, Origin origin) {
  auto to = x::Jid::parse(st.attr("to"));
  std::string owner = to ? ownerOf(chat_pool, to->bare()) : "";
  auto bounce = [&](const std::string& text) {
    const std::string& type = st.attr("type");
    if (type == "error" || (st.name() == "iq" && type == "result") || st.attr("from").empty()) return;
    if (st.name() == "presence" && type == "unavailable") return;
    core_.route(x::errorReply(st, "wait", "service-unavailable", text), Origin::kServer);
  };
  if (owner.empty()) {
    bounce("the chat service " + chat_pool + " has no active server");
    return;
  }
  if (auto it = conns_.find(owner); it != conns_.end() && it->second->chat_pool == chat_pool) {
    sendTo(it->second, st);
    return;
  }
  if (origin == Origin::kLink) {
    bounce("chat server " + owner + " is not attached here");
    return;
  }
  // Forward to a front end of the chat pool's front-end pool that is alive (every chat server
  // attaches to each of them).
  auto pool_it = core_.config().chat_pools.find(chat_pool);
  if (pool_it != core_.config().chat_pools.end()) {
    for (const auto& server : core_.healthyServers(pool_it->second.frontend_pool)) {
      if (server == core_.config().server_fqdn) continue;
      if (core_.links().send(server, st)) return;
    }
  }
  bounce("chat server " + owner + " is unreachable");
}

asio::awaitable<void> Components::acceptLoop() {
  while (!stopped_) {
    asio::error_code ec;
    auto sock = co_await acceptor_->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopped_ || ec == asio::error::operation_aborted) break;
      co_await core_.acceptBackoff(ec, "component");
      continue;
    }
    core_.spawn(serve(std::move(sock)), "component connection");
  }
}

asio::awaitable<void> Components::serve(asio::ip::tcp::socket socket) {
  const auto& cfg = core_.config();
  auto c = std::make_shared<Conn>();
  c->transport = std::make_unique<x::Transport>(std::move(socket), nullptr);
  c->remote = c->transport->remoteAddress();
  bool registered = false;
  try {
    x::StreamReader reader(*c->transport, {1024 * 1024, 64});
    auto ev = co_await reader.next();
    if (ev.kind != x::StreamEvent::kOpen) co_return;
    std::string domain = ev.element.attr("to");
    std::string server = ev.element.attr("from");
    std::string id = x::newId();
    co_await c->transport->writeAll(x::streamHeader(x::kNsComponent, domain, "", id));
    auto pool_it = cfg.chat_pools.find(domain);
    if (pool_it == cfg.chat_pools.end()) {
      co_await c->transport->writeAll(x::streamError("host-unknown", domain + " is not a chat pool"));
      co_return;
    }
    if (server.empty()) server = domain;
    ev = co_await reader.next();
    if (ev.kind != x::StreamEvent::kStanza || ev.element.name() != "handshake" ||
        ev.element.text() != x::sha1Hex(id + cfg.token)) {
      core_.metrics().addCounter("tandem_frontend_component_auth_failures_total");
      co_await c->transport->writeAll(x::streamError("not-authorized", "wrong secret"));
      co_return;
    }
    c->chat_pool = domain;
    c->server = server;
    if (auto old = conns_.find(server); old != conns_.end()) {
      old->second->out += x::streamError("conflict", "replaced by a new connection");
      if (!old->second->writing) core_.spawn(flush(old->second), "component close");
    }
    conns_[server] = c;
    registered = true;
    co_await c->transport->writeAll("<handshake/>");
    spdlog::info("chat server {} attached as component {} from {}", server, domain, c->remote);
    core_.metrics().setGauge("tandem_frontend_components", static_cast<double>(conns_.size()));
    while (true) {
      ev = co_await reader.next();
      if (ev.kind != x::StreamEvent::kStanza) break;
      Element st = std::move(ev.element);
      core_.countStanzaIn();
      st.removeAttr("xmlns");
      auto from = x::Jid::parse(st.attr("from"));
      // A component may only speak for its own domain (XEP-0114 §3).
      if (!from || (from->domain != domain &&
                    !(from->domain.size() > domain.size() &&
                      from->domain.ends_with("." + domain)))) {
        if (st.attr("type") != "error") {
          sendTo(c, x::errorReply(st, "modify", "invalid-from"));
        }
        continue;
      }
      core_.route(std::move(st), Origin::kComponent);
    }
  } catch (const std::exception& e) {
    spdlog::debug("component connection from {}: {}", c->remote, e.what());
  }
  if (registered) {
    if (auto it = conns_.find(c->server); it != conns_.end() && it->second == c) conns_.erase(it);
    spdlog::warn("chat server {} detached", c->server);
    core_.metrics().setGauge("tandem_frontend_components", static_cast<double>(conns_.size()));
  }
  if (c->transport) c->transport->close();
}

}  // namespace tandem::frontend
