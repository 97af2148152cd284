// Helpers shared by the hadr runbooks: chat failover and failback, db failover (internal to hadr).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hadr/env.h"
#include "hadr/runbook.h"

namespace tandem::hadr::internal {

// Polls `check` every 200 ms until it returns OK or the step's deadline passes; returns the last
// status (so the error says what was still wrong).
Status pollUntil(const StepContext& ctx, const std::function<Status()>& check);

// The string fact `key` recorded by the gate, or "" when absent.
std::string fact(const StepContext& ctx, const char* key);

// Runs `op` (one call such as fence, promote, restore) on the agent of `store`: the agent's
// outcome sentence, or its error with `context` in front when one is given. Blocks on the agent.
Result<std::string> callAgent(const Env& env, const std::string& store,
                              const std::function<Result<std::string>(sqlagent::Client&)>& op,
                              const std::string& context = "");

// "set the active servers": writes ctx.facts["active_servers"] to the CMS setting of `pool`
// (idempotent; verified by reading it back). `site_fact` names the fact holding the site those
// servers are in. When `skip` returns a sentence, the step does nothing and reports it.
Step setActiveServersStep(Env& env, const std::string& pool, const char* site_fact,
                          std::function<std::string(const StepContext&)> skip = {});

// OK when both members of the pair report it SYNCHRONIZED: `principal` names `mirror` as its
// partner, and `mirror` follows `principal`. Each agent reports what its own monitor saw on its
// last round (once a second), so right after a mirror install the principal's side can read
// SYNCHRONIZED while the mirror's still holds what it saw during its base backup (DISCONNECTED):
// a verification that reads only one side claims more than the other side shows (the flake of
// the store-level drill). Otherwise Internal naming the side that does not agree yet.
Status pairSynchronized(const Env& env, const std::string& principal, const std::string& mirror);

// "a, b and c".
std::string joinNames(const std::vector<std::string>& names);

// The JSON array of strings, or [] when `v` is not one.
std::vector<std::string> stringList(const nlohmann::json& v);

// Reads acknowledged message ids: one per line, or a JSON array of strings.
Result<std::vector<std::string>> readIds(const std::string& file);

// Counts the ids present in `mgc.messages` (as stanza_id, origin_id or body) on the writable
// member of `addresses`, and the newest message's time.
struct MessageCount {
  long present = 0;      // of `ids`
  long total = 0;        // every message in the store
  std::string newest_ts;  // ISO-8601 of the newest message ("" when none)
};
Result<MessageCount> countMessages(const Env& env, const std::vector<std::string>& addresses,
                                   const std::vector<std::string>& ids);

}  // namespace tandem::hadr::internal
