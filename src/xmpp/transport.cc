// TCP/TLS transport (OpenSSL on the socket's descriptor) and TLS contexts.
//
// - The socket is non-blocking; every SSL_* call runs to completion or stops on WANT_READ /
//   WANT_WRITE, and the coroutine then waits for that direction on the socket
//   (socket.async_wait), never for "any" event: a handshake that must read waits for readable.
// - No read-ahead (OpenSSL's default): OpenSSL takes exactly one record from the kernel at a
//   time, so the socket stays readable while a record is not consumed and a wait never sleeps
//   on bytes OpenSSL already holds. Readers drain with readNow() until it returns 0 before they
//   wait (bytes that arrived with the handshake's last flight are read at once).
// - The reader and the writer share one SSL* from one thread: their calls never overlap, and a
//   read that needs to write (a TLS 1.3 KeyUpdate answer) or a write that needs to read waits
//   for that direction; OpenSSL resumes the other's half-done record on its retry
//   (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). Renegotiation is off (TLS 1.2), so a write never
//   consumes application data the reader waits for.
// - close() only closes the socket; the SSL* lives until the Transport does, and no SSL_* call
//   happens after close() (its descriptor number may already belong to another connection).
#include "xmpp/transport.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <cerrno>

namespace tandem::xmpp {

Result<std::shared_ptr<asio::ssl::context>> makeServerTlsContext(const std::string& cert_file,
                                                                 const std::string& key_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  asio::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return fail(StatusCode::kFailedPrecondition,
                "cannot load TLS certificate `" + cert_file + "`: " + ec.message());
  }
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return fail(StatusCode::kFailedPrecondition,
                "cannot load TLS key `" + key_file + "`: " + ec.message());
  }
  return ctx;
}

Result<std::shared_ptr<asio::ssl::context>> makeClientTlsContext(const std::string& ca_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  if (ca_file.empty()) {
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
  }
  asio::error_code ec;
  ctx->load_verify_file(ca_file, ec);
  if (ec) {
    return fail(StatusCode::kFailedPrecondition,
                "cannot load CA file `" + ca_file + "`: " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

[[gnu::noinline]] std::span<char> threadReadBuffer() {
  thread_local std::array<char, 16 * 1024> buf;
  return {buf.data(), buf.size()};
}

void Transport::SslFree::operator()(ssl_st* s) const { SSL_free(s); }

Transport::Transport(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> tls)
    : ctx_(std::move(tls)), socket_(std::move(socket)) {
  asio::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  // readNow() and the TLS calls must never block the network thread.
  socket_.non_blocking(true, ec);
}

Transport::~Transport() = default;

void Transport::throwIfClosed() const {
  if (!socket_.is_open())
    throw asio::system_error(asio::error::operation_aborted, "connection closed");
}

asio::awaitable<void> Transport::waitFor(asio::socket_base::wait_type what) {
  throwIfClosed();
  co_await socket_.async_wait(what, asio::use_awaitable);
  throwIfClosed();  // a completion queued before close() still finds the socket closed
}

asio::socket_base::wait_type Transport::tlsWaitOrThrow(int ret, const char* what) {
  int err = SSL_get_error(ssl_.get(), ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return asio::socket_base::wait_read;
    case SSL_ERROR_WANT_WRITE:
      return asio::socket_base::wait_write;
    case SSL_ERROR_ZERO_RETURN:  // close_notify
      throw asio::system_error(asio::error::eof, what);
    case SSL_ERROR_SYSCALL: {
      int sys = errno;
      unsigned long e = ERR_get_error();
      ERR_clear_error();
      if (e != 0)
        throw asio::system_error(
            asio::error_code(static_cast<int>(e), asio::error::get_ssl_category()), what);
      if (sys == 0) throw asio::system_error(asio::error::eof, what);
      throw asio::system_error(asio::error_code(sys, asio::error::get_system_category()), what);
    }
    default: {
      unsigned long e = ERR_get_error();
      ERR_clear_error();
      // OpenSSL 3 reports a TCP close without close_notify as an SSL error: to us it is the end
      // of the connection, as a plain TCP close is.
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        throw asio::system_error(asio::error::eof, what);
      }
      if (e == 0) throw asio::system_error(asio::error::connection_aborted, what);
      throw asio::system_error(
          asio::error_code(static_cast<int>(e), asio::error::get_ssl_category()), what);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reading and writing

size_t Transport::readNow(char* buf, size_t size) {
  throwIfClosed();
  if (!tls_on_) {
    asio::error_code ec;
    size_t n = socket_.read_some(asio::buffer(buf, size), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return 0;
    if (ec) throw asio::system_error(ec, "read");
    return n;
  }
  ERR_clear_error();
  size_t n = 0;
  int r = SSL_read_ex(ssl_.get(), buf, size, &n);
  if (r > 0) {
    read_wants_write_ = false;
    return n;
  }
  read_wants_write_ = tlsWaitOrThrow(r, "TLS read") == asio::socket_base::wait_write;
  return 0;
}

asio::awaitable<void> Transport::waitReadable() {
  co_await waitFor(read_wants_write_ ? asio::socket_base::wait_write
                                     : asio::socket_base::wait_read);
}

asio::awaitable<size_t> Transport::readSome(char* buf, size_t size) {
  while (true) {
    size_t n = readNow(buf, size);
    if (n > 0) co_return n;
    co_await waitReadable();
  }
}

asio::awaitable<void> Transport::writeAll(std::string data) {
  size_t off = 0;
  while (off < data.size()) {
    throwIfClosed();
    if (!tls_on_) {
      asio::error_code ec;
      size_t n = socket_.write_some(asio::buffer(data.data() + off, data.size() - off), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        co_await waitFor(asio::socket_base::wait_write);
        continue;
      }
      if (ec) throw asio::system_error(ec, "write");
      off += n;
      continue;
    }
    ERR_clear_error();
    size_t n = 0;
    int r = SSL_write_ex(ssl_.get(), data.data() + off, data.size() - off, &n);
    if (r > 0) {
      off += n;
      continue;
    }
    co_await waitFor(tlsWaitOrThrow(r, "TLS write"));
  }
}

// ---------------------------------------------------------------------------------------------
// Handshakes

asio::awaitable<void> Transport::handshake(bool server) {
  while (true) {
    throwIfClosed();
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_.get());
    if (r == 1) break;
    co_await waitFor(tlsWaitOrThrow(
        r, server ? "TLS handshake with the client" : "TLS handshake with the server"));
  }
  tls_on_ = true;
}

void Transport::newSsl() {
  if (!ctx_) {
    throw asio::system_error(asio::error::operation_not_supported,
                             "this stream has no TLS context");
  }
  throwIfClosed();
  ssl_.reset(SSL_new(ctx_->native_handle()));
  if (!ssl_) throw asio::system_error(asio::error::no_memory, "cannot create a TLS session");
  // Idle connections are the common case: OpenSSL frees its record buffers between reads and
  // writes. Partial writes and a moving buffer: writeAll() retries from where a record stopped.
  SSL_set_mode(ssl_.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                               SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_options(ssl_.get(), SSL_OP_NO_RENEGOTIATION);
  SSL_set_fd(ssl_.get(), socket_.native_handle());  // a socket BIO that does not close the fd
}

asio::awaitable<void> Transport::handshakeServer() {
  newSsl();
  SSL_set_accept_state(ssl_.get());
  co_await handshake(true);
}

asio::awaitable<void> Transport::handshakeClient(const std::string& host) {
  newSsl();
  SSL_set_connect_state(ssl_.get());
  asio::error_code ec;
  asio::ip::make_address(host, ec);
  bool is_ip = !ec;
  if (!is_ip) SSL_set_tlsext_host_name(ssl_.get(), host.c_str());  // RFC 6066 §3: no IPs
  if (SSL_get_verify_mode(ssl_.get()) != SSL_VERIFY_NONE) {
    // The chain is verified by the context; the peer must also be `host` (RFC 6125).
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), host.c_str())
                   : SSL_set1_host(ssl_.get(), host.c_str());
    if (ok != 1) {
      throw asio::system_error(asio::error::invalid_argument,
                               "cannot verify TLS peer `" + host + "`");
    }
  }
  co_await handshake(false);
}

void Transport::close() {
  asio::error_code ec;
  if (!socket_.is_open()) return;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

std::string Transport::remoteAddress() const {
  asio::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string();
}

}  // namespace tandem::xmpp
