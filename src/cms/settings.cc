// Settings validation and defaults (the key table is in settings.h).
#include "cms/settings.h"

#include <set>

namespace tandem::cms {
namespace {

using topology::PoolRole;
using topology::Topology;

constexpr const char* kChatPrefix = "chat.";
constexpr const char* kUsersPrefix = "users.";
constexpr const char* kFrontendPrefix = "frontend.";

bool startsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Splits "chat.<pool>.<field>" (the pool is an FQDN with dots) into pool and field.
bool splitChatKey(const std::string& key, std::string& pool, std::string& field) {
  if (!startsWith(key, kChatPrefix)) return false;
  size_t dot = key.rfind('.');
  if (dot == std::string::npos || dot <= 5) return false;
  pool = key.substr(5, dot - 5);
  field = key.substr(dot + 1);
  return !pool.empty() && !field.empty();
}

bool validUserName(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string frontendPools(const Topology& t) {
  std::string out;
  for (const auto* p : t.poolsWithRole(PoolRole::kFrontend)) out += (out.empty() ? "" : ", ") + p->fqdn;
  return out.empty() ? "none" : out;
}

Status validateChat(const Topology& t, const std::string& key, const std::string& pool_name,
                    const std::string& field, const nlohmann::json& value) {
  const topology::Pool* pool = t.findPool(pool_name);
  if (!pool || pool->role != PoolRole::kChat)
    return invalidArgument("setting `" + key + "`: `" + pool_name +
                           "` is not a persistent chat pool of the published topology");
  if (field == "state") {
    if (!value.is_string() || (value != "Normal" && value != "FailedOver"))
      return invalidArgument("setting `" + key + "` must be \"Normal\" or \"FailedOver\", not " +
                             value.dump());
    return Status::ok();
  }
  if (field == "active_servers") {
    if (!value.is_array())
      return invalidArgument("setting `" + key + "` must be a list of server FQDNs of pool `" +
                             pool_name + "`, not " + value.dump());
    std::set<std::string> seen;
    for (const auto& v : value) {
      if (!v.is_string())
        return invalidArgument("setting `" + key + "`: " + v.dump() + " is not a server FQDN");
      const std::string s = v.get<std::string>();
      bool member = false;
      for (const auto& srv : pool->servers) member = member || srv.fqdn == s;
      if (!member)
        return invalidArgument("setting `" + key + "`: `" + s + "` is not a server of chat pool `" +
                               pool_name + "`");
      if (!seen.insert(s).second)
        return invalidArgument("setting `" + key + "` lists `" + s + "` twice");
    }
    return Status::ok();
  }
  if (field == "frontend_pool") {
    const topology::Pool* fe = value.is_string() ? t.findPool(value.get<std::string>()) : nullptr;
    if (!fe || fe->role != PoolRole::kFrontend)
      return invalidArgument("setting `" + key + "` must name a front-end pool (" +
                             frontendPools(t) + "), not " + value.dump());
    return Status::ok();
  }
  if (field == "default_category") {
    // The category must exist in the pool's mgc when a room is created; the CMS cannot see
    // mgc, so only the name is checked here (the chat server refuses creation otherwise).
    bool ok = value.is_string() && !value.get<std::string>().empty() &&
              value.get<std::string>().size() <= 255;
    if (ok)
      for (unsigned char c : value.get<std::string>()) ok = ok && c >= 0x20 && c != 0x7f;
    if (!ok)
      return invalidArgument("setting `" + key + "` must name a room category (1-255 "
                             "characters, no control characters; see `tandemctl chat category "
                             "list`), not " + value.dump());
    return Status::ok();
  }
  return invalidArgument("unknown setting `" + key + "`: a chat pool has state, active_servers, "
                         "frontend_pool and default_category");
}

Status validateUser(const Topology& t, const std::string& key, const nlohmann::json& value) {
  const std::string name = key.substr(6);
  if (!validUserName(name))
    return invalidArgument("setting `" + key +
                           "`: a user name is 1-64 characters of a-z, 0-9, '.', '-', '_'");
  if (value.is_null()) return Status::ok();
  if (!value.is_object() || !value.contains("pool") || !value["pool"].is_string())
    return invalidArgument("setting `" + key +
                           "` must be an object like {\"pool\": \"<front-end pool>\"}, not " +
                           value.dump());
  const topology::Pool* fe = t.findPool(value["pool"].get<std::string>());
  if (!fe || fe->role != PoolRole::kFrontend)
    return invalidArgument("setting `" + key + "`: home pool " + value["pool"].dump() +
                           " is not a front-end pool (" + frontendPools(t) + ")");
  for (const auto& [k, v] : value.items()) {
    if (!v.is_string())
      return invalidArgument("setting `" + key + "`: field `" + k + "` must be a string");
  }
  return Status::ok();
}

Status validateFrontend(const Topology& t, const std::string& key, const nlohmann::json& value) {
  // frontend.<pool fqdn>.<field>: the pool is an FQDN with dots.
  size_t dot = key.rfind('.');
  std::string pool = key.substr(9, dot > 9 ? dot - 9 : 0);
  std::string field = key.substr(dot + 1);
  const topology::Pool* p = pool.empty() ? nullptr : t.findPool(pool);
  if (!p || p->role != PoolRole::kFrontend)
    return invalidArgument("setting `" + key + "`: `" + pool +
                           "` is not a front-end pool of the published topology (" +
                           frontendPools(t) + ")");
  if (field != "redirect")
    return invalidArgument("unknown setting `" + key + "`: a front-end pool has redirect");
  if (value.is_null()) return Status::ok();  // back to the default, auto
  if (!value.is_string() || (value != "redirect" && value != "proxy" && value != "auto"))
    return invalidArgument("setting `" + key + "` must be \"redirect\", \"proxy\" or \"auto\", not " +
                           value.dump());
  return Status::ok();
}

}  // namespace

Status validateSetting(const Topology& t, const std::string& key, const nlohmann::json& value) {
  std::string pool, field;
  if (splitChatKey(key, pool, field)) {
    if (value.is_null())
      return invalidArgument("setting `" + key + "` cannot be removed; set a value instead");
    return validateChat(t, key, pool, field, value);
  }
  if (startsWith(key, kUsersPrefix) && key.size() > 6) return validateUser(t, key, value);
  if (startsWith(key, kFrontendPrefix) && key.size() > 9) return validateFrontend(t, key, value);
  return invalidArgument("unknown setting `" + key + "`; known keys: chat.<pool>.state, "
                         "chat.<pool>.active_servers, chat.<pool>.frontend_pool, "
                         "chat.<pool>.default_category, users.<name>, "
                         "frontend.<pool>.redirect");
}

nlohmann::json defaultSettings(const Topology& t) {
  nlohmann::json s = nlohmann::json::object();
  for (const auto* p : t.poolsWithRole(PoolRole::kChat)) {
    s["chat." + p->fqdn + ".state"] = "Normal";
    s["chat." + p->fqdn + ".active_servers"] = p->active_servers;
    s["chat." + p->fqdn + ".frontend_pool"] = p->frontend_pool;
    s["chat." + p->fqdn + ".default_category"] = "general";
  }
  for (const auto& u : t.users) s["users." + u.name] = {{"pool", u.pool}};
  return s;
}

nlohmann::json reconcileSettings(const Topology& t, const nlohmann::json& settings) {
  nlohmann::json out = defaultSettings(t);
  if (!settings.is_object()) return out;
  for (const auto& [k, v] : settings.items()) {
    if (validateSetting(t, k, v).isOk() && !v.is_null()) out[k] = v;
  }
  return out;
}

std::vector<std::string> diffSettings(const nlohmann::json& before, const nlohmann::json& after) {
  std::vector<std::string> out;
  std::set<std::string> keys;
  if (before.is_object())
    for (const auto& [k, v] : before.items()) keys.insert(k);
  if (after.is_object())
    for (const auto& [k, v] : after.items()) keys.insert(k);
  for (const auto& k : keys) {
    nlohmann::json a = before.is_object() && before.contains(k) ? before[k] : nlohmann::json();
    nlohmann::json b = after.is_object() && after.contains(k) ? after[k] : nlohmann::json();
    if (a == b) continue;
    out.push_back(k + ": " + (a.is_null() ? "(unset)" : a.dump()) + " -> " +
                  (b.is_null() ? "(unset)" : b.dump()));
  }
  return out;
}

std::vector<std::string> settingKeyPatterns() {
  return {"chat.<pool>.state", "chat.<pool>.active_servers", "chat.<pool>.frontend_pool",
          "chat.<pool>.default_category", "users.<name>", "frontend.<pool>.redirect"};
}

}  // namespace tandem::cms
