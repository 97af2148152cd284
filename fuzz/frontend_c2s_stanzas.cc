// libFuzzer target: arbitrary bytes as what a signed-in client sends, through the stream parser
// into the stanza handler of a bound session (C2sSession::onBound and everything it reaches:
// roster, presence, messages, disco, ping, carbons, blocking, stream management). Must never
// crash, leak or hang.
//
// Design:
// - One Core per input (no state carries over, so every finding reproduces from its input
//   alone), with no network and no PostgreSQL: links are never started, and every store call
//   fails at once with Unavailable (the degraded path a down store takes), see below.
// - alice/fuzz is the fuzzed session; alice/phone (carbons, own presence) and bob/desk (local
//   delivery) are bound beside it. All three are proxied sessions (bindForTest), so what they
//   would write to their clients goes to a link that is down and is dropped.
// - The input follows a stream header; each stanza the parser yields is handed to alice/fuzz,
//   then the io_context runs until idle; finally each session's client goes away cleanly.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <asio.hpp>

#include "frontend/config.h"
#include "frontend/internal/c2s_session.h"
#include "frontend/internal/core.h"
#include "rpc/metrics.h"
#include "store/pool.h"
#include "xml/stream_parser.h"

// The fuzz build has no PostgreSQL. ConnectionPool::acquire would wait out its reconnect
// backoff (up to 5 s a call); this replacement, linked in its place with -Wl,--wrap
// (fuzz/CMakeLists.txt), fails at once as a store that is down does after its deadline.
// Same ABI as the member function: `this` is the first parameter.
tandem::Result<tandem::store::Lease> failingAcquire(tandem::store::ConnectionPool* pool,
                                                    std::chrono::milliseconds wait) __asm__(
    "__wrap__ZN6tandem5store14ConnectionPool7acquireENSt6chrono8durationIlSt5ratioILl1ELl1000EEEE");

tandem::Result<tandem::store::Lease> failingAcquire(tandem::store::ConnectionPool*,
                                                    std::chrono::milliseconds) {
  return tl::unexpected(tandem::unavailable("store `sql1` is down (fuzzing: no PostgreSQL)"));
}

namespace {

using tandem::frontend::C2sSession;
using tandem::frontend::Core;
using tandem::frontend::FrontendConfig;

FrontendConfig fuzzConfig() {
  FrontendConfig c;
  c.domain = "example.test";
  c.server_fqdn = "fe1a.example.test";
  c.address = "127.0.0.1";
  c.pool_fqdn = "pool1.example.test";
  c.site = "Site1";
  c.token = "fuzz";
  c.store_addresses = {"127.0.0.1:1"};
  c.frontend_pools["pool1.example.test"] = {{"fe1a.example.test", "127.0.0.1", "pool1.example.test"},
                                            {"fe1b.example.test", "127.0.0.2", "pool1.example.test"}};
  c.frontend_pools["pool2.example.test"] = {{"fe2a.example.test", "127.0.0.3", "pool2.example.test"}};
  c.pool_store_addresses["pool1.example.test"] = {"127.0.0.1:1"};
  c.pool_store_addresses["pool2.example.test"] = {"127.0.0.3:1"};
  c.chat_pools["chat.example.test"] = {"chat.example.test", "pool1.example.test",
                                       {"chat1a.example.test"}};
  c.directory = {{"alice", "pool1.example.test"},
                 {"bob", "pool1.example.test"},
                 {"carol", "pool2.example.test"}};
  c.db_threads = 1;
  return c;
}

std::shared_ptr<C2sSession> bind(Core& core, const std::string& user, const std::string& resource,
                                 const std::string& relay_id) {
  auto s = std::make_shared<C2sSession>(core, "fe1b.example.test", relay_id, "127.0.0.9", false);
  s->bindForTest(user, resource);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FrontendConfig config = fuzzConfig();
  asio::io_context io;
  tandem::rpc::Metrics metrics;
  Core core(io, config, metrics);
  auto alice = bind(core, "alice", "fuzz", "r1");
  auto phone = bind(core, "alice", "phone", "r2");
  auto bob = bind(core, "bob", "desk", "r3");

  tandem::xml::StreamParser::Callbacks cb;
  cb.on_stream_open = [](const tandem::xml::Element&) {};
  cb.on_stanza = [&](tandem::xml::Element e) { alice->onProxiedEvent("in", std::move(e), ""); };
  cb.on_stream_close = [&] { alice->onProxiedEvent("close", tandem::xml::Element(), "clean"); };
  tandem::xml::StreamParser parser(cb, {.max_stanza_bytes = 16 * 1024, .max_depth = 32});
  const std::string header =
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
      "to='example.test' version='1.0'>";
  if (parser.feed(header).isOk()) {
    // Stops at the first parse error, as the session's own connection would.
    (void)parser.feed(std::string_view(reinterpret_cast<const char*>(data), size));
  }
  io.run();
  for (const auto& s : {alice, phone, bob}) {
    s->onProxiedEvent("close", tandem::xml::Element(), "clean");
  }
  io.restart();
  io.run();
  return 0;
}
