// `tandemctl chat failback`: move a failed-over chat pool back to its rebuilt primary store.
//
// Steps, as in docs/runbooks/persistent-chat.md and the source runbook (seeds/003):
//   1. clear the active servers (no chat server touches mgc/mgccomp during failback)
//   2. remove mirroring on the backup store
//   3. take a full backup of the backup store to the share
//   4. restore the primary store from it, overwriting what is there, ready to use
//   5. configure log shipping from the primary again (the backup store reseeded as a restoring
//      standby) and the primary's mirror
//   6. set the active servers (the primary's site)
//   7. set the chat pool state Normal (and its original front-end pool when it answers)
// Failback loses nothing: writes stop at step 1 and step 4 checks every message is on the primary.
#include <algorithm>
#include <functional>
#include <future>

#include "hadr/chat_runbooks.h"
#include "hadr/internal/chat_common.h"

namespace tandem::hadr {

using internal::callAgent;
using internal::fact;
using internal::joinNames;
using internal::pollUntil;
using internal::setActiveServersStep;
using internal::stringList;
using namespace std::chrono_literals;

namespace {


bool normalAtStart(const StepContext& ctx) { return ctx.facts.value("normal_at_start", false); }

std::string alreadyNormal(const std::string& pool) {
  return "chat pool `" + pool + "` was already Normal: nothing to fail back";
}

Status failbackGate(Env& env, const ChatFailbackOptions& o, StepContext& ctx) {
  auto pool = env.chatPool(o.pool);
  if (!pool) return pool.error();
  const topology::Pool& p = **pool;
  auto primary = env.store(p.store);
  if (!primary) return primary.error();
  auto cms = env.cms();
  if (!cms) {
    return failedPrecondition("the CMS is unreachable (" + cms.error().message() +
                              "); make it reachable first (`" + env.cmsFailoverHint() + "`)");
  }
  // The primary site must be rebuilt: its store and its mirror answer.
  for (const std::string& s : {(*primary)->name, (*primary)->mirror}) {
    if (s.empty()) continue;
    if (Status st = env.probeAgent(s); !st.isOk()) {
      return failedPrecondition("the primary site `" + (*primary)->site + "` is not rebuilt: " +
                                st.message() + "; revive or rebuild it first (`tandemctl deploy "
                                "revive-site " + (*primary)->site + "`)");
    }
  }
  if (Status st = env.probeAgent(p.backup_store); !st.isOk()) {
    return failedPrecondition(st.message() + "; the backup store holds the pool's data while it "
                              "is failed over and must be up to fail back");
  }
  auto state = env.setting(chatStateKey(p.fqdn));
  if (!state) return failedPrecondition(state.error().message());
  if (!ctx.resuming) {
    // Already failed back only when the CMS says Normal AND the backup store is a restoring
    // standby again: a writable backup store holds the pool's newest data whatever the CMS says
    // (e.g. a revived old CMS copy that still reads Normal).
    auto backup = env.agentStatus(p.backup_store);
    bool restoring = backup && !isWritableRole(backup->role);
    ctx.facts["normal_at_start"] = *state != "FailedOver" && restoring;
  }
  std::vector<std::string> eligible = eligibleChatServers(env.topology(), p, (*primary)->site);
  std::vector<std::string> active = o.active_servers;
  if (active.empty()) {
    bool all_eligible = !p.active_servers.empty();
    for (const auto& s : p.active_servers) {
      all_eligible &= std::find(eligible.begin(), eligible.end(), s) != eligible.end();
    }
    active = all_eligible ? p.active_servers : eligible;
  }
  for (const auto& s : active) {
    if (std::find(eligible.begin(), eligible.end(), s) == eligible.end()) {
      return failedPrecondition("server `" + s + "` may not be an active server of `" + p.fqdn +
                                "` after failback: it is not in site `" + (*primary)->site +
                                "` (the primary's) nor in a site marked low_latency_to it; "
                                "eligible: " + joinNames(eligible));
    }
  }
  if (active.empty()) {
    return failedPrecondition("chat pool `" + p.fqdn + "` has no server in site `" +
                              (*primary)->site + "`; add one to the topology first");
  }
  ctx.facts["primary"] = p.store;
  ctx.facts["primary_mirror"] = (*primary)->mirror;
  ctx.facts["primary_site"] = (*primary)->site;
  ctx.facts["backup"] = p.backup_store;
  ctx.facts["active_servers"] = active;
  ctx.facts["frontend_pool"] = p.frontend_pool;
  return Status::ok();
}

// ---- Steps -------------------------------------------------------------------------------------

Step clearActiveServers(Env& env, const std::string& pool) {
  Step s;
  s.name = "clear the active servers";
  s.timeout = 30s;
  s.plan = [pool](const StepContext&) {
    return "set the active servers of `" + pool + "` to none, then end what is left connected";
  };
  s.action = [&env, pool](StepContext& ctx) -> Result<std::string> {
    if (normalAtStart(ctx)) return alreadyNormal(pool);
    auto cur = env.setting(chatActiveServersKey(pool));
    if (!cur) return fail(cur.error());
    if (!stringList(*cur).empty()) {
      Status st = env.setSettings({{chatActiveServersKey(pool), nlohmann::json::array()}});
      if (!st.isOk()) return fail(st);
    }
    // Chat servers follow the list within about 2 s; then end whatever still holds mgc.
    auto a = env.agent(fact(ctx, "backup"));
    if (!a) return fail(a.error());
    StepContext wait = ctx;
    wait.deadline = std::min(ctx.deadline, std::chrono::steady_clock::now() + 10s);
    Status idle = pollUntil(wait, [&]() -> Status {
      auto c = a->connections();
      if (!c) return c.error();
      for (const auto& conn : *c) {
        if (conn.database == "mgc" || conn.database == "mgccomp") return conflict("busy");
      }
      return Status::ok();
    });
    int ended = 0;
    if (!idle.isOk()) {
      auto n = a->endConnections(true);
      if (!n) return fail(n.error());
      ended = *n;
    }
    return "cleared the active servers of `" + pool + "` (no chat server writes mgc now" +
           (ended > 0 ? "; ended " + std::to_string(ended) + " lingering connections" : "") + ")";
  };
  s.verify = [&env, pool](const StepContext& ctx) -> Status {
    if (normalAtStart(ctx)) return Status::ok();
    auto cur = env.setting(chatActiveServersKey(pool));
    if (!cur) return cur.error();
    if (!stringList(*cur).empty()) {
      return internalError("the CMS still holds active servers " + cur->dump() + " for `" + pool + "`");
    }
    return Status::ok();
  };
  return s;
}

Step removeBackupMirroring(Env& env, const std::string& pool) {
  Step s;
  s.name = "remove mirroring on the backup store";
  s.timeout = 30s;
  s.plan = [](const StepContext& ctx) {
    return "make `" + fact(ctx, "backup") + "` serve alone (drop its synchronous mirror)";
  };
  s.action = [&env, pool](StepContext& ctx) -> Result<std::string> {
    if (normalAtStart(ctx)) return alreadyNormal(pool);
    const std::string b = fact(ctx, "backup");
    auto st = env.agentStatus(b);
    if (!st) return fail(st.error());
    if (!isWritableRole(st->role)) {
      return "backup store `" + b + "` is " + st->role + ": it has no mirror to remove";
    }
    if (st->partner.empty() && !st->synchronous) {
      return "backup store `" + b + "` already served alone";
    }
    auto r = callAgent(env, b, [](sqlagent::Client& a) { return a.removeMirror(); });
    if (!r) return r;
    return "removed mirroring on backup store `" + b + "` (was `" + st->partner + "`, " +
           st->mirror_status + ")";
  };
  s.verify = [&env](const StepContext& ctx) -> Status {
    if (normalAtStart(ctx)) return Status::ok();
    auto st = env.agentStatus(fact(ctx, "backup"));
    if (!st) return st.error();
    if (isWritableRole(st->role) && st->synchronous) {
      return internalError("`" + fact(ctx, "backup") + "` still commits synchronously to a mirror");
    }
    return Status::ok();
  };
  return s;
}

Step backUpBackupStore(Env& env, const std::string& pool) {
  Step s;
  s.name = "take a full backup of the backup store to the share";
  s.timeout = 600s;
  s.plan = [](const StepContext& ctx) {
    return "take a pgBackRest full backup of `" + fact(ctx, "backup") + "` to the share";
  };
  s.action = [&env, pool](StepContext& ctx) -> Result<std::string> {
    if (normalAtStart(ctx)) return alreadyNormal(pool);
    const std::string b = fact(ctx, "backup");
    auto st = env.agentStatus(b);
    if (!st) return fail(st.error());
    if (!isWritableRole(st->role)) {
      return "backup store `" + b + "` is " + st->role + " again: the primary was restored before";
    }
    auto store = env.store(b);
    if (!store) return fail(store.error());
    // What the primary must hold after the restore (writes stopped at step 1).
    auto count = internal::countMessages(env, {(*store)->address}, {});
    if (!count) return fail(count.error().withContext("counting messages on `" + b + "`"));
    ctx.facts["messages_at_backup"] = count->total;
    ctx.facts["newest_message_at_backup"] = count->newest_ts;
    auto r = callAgent(env, b, [](sqlagent::Client& a) { return a.fullBackup(); });
    if (!r) return r;
    ctx.facts["backup_outcome"] = *r;
    return *r + " (" + std::to_string(count->total) + " messages)";
  };
  return s;
}

Step restorePrimaryStore(Env& env, const std::string& pool) {
  Step s;
  s.name = "restore the primary store from it, with overwrite";
  s.timeout = 600s;
  s.plan = [](const StepContext& ctx) {
    return "replace `" + fact(ctx, "primary") + "` with the backup of `" + fact(ctx, "backup") +
           "` and start it writable";
  };
  s.action = [&env, pool](StepContext& ctx) -> Result<std::string> {
    if (normalAtStart(ctx)) return alreadyNormal(pool);
    const std::string p = fact(ctx, "primary"), b = fact(ctx, "backup");
    auto bst = env.agentStatus(b);
    if (!bst) return fail(bst.error());
    if (!isWritableRole(bst->role)) {
      return "primary store `" + p + "` was already restored (backup store `" + b + "` is " +
             bst->role + ")";
    }
    return callAgent(env, p, [&b](sqlagent::Client& a) { return a.restore(true, b); });
  };
  s.verify = [&env](const StepContext& ctx) -> Status {
    if (normalAtStart(ctx)) return Status::ok();
    const std::string p = fact(ctx, "primary");
    Status writable = pollUntil(ctx, [&]() -> Status {
      auto st = env.agentStatus(p);
      if (!st) return st.error();
      if (!isWritableRole(st->role) || st->in_recovery) {
        return internalError("primary store `" + p + "` reports role " + st->role);
      }
      return Status::ok();
    });
    if (!writable.isOk() || !ctx.facts.contains("messages_at_backup")) return writable;
    auto store = env.store(p);
    if (!store) return store.error();
    auto count = internal::countMessages(env, {(*store)->address}, {});
    if (!count) return count.error();
    long want = ctx.facts.value("messages_at_backup", 0L);
    if (count->total < want) {
      return dataLoss("primary store `" + p + "` holds " + std::to_string(count->total) +
                      " messages after the restore, the backup store held " + std::to_string(want));
    }
    return Status::ok();
  };
  return s;
}

// Step 5's two halves touch different stores, so once the primary's full backup is on the share
// they run side by side (the mirror's base backup used to wait for the whole reseed):
//   a. take a full backup of the primary (the restore of step 4 started a new timeline, and the
//      reseed must start from a backup on it; the backup store's agent reuses this one)
//   b. reseed the backup store from it as the primary's restoring standby (stopped first: it is
//      still the writable copy of step 3, and step 4 checked the primary holds every message)
//   c. at the same time, install the primary's mirror (base backup of the primary)
// Each half notices work already done, so a resume after kill -9 redoes only what is missing.
bool isShippingFrom(Env& env, const std::string& b) {
  auto ba = env.agent(b);
  if (!ba) return false;
  auto ls = ba->logShippingStatus();
  return ls && ls->role == "BackupRestoring" && ls->copy_job && ls->restore_job;
}

// a and b. The backup store is reseeded from the full backup taken here: its agent reuses the
// newest full backup of the primary when it is on the primary's current timeline.
Result<std::string> reseedBackupStore(Env& env, const std::string& p, const std::string& b,
                                      const std::function<void()>& after_backup) {
  auto ba = env.agent(b);
  if (!ba) return fail(ba.error());
  auto bst = env.agentStatus(b);
  if (bst && isWritableRole(bst->role)) {
    auto stopped = ba->stop();
    if (!stopped) return fail(stopped.error().withContext("stopping `" + b + "` before reseeding it"));
  }
  auto pa = env.agent(p);
  if (!pa) return fail(pa.error());
  auto full = pa->fullBackup();
  if (!full) return fail(full.error().withContext("full backup of `" + p + "` for the reseed"));
  after_backup();
  auto r = ba->configureLogShipping(p);
  if (!r) return fail(r.error().withContext("configuring log shipping to `" + b + "`"));
  return *full + "; " + *r;
}

Result<std::string> installPrimaryMirror(Env& env, const std::string& p, const std::string& m) {
  if (internal::pairSynchronized(env, p, m).isOk()) {
    return "`" + m + "` was already the synchronized mirror of `" + p + "`";
  }
  return callAgent(
      env, p, [&m](sqlagent::Client& a) { return a.installMirror(m); },
      "installing mirror `" + m + "`");
}

Step configureLogShippingAndMirror(Env& env, const std::string& pool) {
  Step s;
  s.name = "configure log shipping from the primary and the primary's mirror";
  s.timeout = 600s;
  s.plan = [](const StepContext& ctx) {
    return "reseed `" + fact(ctx, "backup") + "` as the restoring standby of `" +
           fact(ctx, "primary") + "`" +
           (fact(ctx, "primary_mirror").empty() ? std::string()
                                                : " and make `" + fact(ctx, "primary_mirror") +
                                                      "` its synchronous mirror");
  };
  s.action = [&env, pool](StepContext& ctx) -> Result<std::string> {
    if (normalAtStart(ctx)) return alreadyNormal(pool);
    const std::string p = fact(ctx, "primary"), b = fact(ctx, "backup"),
                      m = fact(ctx, "primary_mirror");
    // a then b on this thread; c on another thread as soon as the primary's agent is free (it
    // runs one operation at a time), i.e. right after a's full backup, or at once when the
    // backup store already ships. Both are joined before the step returns.
    std::future<Result<std::string>> mirror;
    auto startMirror = [&, p, m] {
      if (m.empty() || mirror.valid()) return;
      mirror = std::async(std::launch::async, [&env, p, m] { return installPrimaryMirror(env, p, m); });
    };
    Result<std::string> shipped = std::string();
    if (isShippingFrom(env, b)) {
      startMirror();
      shipped = "log shipping from `" + p + "` to `" + b + "` was already running";
    } else {
      shipped = reseedBackupStore(env, p, b, startMirror);
    }
    Result<std::string> mirrored = std::string();
    if (mirror.valid()) mirrored = mirror.get();
    if (!shipped) return fail(shipped.error());
    if (!mirrored) return fail(mirrored.error());
    return *shipped + (mirrored->empty() ? "" : "; " + *mirrored);
  };
  s.verify = [&env](const StepContext& ctx) -> Status {
    if (normalAtStart(ctx)) return Status::ok();
    const std::string p = fact(ctx, "primary"), b = fact(ctx, "backup"),
                      m = fact(ctx, "primary_mirror");
    return pollUntil(ctx, [&]() -> Status {
      auto ba = env.agent(b);
      if (!ba) return ba.error();
      auto ls = ba->logShippingStatus();
      if (!ls) return ls.error();
      if (ls->role != "BackupRestoring" || !ls->copy_job || !ls->restore_job) {
        return internalError("backup store `" + b + "` reports role " + ls->role +
                             (ls->restore_job ? "" : " without its restore job"));
      }
      return m.empty() ? Status::ok() : internal::pairSynchronized(env, p, m);
    });
  };
  return s;
}

Step setPrimaryActiveServers(Env& env, const std::string& pool) {
  return setActiveServersStep(env, pool, "primary_site", [pool](const StepContext& ctx) {
    return normalAtStart(ctx) ? alreadyNormal(pool) : std::string();
  });
}

Step setPoolStateNormal(Env& env, const std::string& pool) {
  Step s;
  s.name = "set the chat pool state to Normal";
  s.timeout = 20s;
  s.plan = [pool](const StepContext& ctx) {
    return "set `" + pool + "` state Normal (chat servers use `" + fact(ctx, "primary") + "`)";
  };
  s.action = [&env, pool](StepContext& ctx) -> Result<std::string> {
    if (normalAtStart(ctx)) return alreadyNormal(pool);
    auto state = env.setting(chatStateKey(pool));
    if (!state) return fail(state.error());
    nlohmann::json changes = nlohmann::json::object();
    std::string fe_note;
    // Back to the pool's own front-end pool when it answers; otherwise keep the one in use.
    const std::string fe = fact(ctx, "frontend_pool");
    auto cur_fe = env.setting(chatFrontendPoolKey(pool));
    if (!cur_fe) return fail(cur_fe.error());
    if (!fe.empty() && *cur_fe != fe) {
      if (!env.reachableServers(fe).empty()) {
        changes[chatFrontendPoolKey(pool)] = fe;
        fe_note = "; chat servers attach to front-end pool `" + fe + "` again";
      } else {
        fe_note = "; front-end pool `" + fe + "` does not answer, so they stay on " + cur_fe->dump();
      }
    }
    if (*state != "Normal") changes[chatStateKey(pool)] = "Normal";
    if (changes.empty()) return "chat pool `" + pool + "` was already Normal";
    Status st = env.setSettings(changes);
    if (!st.isOk()) return fail(st);
    return "set chat pool `" + pool + "` state to Normal: its chat servers use `" +
           fact(ctx, "primary") + "` again" + fe_note;
  };
  s.verify = [&env, pool](const StepContext&) -> Status {
    auto state = env.setting(chatStateKey(pool));
    if (!state) return state.error();
    if (*state != "Normal") return internalError("the CMS holds state " + state->dump() + " for `" + pool + "`");
    return Status::ok();
  };
  return s;
}

}  // namespace

Runbook chatFailbackRunbook(Env& env, const ChatFailbackOptions& o) {
  Runbook rb;
  rb.name = "chat-failback";
  rb.subject = o.pool;
  rb.command = "tandemctl chat failback --pool " + o.pool + " --yes";
  rb.gate = [&env, o](StepContext& ctx) { return failbackGate(env, o, ctx); };
  rb.steps = {clearActiveServers(env, o.pool),      removeBackupMirroring(env, o.pool),
              backUpBackupStore(env, o.pool),       restorePrimaryStore(env, o.pool),
              configureLogShippingAndMirror(env, o.pool), setPrimaryActiveServers(env, o.pool),
              setPoolStateNormal(env, o.pool)};
  rb.summarize = [](const StepContext& ctx) {
    nlohmann::json r;
    r["messages_at_backup"] = ctx.facts.value("messages_at_backup", 0L);
    r["newest_message_at_backup"] = fact(ctx, "newest_message_at_backup");
    r["active_servers"] = ctx.facts.value("active_servers", nlohmann::json::array());
    r["lines"] = nlohmann::json::array(
        {"data loss: none (writes stopped at step 1; the primary holds every one of the " +
         std::to_string(ctx.facts.value("messages_at_backup", 0L)) +
         " messages the backup store held)"});
    if (ctx.facts.value("normal_at_start", false)) {
      r["lines"] = nlohmann::json::array({"the pool was already Normal: nothing was changed"});
    }
    return r;
  };
  return rb;
}

}  // namespace tandem::hadr
