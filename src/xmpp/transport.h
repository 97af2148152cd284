// Transport: one TCP connection that may switch to TLS (STARTTLS) or start in TLS (direct TLS),
// for every XMPP stream we serve or open (c2s, component, internal links).
//
// TLS is OpenSSL used directly on the socket's file descriptor (no asio::ssl::stream): an idle
// connection then holds no buffers of its own, only OpenSSL's session state (its record buffers
// are released between reads and writes, SSL_MODE_RELEASE_BUFFERS). That is what makes idle
// c2s sessions cheap (issue #6); asio::ssl::stream kept ~68 KiB of buffers per connection.
//
// All awaitable methods are coroutines on the connection's executor and throw asio::system_error
// on network or TLS failure (asio::error::eof when the peer closed; the owning session catches
// it at its top). One reader and one writer may run at once (a read may need to write and a
// write to read, in TLS: both are handled); not thread-safe (use it from the executor that owns
// the socket).
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tandem::xmpp {

// A server-side TLS context from PEM files (chain + key). TLS 1.2+. Fails with
// FailedPrecondition naming the file when it cannot be loaded.
Result<std::shared_ptr<asio::ssl::context>> makeServerTlsContext(const std::string& cert_file,
                                                                 const std::string& key_file);
// A client-side context verifying peers against `ca_file` (empty: no verification).
Result<std::shared_ptr<asio::ssl::context>> makeClientTlsContext(const std::string& ca_file);

// A 16 KiB read buffer per thread (a TLS record's payload fits in it), for readNow(): what is
// read into it must be consumed before the caller's next suspension point. Not inlined, so a
// coroutine resumed on another thread never keeps a pointer to the first thread's buffer.
std::span<char> threadReadBuffer();

class Transport {
 public:
  // `tls`: the context for handshakeServer()/handshakeClient(); null for plain-only streams.
  Transport(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> tls);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Reads what is available (at least 1 byte) into `buf`; returns the byte count. Waits for it.
  asio::awaitable<size_t> readSome(char* buf, size_t size);

  // Reading without a buffer of one's own while idle: `co_await waitReadable()`, then call
  // readNow() until it returns 0 (nothing more without waiting). readNow() returns the byte
  // count read into `buf` (> 0), or 0 when it would block; it never waits, so the caller can
  // read into a per-thread buffer and consume it before its next suspension point. Throws
  // asio::system_error (eof when the peer closed) like readSome. waitReadable() returns when
  // readNow() may make progress: the socket is readable, or writable when TLS needs to write
  // first. It may return spuriously (then readNow() returns 0 again).
  asio::awaitable<void> waitReadable();
  size_t readNow(char* buf, size_t size);

  // Writes all of `data`.
  // Takes the bytes by value: the coroutine owns them until written.
  asio::awaitable<void> writeAll(std::string data);
  // TLS handshake as server / as client (client verifies `host`, a name or an IP address,
  // when the context verifies). Requires: a context was given, and no read is in progress
  // (the stream is switching protocols: STARTTLS or direct TLS).
  asio::awaitable<void> handshakeServer();
  asio::awaitable<void> handshakeClient(const std::string& host);

  bool isTls() const { return ssl_ != nullptr && tls_on_; }
  // Closes the socket at once (pending reads, writes and waits fail with operation_aborted).
  // No TLS close_notify is sent. Idempotent.
  void close();
  bool isOpen() const { return socket_.is_open(); }
  std::string remoteAddress() const;
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  struct SslFree {
    void operator()(ssl_st* s) const;
  };
  // Waits for the direction OpenSSL asked for (SSL_ERROR_WANT_READ / WANT_WRITE).
  asio::awaitable<void> waitFor(asio::socket_base::wait_type what);
  // Turns the result of a failed SSL_* call into a wait direction, or throws.
  asio::socket_base::wait_type tlsWaitOrThrow(int ret, const char* what);
  // A fresh SSL* on the socket, with our modes; throws without a context.
  void newSsl();
  asio::awaitable<void> handshake(bool server);
  void throwIfClosed() const;

  std::shared_ptr<asio::ssl::context> ctx_;
  asio::ip::tcp::socket socket_;
  std::unique_ptr<ssl_st, SslFree> ssl_;
  bool tls_on_ = false;
  bool read_wants_write_ = false;  // the last readNow() stopped on SSL_ERROR_WANT_WRITE
};

}  // namespace tandem::xmpp
