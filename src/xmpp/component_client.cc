// XEP-0114 client: connect, handshake, exchange stanzas, reconnect with backoff.
#include "xmpp/component_client.h"

// GCC 12 wrongly reports Asio's coroutine frame allocator as a mismatched new/delete pair
// (GCC bug 105353-like false positive on awaitable_frame_base::operator delete).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <openssl/evp.h>

#include "xml/stream_parser.h"
#include "xmpp/stanza.h"

namespace tandem::xmpp {

std::string componentHandshakeDigest(const std::string& stream_id, const std::string& secret) {
  std::string input = stream_id + secret;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md, &len, EVP_sha1(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::shared_ptr<ComponentClient> ComponentClient::create(asio::any_io_executor ex,
                                                         ComponentOptions o,
                                                         StanzaHandler on_stanza,
                                                         StateHandler on_state) {
  return std::shared_ptr<ComponentClient>(
      new ComponentClient(ex, std::move(o), std::move(on_stanza), std::move(on_state)));
}

ComponentClient::ComponentClient(asio::any_io_executor ex, ComponentOptions o, StanzaHandler s,
                                 StateHandler st)
    : ex_(ex),
      options_(std::move(o)),
      on_stanza_(std::move(s)),
      on_state_(std::move(st)),
      wake_writer_(ex),
      backoff_timer_(ex) {}

void ComponentClient::start() {
  if (started_ || stopped_) return;
  started_ = true;
  asio::co_spawn(ex_, [self = shared_from_this()]() { return self->runLoop(); }, asio::detached);
}

void ComponentClient::stop() {
  if (stopped_) return;
  stopped_ = true;
  attached_ = false;
  if (socket_) {
    asio::error_code ec;
    socket_->close(ec);
  }
  backoff_timer_.cancel();
  wake_writer_.cancel();
}

bool ComponentClient::send(const xml::Element& stanza) { return send(stanza.toString()); }

bool ComponentClient::send(std::string serialized) {
  if (!attached_ || stopped_) return false;
  out_.push_back(std::move(serialized));
  ++sent_;
  wake_writer_.cancel();
  return true;
}

asio::awaitable<void> ComponentClient::runLoop() {
  auto self = shared_from_this();
  auto delay = options_.reconnect_min;
  while (!stopped_) {
    auto began = std::chrono::steady_clock::now();
    std::string why = co_await session();
    bool was_attached = attached_;
    attached_ = false;
    discarded_ += out_.size();
    out_.clear();
    if (stopped_) break;
    if (was_attached) on_state_(false, why);
    // A session that lasted a while was healthy: start the backoff again from the minimum.
    if (std::chrono::steady_clock::now() - began > std::chrono::seconds(10)) {
      delay = options_.reconnect_min;
    }
    backoff_timer_.expires_after(delay);
    asio::error_code ec;
    co_await backoff_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    delay = std::min(delay * 2, options_.reconnect_max);
  }
}

asio::awaitable<std::string> ComponentClient::session() {
  const std::string peer = options_.host + ":" + std::to_string(options_.port);
  socket_ = std::make_unique<asio::ip::tcp::socket>(ex_);
  asio::error_code ec;
  auto addr = asio::ip::make_address(options_.host, ec);
  if (ec) co_return "front end address `" + options_.host + "` is not an IP address";
  co_await socket_->async_connect({addr, static_cast<unsigned short>(options_.port)},
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return "cannot connect to front end " + peer + ": " + ec.message();
  socket_->set_option(asio::ip::tcp::no_delay(true), ec);

  std::string stream_id, ended;
  bool closed = false, handshake_done = false;
  xml::StreamParser parser(
      {.on_stream_open = [&](const xml::Element& h) { stream_id = h.attr("id"); },
       .on_stanza =
           [&](xml::Element st) {
             if (!handshake_done) {
               if (st.name() == "handshake") {
                 // Attach here, not after feed(): stanzas that follow the handshake in the
                 // same read are delivered next and their handlers may already reply.
                 handshake_done = true;
                 attached_ = true;
                 asio::co_spawn(ex_, [self = shared_from_this()]() { return self->writer(); },
                                asio::detached);
                 if (!stopped_) on_state_(true, "");
               } else if (ended.empty()) {
                 ended = "front end " + peer + " refused the component handshake (" +
                         (st.children().empty() ? st.name() : st.children().front().name()) + ")";
               }
               return;
             }
             if (st.name() == "stream:error") {
               if (ended.empty()) {
                 ended = "front end " + peer + " closed the component stream (" +
                         (st.children().empty() ? "no condition" : st.children().front().name()) +
                         ")";
               }
               return;
             }
             ++received_;
             if (!stopped_) on_stanza_(std::move(st));
           },
       .on_stream_close = [&] { closed = true; }},
      {.max_stanza_bytes = options_.max_stanza_bytes});

  std::string header = "<?xml version='1.0'?><stream:stream xmlns='" + std::string(kNsComponent) +
                       "' xmlns:stream='" + kNsStreams + "' to='" + xml::escape(options_.service) +
                       "' from='" + xml::escape(options_.identity) + "'>";
  co_await asio::async_write(*socket_, asio::buffer(header),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return "writing to front end " + peer + ": " + ec.message();

  bool handshake_sent = false;
  char buf[16384];
  while (!stopped_) {
    size_t n = co_await socket_->async_read_some(asio::buffer(buf),
                                                 asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ended.empty()) ended = "lost the link to front end " + peer + ": " + ec.message();
      break;
    }
    Status st = parser.feed(std::string_view(buf, n));
    if (!st.isOk()) {
      ended = "front end " + peer + " sent invalid XML: " + st.message();
      break;
    }
    if (!ended.empty() || closed) break;
    if (!stream_id.empty() && !handshake_sent) {
      std::string hs = "<handshake>" + componentHandshakeDigest(stream_id, options_.secret) +
                       "</handshake>";
      co_await asio::async_write(*socket_, asio::buffer(hs),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      handshake_sent = true;
    }
  }
  if (ended.empty()) ended = closed ? "front end " + peer + " closed the component stream"
                                    : "link to front end " + peer + " closed";
  asio::error_code ignored;
  socket_->close(ignored);
  wake_writer_.cancel();
  co_return ended;
}

asio::awaitable<void> ComponentClient::writer() {
  auto self = shared_from_this();
  asio::ip::tcp::socket* sock = socket_.get();
  while (attached_ && !stopped_ && sock == socket_.get()) {
    if (out_.empty()) {
      wake_writer_.expires_at(asio::steady_timer::time_point::max());
      asio::error_code ec;
      co_await wake_writer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    std::string chunk;
    while (!out_.empty() && chunk.size() < 256 * 1024) {
      chunk += out_.front();
      out_.pop_front();
    }
    asio::error_code ec;
    co_await asio::async_write(*sock, asio::buffer(chunk),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      sock->close(ec);  // the reader notices and reconnects
      co_return;
    }
  }
}

}  // namespace tandem::xmpp
