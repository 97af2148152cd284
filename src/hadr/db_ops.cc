// Mirror state and the manual mirror failover (fence, promote, rejoin).
//
// Fence first (STYLE.md §8): the old principal is stopped before the mirror is promoted, so there
// is never a second writable principal; a principal that does not answer cannot acknowledge
// commits anyway (synchronous replication is the fence) and its agent refuses connections.
// The promotion is recorded at the pair's witness as a vote (the mirror's agent does it in
// /promote, `--force` included), so the old principal, back where only the witness sees it, is
// refused exposure; the promote step's outcome says whether the witness recorded it.
#include "hadr/db_ops.h"

#include "hadr/internal/chat_common.h"

namespace tandem::hadr {

using internal::callAgent;
using internal::fact;
using namespace std::chrono_literals;

nlohmann::json toJson(const MemberState& m) {
  nlohmann::json j = {{"store", m.store},         {"reachable", m.reachable},
                      {"role", m.role},           {"status", m.status},
                      {"lag_bytes", m.lag_bytes}, {"lag_s", m.lag_seconds},
                      {"partner", m.partner}};
  if (!m.error.empty()) j["error"] = m.error;
  if (!m.divergence.empty()) j["divergence"] = m.divergence;
  return j;
}

Result<std::pair<std::string, std::string>> mirroredPair(const Env& env, const std::string& store) {
  auto s = env.store(store);
  if (!s) return fail(s.error());
  if (!(*s)->mirror.empty()) return std::make_pair(store, (*s)->mirror);
  if (const topology::Store* p = env.topology().principalOf(store)) {
    return std::make_pair(p->name, store);
  }
  return fail(failedPrecondition("store `" + store + "` is not mirrored (the topology gives it no "
                                 "mirror); install one with `tandemctl db mirror install --store " +
                                 store + " --mirror <store>`"));
}

namespace {
MemberState memberState(const Env& env, const std::string& name) {
  MemberState m;
  m.store = name;
  auto st = env.agentStatus(name);
  if (!st) {
    m.error = st.error().message();
    return m;
  }
  m.reachable = true;
  m.role = st->role;
  m.status = st->mirror_status;
  m.lag_bytes = st->lag_bytes;
  m.lag_seconds = st->lag_seconds;
  m.partner = st->partner;
  m.divergence = st->divergence;
  return m;
}
}  // namespace

Result<std::vector<MemberState>> mirrorState(const Env& env, const std::string& store) {
  auto pair = mirroredPair(env, store);
  if (!pair) return fail(pair.error());
  return std::vector<MemberState>{memberState(env, pair->first), memberState(env, pair->second)};
}

// ---- db failover ---------------------------------------------------------------------------

namespace {

Status dbFailoverGate(Env& env, const std::string& store, bool force, StepContext& ctx) {
  auto pair = mirroredPair(env, store);
  if (!pair) return pair.error();
  if (ctx.resuming && ctx.facts.contains("principal")) return Status::ok();  // keep the direction
  MemberState a = memberState(env, pair->first), b = memberState(env, pair->second);
  // The current principal is the writable member; the other is the mirror to promote.
  bool a_principal = a.reachable ? isWritableRole(a.role) : !(b.reachable && isWritableRole(b.role));
  const MemberState& principal = a_principal ? a : b;
  const MemberState& mirror = a_principal ? b : a;
  if (!mirror.reachable) {
    return failedPrecondition("mirror `" + mirror.store + "` does not answer (" + mirror.error +
                              "); there is nothing to fail over to");
  }
  if (mirror.role != "Mirror") {
    return failedPrecondition("store `" + mirror.store + "` is " + mirror.role +
                              ", not the mirror of `" + principal.store + "`; see `tandemctl db "
                              "mirror state --store " + store + "`");
  }
  std::string loss = mirror.status == "SYNCHRONIZED"
                         ? "nothing is lost: `" + mirror.store + "` was SYNCHRONIZED"
                         : "commits `" + mirror.store + "` had not received may be lost (it was " +
                               (mirror.status.empty() ? std::string("not synchronized") : mirror.status) +
                               ", " + std::to_string(mirror.lag_bytes) + " bytes behind)";
  if (!principal.reachable && !force) {
    return failedPrecondition("principal `" + principal.store + "` does not answer; `--force` "
                              "promotes `" + mirror.store + "` anyway: " + loss);
  }
  ctx.facts["principal"] = principal.store;
  ctx.facts["mirror"] = mirror.store;
  ctx.facts["principal_reachable"] = principal.reachable;
  ctx.facts["loss"] = loss;
  return Status::ok();
}

Step fencePrincipal(Env& env) {
  Step s;
  s.name = "fence the principal";
  s.timeout = 60s;
  s.plan = [](const StepContext& ctx) {
    return ctx.facts.value("principal_reachable", false)
               ? "stop `" + fact(ctx, "principal") + "` (Fenced: no client can connect)"
               : "nothing: `" + fact(ctx, "principal") + "` does not answer (isolated, it cannot "
                 "acknowledge a commit)";
  };
  s.action = [&env](StepContext& ctx) -> Result<std::string> {
    const std::string p = fact(ctx, "principal");
    auto st = env.agentStatus(p);
    if (!st) return "principal `" + p + "` does not answer: isolated, it cannot acknowledge a commit";
    if (st->role == "Fenced" || st->role == "Mirror") return "`" + p + "` was already " + st->role;
    return callAgent(env, p, [](sqlagent::Client& a) { return a.fence(); });
  };
  s.verify = [&env](const StepContext& ctx) -> Status {
    auto st = env.agentStatus(fact(ctx, "principal"));
    if (st && isWritableRole(st->role)) {
      return internalError("`" + fact(ctx, "principal") + "` still reports role " + st->role);
    }
    return Status::ok();
  };
  return s;
}

Step promoteMirror(Env& env) {
  Step s;
  s.name = "promote the mirror";
  s.timeout = 60s;
  s.plan = [](const StepContext& ctx) {
    return "promote `" + fact(ctx, "mirror") + "` to principal (" + fact(ctx, "loss") + ")";
  };
  s.action = [&env](StepContext& ctx) -> Result<std::string> {
    const std::string m = fact(ctx, "mirror");
    auto st = env.agentStatus(m);
    if (!st) return fail(st.error());
    if (isWritableRole(st->role)) return "`" + m + "` was already the principal";
    auto r = callAgent(env, m, [](sqlagent::Client& a) { return a.promote(); });
    if (!r) return r;
    return *r + " (" + fact(ctx, "loss") + ")";
  };
  s.verify = [&env](const StepContext& ctx) -> Status {
    return internal::pollUntil(ctx, [&]() -> Status {
      auto st = env.agentStatus(fact(ctx, "mirror"));
      if (!st) return st.error();
      if (!isWritableRole(st->role)) {
        return internalError("`" + fact(ctx, "mirror") + "` reports role " + st->role);
      }
      // The role changes when promotion starts; writable is when PostgreSQL left recovery.
      if (st->in_recovery) {
        return internalError("`" + fact(ctx, "mirror") + "` is still in recovery");
      }
      return Status::ok();
    });
  };
  return s;
}

Step rejoinOldPrincipal(Env& env) {
  Step s;
  s.name = "rejoin the old principal as the new mirror";
  s.timeout = 300s;
  s.plan = [](const StepContext& ctx) {
    return "make `" + fact(ctx, "principal") + "` the mirror of `" + fact(ctx, "mirror") +
           "` when it answers (its agent does it when it comes back otherwise)";
  };
  s.action = [&env](StepContext& ctx) -> Result<std::string> {
    const std::string p = fact(ctx, "principal"), m = fact(ctx, "mirror");
    if (!env.probeAgent(p).isOk()) {
      return "`" + p + "` does not answer; its agent rejoins it as the mirror of `" + m +
             "` when it comes back";
    }
    auto st = env.agentStatus(p);
    if (st && st->role == "Mirror" && st->principal == m) return "`" + p + "` was already the mirror of `" + m + "`";
    return callAgent(env, p, [&m](sqlagent::Client& a) { return a.rejoin(m); });
  };
  return s;
}

}  // namespace

Runbook dbFailoverRunbook(Env& env, const std::string& store, bool force) {
  Runbook rb;
  rb.name = "db-failover";
  rb.subject = store;
  rb.command = "tandemctl db failover --store " + store + (force ? " --force" : "") + " --yes";
  rb.gate = [&env, store, force](StepContext& ctx) { return dbFailoverGate(env, store, force, ctx); };
  rb.steps = {fencePrincipal(env), promoteMirror(env), rejoinOldPrincipal(env)};
  rb.summarize = [](const StepContext& ctx) {
    return nlohmann::json{{"principal", fact(ctx, "mirror")},
                          {"old_principal", fact(ctx, "principal")},
                          {"lines", {"data loss: " + fact(ctx, "loss")}}};
  };
  return rb;
}

}  // namespace tandem::hadr
