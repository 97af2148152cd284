// TCP/TLS transport and TLS contexts.
#include "xmpp/transport.h"

namespace tandem::xmpp {

Result<std::shared_ptr<asio::ssl::context>> makeServerTlsContext(const std::string& cert_file,
                                                                 const std::string& key_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  // Idle connections are the common case: let OpenSSL free its record buffers between reads.
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
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

Transport::Transport(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> tls)
    : ctx_(tls ? std::move(tls)
               : std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server)),
      stream_(std::move(socket), *ctx_) {
  asio::error_code ec;
  stream_.next_layer().set_option(asio::ip::tcp::no_delay(true), ec);
}

asio::awaitable<size_t> Transport::readSome(char* buf, size_t size) {
  if (tls_on_) co_return co_await stream_.async_read_some(asio::buffer(buf, size), asio::use_awaitable);
  co_return co_await stream_.next_layer().async_read_some(asio::buffer(buf, size),
                                                          asio::use_awaitable);
}

asio::awaitable<void> Transport::writeAll(std::string data) {
  if (tls_on_) {
    co_await asio::async_write(stream_, asio::buffer(data.data(), data.size()), asio::use_awaitable);
  } else {
    co_await asio::async_write(stream_.next_layer(), asio::buffer(data.data(), data.size()),
                               asio::use_awaitable);
  }
}

asio::awaitable<void> Transport::handshakeServer() {
  co_await stream_.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
  tls_on_ = true;
}

asio::awaitable<void> Transport::handshakeClient(const std::string& host) {
  SSL_set_tlsext_host_name(stream_.native_handle(), host.c_str());
  stream_.set_verify_callback(asio::ssl::host_name_verification(host));
  co_await stream_.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
  tls_on_ = true;
}

void Transport::close() {
  asio::error_code ec;
  stream_.next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  stream_.next_layer().close(ec);
}

std::string Transport::remoteAddress() const {
  asio::error_code ec;
  auto ep = stream_.next_layer().remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string();
}

}  // namespace tandem::xmpp
