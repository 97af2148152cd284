// Transport: one TCP connection that may switch to TLS (STARTTLS) or start in TLS (direct TLS),
// for every XMPP stream we serve or open (c2s, component, internal links).
//
// All methods are coroutines on the connection's executor and throw asio::system_error on
// network or TLS failure (the owning session catches it at its top). One reader and one writer
// at a time; not thread-safe (use it from the executor that owns the socket).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "common/status.h"

namespace tandem::xmpp {

// A server-side TLS context from PEM files (chain + key). TLS 1.2+. Fails with
// FailedPrecondition naming the file when it cannot be loaded.
Result<std::shared_ptr<asio::ssl::context>> makeServerTlsContext(const std::string& cert_file,
                                                                 const std::string& key_file);
// A client-side context verifying peers against `ca_file` (empty: no verification).
Result<std::shared_ptr<asio::ssl::context>> makeClientTlsContext(const std::string& ca_file);

class Transport {
 public:
  Transport(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> tls);
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Reads what is available (at least 1 byte) into `buf`; returns the byte count.
  asio::awaitable<size_t> readSome(char* buf, size_t size);
  // Writes all of `data`.
  // Takes the bytes by value: the coroutine owns them until written.
  asio::awaitable<void> writeAll(std::string data);
  // TLS handshake as server / as client (client verifies `host` when the context verifies).
  asio::awaitable<void> handshakeServer();
  asio::awaitable<void> handshakeClient(const std::string& host);

  bool isTls() const { return tls_on_; }
  // Closes the socket at once (pending reads and writes fail). Idempotent.
  void close();
  bool isOpen() const { return stream_.next_layer().is_open(); }
  std::string remoteAddress() const;
  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  std::shared_ptr<asio::ssl::context> ctx_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  bool tls_on_ = false;
};

}  // namespace tandem::xmpp
