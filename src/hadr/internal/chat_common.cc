// Helpers shared by the hadr runbooks: eligible servers, setting keys, facts, agent calls, polling,
// message counts.
#include "hadr/internal/chat_common.h"

#include <algorithm>
#include <sstream>
#include <thread>

#include "common/files.h"
#include "hadr/chat_runbooks.h"
#include "store/connection.h"

namespace tandem::hadr {

std::vector<std::string> eligibleChatServers(const topology::Topology& topo,
                                             const topology::Pool& pool, const std::string& site) {
  std::vector<std::string> out;
  for (const auto& s : pool.servers) {
    const std::string& server_site = s.site.empty() ? pool.site : s.site;
    bool ok = server_site == site;
    if (!ok) {
      const topology::Site* ss = topo.findSite(server_site);
      ok = ss != nullptr && std::find(ss->low_latency_to.begin(), ss->low_latency_to.end(), site) !=
                                ss->low_latency_to.end();
    }
    if (ok) out.push_back(s.fqdn);
  }
  return out;
}

std::string chatStateKey(const std::string& pool) { return "chat." + pool + ".state"; }
std::string chatActiveServersKey(const std::string& pool) {
  return "chat." + pool + ".active_servers";
}
std::string chatFrontendPoolKey(const std::string& pool) {
  return "chat." + pool + ".frontend_pool";
}

namespace internal {

Status pollUntil(const StepContext& ctx, const std::function<Status()>& check) {
  Status last = check();
  while (!last.isOk() && std::chrono::steady_clock::now() + std::chrono::milliseconds(200) <
                             ctx.deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    last = check();
  }
  return last;
}

Status pairSynchronized(const Env& env, const std::string& principal, const std::string& mirror) {
  auto p = env.agentStatus(principal);
  if (!p) return p.error();
  if (p->partner != mirror || p->mirror_status != "SYNCHRONIZED") {
    return internalError("`" + principal + "` reports mirror `" + p->partner + "` " + p->mirror_status);
  }
  auto m = env.agentStatus(mirror);
  if (!m) return m.error();
  if (m->principal != principal || m->mirror_status != "SYNCHRONIZED") {
    return internalError("mirror `" + mirror + "` reports principal `" + m->principal + "` " +
                         m->mirror_status);
  }
  return Status::ok();
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += "`" + names[i] + "`";
  }
  return out.empty() ? "none" : out;
}

std::vector<std::string> stringList(const nlohmann::json& v) {
  std::vector<std::string> out;
  if (!v.is_array()) return out;
  for (const auto& e : v) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::vector<std::string>> readIds(const std::string& file) {
  auto text = readFile(file);
  if (!text) return fail(text.error());
  std::vector<std::string> ids;
  try {
    auto j = nlohmann::json::parse(*text);
    if (j.is_array()) return stringList(j);
  } catch (const std::exception&) {
    // Not JSON: one id a line.
  }
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) ids.push_back(line);
  }
  return ids;
}

Result<MessageCount> countMessages(const Env& env, const std::vector<std::string>& addresses,
                                   const std::vector<std::string>& ids) {
  auto token = readFile(env.stateDir() + "/secret/token");
  if (!token) return fail(token.error());
  std::string password = *token;
  while (!password.empty() && (password.back() == '\n' || password.back() == ' ')) password.pop_back();
  auto conn = store::Connection::open(store::connectionString(addresses, "mgc", password, true));
  if (!conn) return fail(conn.error());
  // A text[] literal of the ids: {"a","b"} with quotes and backslashes escaped.
  std::string arr = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) arr += ",";
    arr += "\"";
    for (char c : ids[i]) {
      if (c == '"' || c == '\\') arr += '\\';
      arr += c;
    }
    arr += "\"";
  }
  arr += "}";
  auto r = (*conn)->exec(
      "SELECT (SELECT count(*) FROM messages WHERE stanza_id = ANY($1::text[]) OR "
      "origin_id = ANY($1::text[]) OR body = ANY($1::text[])), "
      "(SELECT to_char(max(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
      "FROM messages), (SELECT count(*) FROM messages)",
      {arr});
  if (!r) return fail(r.error());
  MessageCount mc;
  if (!r->rows.empty()) {
    mc.present = std::stol(r->rows[0][0].empty() ? "0" : r->rows[0][0]);
    mc.newest_ts = r->rows[0][1];
    mc.total = std::stol(r->rows[0][2].empty() ? "0" : r->rows[0][2]);
  }
  return mc;
}

}  // namespace internal
namespace internal {

std::string fact(const StepContext& ctx, const char* key) {
  auto it = ctx.facts.find(key);
  return it != ctx.facts.end() && it->is_string() ? it->get<std::string>() : "";
}

Result<std::string> callAgent(const Env& env, const std::string& store,
                              const std::function<Result<std::string>(sqlagent::Client&)>& op,
                              const std::string& context) {
  auto a = env.agent(store);
  if (!a) return fail(a.error());
  auto r = op(*a);
  if (!r && !context.empty()) return fail(r.error().withContext(context));
  return r;
}

Step setActiveServersStep(Env& env, const std::string& pool, const char* site_fact,
                          std::function<std::string(const StepContext&)> skip) {
  Step s;
  s.name = "set the active servers";
  s.timeout = std::chrono::seconds(20);
  s.plan = [pool, site_fact](const StepContext& ctx) {
    return "set the active servers of `" + pool + "` to " +
           joinNames(stringList(ctx.facts["active_servers"])) + " (site " + fact(ctx, site_fact) + ")";
  };
  s.action = [&env, pool, site_fact, skip](StepContext& ctx) -> Result<std::string> {
    if (skip) {
      if (std::string why = skip(ctx); !why.empty()) return why;
    }
    nlohmann::json want = ctx.facts["active_servers"];
    auto cur = env.setting(chatActiveServersKey(pool));
    if (!cur) return fail(cur.error());
    if (*cur == want) {
      return "the active servers of `" + pool + "` were already " + joinNames(stringList(want));
    }
    Status st = env.setSettings({{chatActiveServersKey(pool), want}});
    if (!st.isOk()) return fail(st);
    return "set the active servers of `" + pool + "` to " + joinNames(stringList(want)) +
           " (site " + fact(ctx, site_fact) + ")";
  };
  s.verify = [&env, pool, skip](const StepContext& ctx) -> Status {
    if (skip && !skip(ctx).empty()) return Status::ok();
    auto cur = env.setting(chatActiveServersKey(pool));
    if (!cur) return cur.error();
    if (*cur != ctx.facts["active_servers"]) {
      return internalError("the CMS holds active servers " + cur->dump() + " for `" + pool + "`");
    }
    return Status::ok();
  };
  return s;
}

}  // namespace internal

}  // namespace tandem::hadr
