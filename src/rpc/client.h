// The admin endpoint's client side: HTTPS + JSON calls to one Tandem process.
//
// An AdminClient talks to one target (address:port), verifies the server certificate against the
// deployment CA (including that the certificate names the address or host it connects to) and
// sends the deployment token. Each call opens its own TLS connection and blocks until the
// response or the timeout. Thread-compatible: use one client per thread, or guard it.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tandem::rpc {

struct ClientOptions {
  // PEM file of the deployment CA (state dir `pki/ca.pem`). Empty: the server certificate is not
  // verified (tests and bootstrapping only).
  std::string ca_file;
  // The deployment secret, sent as "Authorization: Bearer <token>".
  std::string token;
  // Bound on connecting, and separately on sending and on waiting for the response. Raise it for
  // endpoints whose handler runs a long action.
  std::chrono::milliseconds timeout{5000};
};

// Reads `<state_dir>/secret/token` and points ca_file at `<state_dir>/pki/ca.pem`. Fails with
// NotFound (naming the file and suggesting `tandemctl deploy up`) when either is missing.
Result<ClientOptions> clientOptionsFromStateDir(const std::string& state_dir);

class AdminClient {
 public:
  // `address` is an IP address or a host name the certificate names. Does no I/O.
  AdminClient(std::string address, int port, ClientOptions o);

  // GET/POST/PUT/DELETE `path` (may carry a query string) and parse the JSON response.
  // Errors: Unavailable "cannot reach <address>:<port>: <why>" when no response came (refused,
  // timeout, TLS failure); the server's error Status re-created from its JSON error document
  // (same code and message); FailedPrecondition when the token was refused (401); Internal when
  // a 2xx response is not JSON.
  Result<nlohmann::json> get(const std::string& path);
  Result<nlohmann::json> post(const std::string& path,
                              const nlohmann::json& body = nlohmann::json::object());
  Result<nlohmann::json> put(const std::string& path,
                             const nlohmann::json& body = nlohmann::json::object());
  Result<nlohmann::json> del(const std::string& path);

  // GET returning the raw body (e.g. /metrics). Same errors as get().
  Result<std::string> getText(const std::string& path);

  const std::string& address() const { return address_; }
  int port() const { return port_; }

 private:
  Result<std::string> call(const std::string& method, const std::string& path,
                           const std::string* body);

  std::string address_;
  int port_;
  ClientOptions options_;
};

// The StatusCode for a statusCodeName() ("NotFound" -> kNotFound); kInternal when unknown.
StatusCode statusCodeFromName(const std::string& name);

}  // namespace tandem::rpc
