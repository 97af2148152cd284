// XEP-0114 client against a tiny in-test component port (plain TCP on 127.0.0.1, port 0).
#include "xmpp/component_client.h"

#include <gtest/gtest.h>

#include "xml/stream_parser.h"

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace tandem::xmpp {
namespace {

TEST(ComponentHandshake, DigestIsHexSha1OfIdAndSecret) {
  EXPECT_EQ(componentHandshakeDigest("", "").size(), 40u);
  EXPECT_EQ(componentHandshakeDigest("", ""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

// The server side of one component connection: checks the header and the handshake, then
// sends one stanza and expects one back.
struct FakeComponentPort {
  asio::ip::tcp::acceptor acceptor;
  std::string header_to, header_from, handshake, received;
  bool accept_handshake = true;
  explicit FakeComponentPort(asio::io_context& io)
      : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) {}
  int port() const { return acceptor.local_endpoint().port(); }

  asio::awaitable<void> serveOne() {
    auto sock = co_await acceptor.async_accept(asio::use_awaitable);
    std::vector<xml::Element> stanzas;
    bool opened = false;
    xml::StreamParser parser({.on_stream_open =
                                  [&](const xml::Element& h) {
                                    opened = true;
                                    header_to = h.attr("to");
                                    header_from = h.attr("from");
                                  },
                              .on_stanza = [&](xml::Element e) { stanzas.push_back(e); },
                              .on_stream_close = [] {}});
    char buf[4096];
    auto readUntil = [&](auto pred) -> asio::awaitable<void> {
      while (!pred()) {
        size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);
        EXPECT_TRUE(parser.feed(std::string_view(buf, n)).isOk());
      }
    };
    co_await readUntil([&] { return opened; });
    std::string reply =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
        "xmlns:stream='http://etherx.jabber.org/streams' from='chat.example.test' id='s1d'>";
    co_await asio::async_write(sock, asio::buffer(reply), asio::use_awaitable);
    co_await readUntil([&] { return !stanzas.empty(); });
    handshake = stanzas[0].text();
    stanzas.clear();
    if (!accept_handshake || handshake != componentHandshakeDigest("s1d", "tok")) {
      std::string err =
          "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
          "</stream:error></stream:stream>";
      co_await asio::async_write(sock, asio::buffer(err), asio::use_awaitable);
      co_return;
    }
    std::string ok = "<handshake/><message to='ops@chat.example.test' from='a@example.test/x'/>";
    co_await asio::async_write(sock, asio::buffer(ok), asio::use_awaitable);
    co_await readUntil([&] { return !stanzas.empty(); });
    received = stanzas[0].toString();
  }
};

TEST(ComponentClient, AttachesWithHandshakeAndExchangesStanzas) {
  asio::io_context io;
  FakeComponentPort port(io);
  asio::co_spawn(io, port.serveOne(), asio::detached);
  std::vector<std::string> got;
  std::vector<bool> states;
  std::shared_ptr<ComponentClient> client;
  client = ComponentClient::create(
      io.get_executor(),
      {.host = "127.0.0.1", .port = port.port(), .service = "chat.example.test",
       .identity = "chat1a.example.test", .secret = "tok"},
      [&](xml::Element st) {
        got.push_back(st.attr("to"));
        xml::Element reply("message");
        reply.setAttr("to", st.attr("from"));
        reply.setAttr("from", st.attr("to"));
        EXPECT_TRUE(client->send(reply));
      },
      [&](bool attached, const std::string&) { states.push_back(attached); });
  client->start();
  for (int i = 0; i < 100 && port.received.empty(); ++i) io.run_for(std::chrono::milliseconds(50));
  client->stop();
  EXPECT_EQ(port.header_to, "chat.example.test");
  EXPECT_EQ(port.header_from, "chat1a.example.test");
  EXPECT_EQ(port.handshake, componentHandshakeDigest("s1d", "tok"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "ops@chat.example.test");
  EXPECT_NE(port.received.find("to=\"a@example.test/x\""), std::string::npos) << port.received;
  ASSERT_FALSE(states.empty());
  EXPECT_TRUE(states[0]);
}

TEST(ComponentClient, RefusedHandshakeNeverAttaches) {
  asio::io_context io;
  FakeComponentPort port(io);
  port.accept_handshake = false;
  asio::co_spawn(io, port.serveOne(), asio::detached);
  bool attached = false;
  auto client = ComponentClient::create(
      io.get_executor(),
      {.host = "127.0.0.1", .port = port.port(), .service = "chat.example.test",
       .identity = "chat1a.example.test", .secret = "wrong"},
      [](xml::Element) {}, [&](bool a, const std::string&) { attached = attached || a; });
  client->start();
  for (int i = 0; i < 20 && port.handshake.empty(); ++i) io.run_for(std::chrono::milliseconds(50));
  io.run_for(std::chrono::milliseconds(200));
  client->stop();
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(port.handshake.empty());
  EXPECT_FALSE(attached);
}

}  // namespace
}  // namespace tandem::xmpp
