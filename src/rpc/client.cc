// AdminClient: cpp-httplib's SSLClient with CA verification, the token, and error round-trip.
#include "rpc/client.h"

#include <httplib.h>

#include "common/files.h"

namespace tandem::rpc {

StatusCode statusCodeFromName(const std::string& name) {
  for (StatusCode c : {StatusCode::kOk, StatusCode::kNotFound, StatusCode::kInvalidArgument,
                       StatusCode::kFailedPrecondition, StatusCode::kUnavailable,
                       StatusCode::kConflict, StatusCode::kDataLoss, StatusCode::kInternal,
                       StatusCode::kTimeout}) {
    if (statusCodeName(c) == name) return c;
  }
  return StatusCode::kInternal;
}

static std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

Result<ClientOptions> clientOptionsFromStateDir(const std::string& state_dir) {
  ClientOptions o;
  auto token = readFile(state_dir + "/secret/token");
  if (!token)
    return fail(token.error().withContext("reading the deployment secret (run `tandemctl deploy "
                                          "up` or pass the right --state-dir)"));
  o.token = trim(*token);
  if (o.token.empty())
    return fail(notFound("deployment secret `" + state_dir + "/secret/token` is empty"));
  o.ca_file = state_dir + "/pki/ca.pem";
  auto ca = readFile(o.ca_file);
  if (!ca)
    return fail(ca.error().withContext("reading the deployment CA (run `tandemctl deploy up` or "
                                       "pass the right --state-dir)"));
  return o;
}

AdminClient::AdminClient(std::string address, int port, ClientOptions o)
    : address_(std::move(address)), port_(port), options_(std::move(o)) {}

static const char* errorText(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection: return "connection refused or no route";
    case httplib::Error::Read: return "no response (read failed or timed out)";
    case httplib::Error::Write: return "cannot send the request";
    case httplib::Error::ConnectionTimeout: return "connection timed out";
    case httplib::Error::SSLConnection: return "TLS handshake failed";
    case httplib::Error::SSLLoadingCerts: return "cannot load the deployment CA";
    case httplib::Error::SSLServerVerification:
      return "server certificate not trusted by the deployment CA or not issued for this address";
    default: return "request failed";
  }
}

Result<std::string> AdminClient::call(const std::string& method, const std::string& path,
                                      const std::string* body) {
  const std::string where = address_ + ":" + std::to_string(port_);
  httplib::SSLClient cli(address_, port_);
  if (!options_.ca_file.empty()) {
    cli.set_ca_cert_path(options_.ca_file.c_str());
    cli.enable_server_certificate_verification(true);
  } else {
    cli.enable_server_certificate_verification(false);
  }
  cli.set_connection_timeout(options_.timeout);
  cli.set_read_timeout(options_.timeout);
  cli.set_write_timeout(options_.timeout);
  cli.set_bearer_token_auth(options_.token.c_str());
  cli.set_keep_alive(false);

  httplib::Result res{nullptr, httplib::Error::Unknown};
  if (method == "GET") {
    res = cli.Get(path.c_str());
  } else if (method == "POST") {
    res = cli.Post(path.c_str(), *body, "application/json");
  } else if (method == "PUT") {
    res = cli.Put(path.c_str(), *body, "application/json");
  } else {
    res = cli.Delete(path.c_str());
  }
  if (!res) return fail(unavailable("cannot reach " + where + ": " + errorText(res.error())));
  const int status = res->status;
  if (status >= 200 && status < 300) return res->body;

  // Error: re-create the server's Status from its error document when it sent one.
  try {
    auto doc = nlohmann::json::parse(res->body);
    const auto& e = doc.at("error");
    StatusCode code = statusCodeFromName(e.at("code").get<std::string>());
    if (code == StatusCode::kOk) code = StatusCode::kInternal;
    return fail(Status(code, e.at("message").get<std::string>()));
  } catch (const std::exception&) {
  }
  return fail(internalError("admin endpoint " + where + " answered " + method + " " + path +
                            " with HTTP " + std::to_string(status)));
}

static Result<nlohmann::json> parseJson(Result<std::string> body, const std::string& where) {
  if (!body) return fail(body.error());
  if (body->empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(*body);
  } catch (const std::exception& e) {
    return fail(internalError("admin endpoint " + where + " sent a response that is not JSON: " +
                              e.what()));
  }
}

Result<nlohmann::json> AdminClient::get(const std::string& path) {
  return parseJson(call("GET", path, nullptr), address_ + ":" + std::to_string(port_) + path);
}

Result<nlohmann::json> AdminClient::post(const std::string& path, const nlohmann::json& body) {
  const std::string text = body.dump();
  return parseJson(call("POST", path, &text), address_ + ":" + std::to_string(port_) + path);
}

Result<nlohmann::json> AdminClient::put(const std::string& path, const nlohmann::json& body) {
  const std::string text = body.dump();
  return parseJson(call("PUT", path, &text), address_ + ":" + std::to_string(port_) + path);
}

Result<nlohmann::json> AdminClient::del(const std::string& path) {
  return parseJson(call("DELETE", path, nullptr), address_ + ":" + std::to_string(port_) + path);
}

Result<std::string> AdminClient::getText(const std::string& path) {
  return call("GET", path, nullptr);
}

}  // namespace tandem::rpc
