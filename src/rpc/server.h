// The admin endpoint's server side: HTTPS + JSON with bearer-token authentication.
//
// Every Tandem process serves one AdminServer (port 8443 on its own address, docs/architecture.md
// "Admin API"). Handlers are registered by exact method and path before start(); the server then
// runs them on its own pool of `threads` worker threads, so a handler may block (it only holds
// up its own worker). Requests without "Authorization: Bearer <deployment token>" get 401 and
// never reach a handler; that includes GET /metrics (Prometheus sends the token too).
// route() is not thread-safe and must precede start(); start() and stop() may be called from any
// one thread; handlers run concurrently and must be thread-safe themselves.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tandem::rpc {

struct Request {
  std::string method;  // "GET", "POST", "PUT", "DELETE"
  std::string path;    // without the query string, e.g. "/cms/replica"
  std::string body;
  std::map<std::string, std::string> params;  // query parameters (first value of each name)
  std::string remote_addr;                     // the peer's IP address

  // The body as JSON (an empty body reads as `{}`). Fails with InvalidArgument naming the
  // parse error when the body is not JSON.
  Result<nlohmann::json> json() const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;

  static Response json(const nlohmann::json& doc, int status = 200);
  // {"error": {"code": "<statusCodeName>", "message": "<sentence>"}} with the HTTP status for the
  // code: InvalidArgument 400, NotFound 404, Conflict 409, FailedPrecondition 412, Unavailable and
  // Timeout 503, anything else 500. AdminClient turns it back into the same Status.
  static Response error(const Status& st);
  // Plain text, by default Prometheus' exposition format.
  static Response text(std::string body, std::string content_type = "text/plain; version=0.0.4");
};

// A handler returns its response; an exception escaping it becomes a 500 Internal error (and a
// log line), never a crash.
using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  // IP address to bind, e.g. "127.0.1.1". Empty binds every address (0.0.0.0).
  std::string address;
  // TCP port; 8443 by convention. 0 binds a free port (read it back with port()).
  int port = 8443;
  // PEM certificate (chain) and private key presented to clients; issued by the deployment CA
  // (pki/<name>.pem / .key in the state dir).
  std::string cert_file, key_file;
  // The deployment secret every request must present as a bearer token. Must not be empty.
  std::string token;
  // Worker threads: the number of requests handled at once. Requests beyond it wait in a queue.
  int threads = 8;
};

class AdminServer {
 public:
  explicit AdminServer(ServerOptions o);
  ~AdminServer();  // stops the server and joins its threads
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Registers `h` for exactly `method` + `path` (no patterns; query strings are split off into
  // Request::params). A later route for the same pair replaces the earlier one. Requires: before
  // start(). Unknown paths get a 404 NotFound error document; a known path with another method
  // gets 405 with an InvalidArgument error document.
  void route(const std::string& method, const std::string& path, Handler h);

  // Loads the certificate, binds address:port and starts serving; returns once the socket is
  // listening (connections made after it returns are served). Fails with Unavailable naming
  // address:port when the port cannot be bound, or FailedPrecondition when the certificate or key
  // cannot be loaded or the token is empty. Calling it twice is an error (FailedPrecondition).
  Status start();

  // Stops accepting, finishes requests in flight and joins the threads. Idempotent.
  void stop();

  // The bound port (useful with port 0); 0 before start().
  int port() const;

  // Requests served since start (all paths, including refused ones).
  uint64_t requestCount() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::rpc
