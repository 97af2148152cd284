// AdminServer: cpp-httplib's SSLServer with one catch-all route, token check and exact dispatch.
//
// Design:
// - httplib's regex routes are replaced by one ".*" route per method that looks the exact path up
//   in our table, so paths are literal and unknown ones get our JSON 404.
// - The token is checked in the pre-routing hook, before any handler, in constant time.
// - listen_after_bind() runs on a thread of ours; httplib's ThreadPool runs the handlers.
#include "rpc/server.h"

#include <openssl/crypto.h>

#include <atomic>
#include <thread>

#include <httplib.h>

#include "common/log.h"

namespace tandem::rpc {

Result<nlohmann::json> Request::json() const {
  if (body.empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(body);
  } catch (const std::exception& e) {
    return fail(invalidArgument("request body of " + method + " " + path +
                                " is not valid JSON: " + e.what()));
  }
}

Response Response::json(const nlohmann::json& doc, int status) {
  Response r;
  r.status = status;
  r.body = doc.dump();
  return r;
}

static int httpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kConflict: return 409;
    case StatusCode::kFailedPrecondition: return 412;
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout: return 503;
    default: return 500;
  }
}

Response Response::error(const Status& st) {
  nlohmann::json doc = {{"error",
                         {{"code", std::string(statusCodeName(st.code()))},
                          {"message", st.message()}}}};
  return json(doc, httpStatusFor(st.code()));
}

Response Response::text(std::string body, std::string content_type) {
  Response r;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

struct AdminServer::Impl {
  ServerOptions options;
  std::map<std::string, std::map<std::string, Handler>> routes;  // path -> method -> handler
  std::unique_ptr<httplib::SSLServer> server;
  std::thread listener;
  std::atomic<int> bound_port{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<bool> listener_done{false};
  bool started = false;

  void dispatch(const httplib::Request& in, httplib::Response& out);
  bool tokenMatches(const httplib::Request& in) const;
};

bool AdminServer::Impl::tokenMatches(const httplib::Request& in) const {
  const std::string header = in.get_header_value("Authorization");
  const std::string expected = "Bearer " + options.token;
  if (options.token.empty() || header.size() != expected.size()) return false;
  return CRYPTO_memcmp(header.data(), expected.data(), expected.size()) == 0;
}

static void write(httplib::Response& out, const Response& r) {
  out.status = r.status;
  out.set_content(r.body, r.content_type.c_str());
}

void AdminServer::Impl::dispatch(const httplib::Request& in, httplib::Response& out) {
  auto by_path = routes.find(in.path);
  if (by_path == routes.end()) {
    write(out, Response::error(notFound("no admin endpoint " + in.path + " on this server")));
    return;
  }
  auto h = by_path->second.find(in.method);
  if (h == by_path->second.end()) {
    Response r = Response::error(
        invalidArgument("admin endpoint " + in.path + " does not accept " + in.method));
    r.status = 405;
    write(out, r);
    return;
  }
  Request req;
  req.method = in.method;
  req.path = in.path;
  req.body = in.body;
  req.remote_addr = in.remote_addr;
  for (const auto& [k, v] : in.params) req.params.emplace(k, v);  // emplace keeps the first
  try {
    write(out, h->second(req));
  } catch (const std::exception& e) {
    spdlog::error("admin endpoint {} {} threw: {}", in.method, in.path, e.what());
    write(out, Response::error(internalError("admin endpoint " + in.path +
                                             " failed unexpectedly: " + e.what())));
  }
}

AdminServer::AdminServer(ServerOptions o) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(o);
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::route(const std::string& method, const std::string& path, Handler h) {
  impl_->routes[path][method] = std::move(h);
}

Status AdminServer::start() {
  Impl& m = *impl_;
  const std::string where =
      (m.options.address.empty() ? "0.0.0.0" : m.options.address) + ":" +
      std::to_string(m.options.port);
  if (m.started) return failedPrecondition("admin endpoint " + where + " is already started");
  if (m.options.token.empty())
    return failedPrecondition("admin endpoint " + where + " has no deployment token to check");
  m.server = std::make_unique<httplib::SSLServer>(m.options.cert_file.c_str(),
                                                  m.options.key_file.c_str());
  if (!m.server->is_valid()) {
    m.server.reset();
    return failedPrecondition("admin endpoint " + where + " cannot load certificate `" +
                              m.options.cert_file + "` with key `" + m.options.key_file + "`");
  }
  const int threads = m.options.threads > 0 ? m.options.threads : 1;
  // Only SO_REUSEADDR: httplib's default also sets SO_REUSEPORT, which would let a second
  // process bind the same address:port and silently share (or steal) its requests.
  m.server->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  m.server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  m.server->set_pre_routing_handler([&m](const httplib::Request& in, httplib::Response& out) {
    m.requests.fetch_add(1);
    if (m.tokenMatches(in)) return httplib::Server::HandlerResponse::Unhandled;
    write(out, Response::error(failedPrecondition(
                   "admin request refused: missing or wrong bearer token (use the deployment "
                   "secret in secret/token)")));
    out.status = 401;
    return httplib::Server::HandlerResponse::Handled;
  });
  auto h = [&m](const httplib::Request& in, httplib::Response& out) { m.dispatch(in, out); };
  m.server->Get(".*", h);
  m.server->Post(".*", h);
  m.server->Put(".*", h);
  m.server->Delete(".*", h);

  const std::string host = m.options.address.empty() ? "0.0.0.0" : m.options.address;
  int port = m.options.port;
  if (port == 0) {
    port = m.server->bind_to_any_port(host);
    if (port <= 0) port = -1;
  } else if (!m.server->bind_to_port(host, port)) {
    port = -1;
  }
  if (port < 0) {
    m.server.reset();
    return unavailable("cannot listen on " + where +
                       " for the admin endpoint: address in use or not configured");
  }
  m.bound_port = port;
  m.started = true;
  m.listener_done = false;
  m.listener = std::thread([&m] {
    m.server->listen_after_bind();
    m.listener_done = true;
  });
  // The socket already listens (connections queue in its backlog); wait briefly for the accept
  // loop so callers that check is_running-like state see it serving.
  for (int i = 0; i < 200 && !m.server->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return Status::ok();
}

void AdminServer::stop() {
  if (!impl_ || !impl_->started) return;
  // httplib's stop() is a no-op until the accept loop runs, so repeat it until the loop ends.
  while (!impl_->listener_done) {
    impl_->server->stop();
    if (impl_->listener_done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (impl_->listener.joinable()) impl_->listener.join();
  impl_->started = false;
}

int AdminServer::port() const { return impl_->bound_port; }

uint64_t AdminServer::requestCount() const { return impl_->requests; }

}  // namespace tandem::rpc
