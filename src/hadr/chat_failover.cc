// `tandemctl chat failover`: recover the log-shipped backup store of a chat pool in the other site
// and move the pool onto it, when the primary site (store, mirror, front ends) is lost.
//
// Steps, as in docs/runbooks/persistent-chat.md and the source runbook (seeds/001):
//   1. remove log shipping on the backup store (stop the copy and restore jobs)
//   2. copy every log backup on the share not yet in the copy folder
//   3. apply every unapplied log backup, in sequence
//   4. end all connections to the backup store
//   5. recover the backup store (fence an answering old primary first; then writable)
//   6. set the pool state FailedOver (and the front-end pool the chat servers attach to)
//   7. install the backup mirror for the new primary
//   8. set the active servers (the new primary's site, or a site low-latency to it)
// mgccomp is not carried over: its content is transient (the compliance adapter purges it).
#include <algorithm>
#include <functional>

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

const char* kMgccompNote =
    "mgccomp (the compliance queue) was not carried over: its content is transient and purged as "
    "the compliance adapter processes it; check the adapter's last export before the outage";

// The runbook-wide gate: the CMS answers, the primary is lost (or --force), the backup store
// answers, a reachable front-end pool, eligible active servers. Fills the facts the steps use.
Status failoverGate(Env& env, const ChatFailoverOptions& o, StepContext& ctx) {
  auto pool = env.chatPool(o.pool);
  if (!pool) return pool.error();
  const topology::Pool& p = **pool;
  auto backup = env.store(p.backup_store);
  if (!backup) return backup.error();
  auto primary = env.store(p.store);
  if (!primary) return primary.error();

  auto cms = env.cms();
  if (!cms) {
    return failedPrecondition("the CMS is unreachable (" + cms.error().message() +
                              "), so the pool state cannot reach the chat servers; fail the CMS "
                              "over first (`" + env.cmsFailoverHint() + "`)");
  }
  // The lost primary: its store and its mirror must both be silent, unless --force.
  std::vector<std::string> answering;
  for (const std::string& s : {(*primary)->name, (*primary)->mirror}) {
    if (!s.empty() && env.probeAgent(s).isOk()) answering.push_back(s);
  }
  ctx.facts["primary_answering"] = answering;
  auto state = env.setting(chatStateKey(p.fqdn));
  bool failed_over = state && state->is_string() && *state == "FailedOver";
  if (!answering.empty() && !o.force && !failed_over) {
    return failedPrecondition(
        "primary store " + joinNames(answering) + " of chat pool `" + p.fqdn +
        "` still answers; chat failover is for a lost site (for a mirror failover run "
        "`tandemctl db failover --store " + p.store + "`), or pass --force to recover `" +
        p.backup_store + "` anyway (commits after its last log backup are lost)");
  }
  if (Status st = env.probeAgent(p.backup_store); !st.isOk()) {
    return failedPrecondition(st.message() + "; the backup store must be up to fail over to it "
                              "(`tandemctl deploy status`)");
  }
  // The front-end pool the chat servers attach to must be reachable.
  std::string fe = o.frontend_pool;
  if (fe.empty()) {
    auto cur = env.setting(chatFrontendPoolKey(p.fqdn));
    fe = cur && cur->is_string() ? cur->get<std::string>() : p.frontend_pool;
  }
  const topology::Pool* fep = env.topology().findPool(fe);
  if (fep == nullptr || fep->role != topology::PoolRole::kFrontend) {
    return failedPrecondition("`" + fe + "` is not a front-end pool of the topology; name one "
                              "with --frontend-pool");
  }
  if (env.reachableServers(fe).empty()) {
    std::vector<std::string> alive;
    for (const auto* other : env.topology().poolsWithRole(topology::PoolRole::kFrontend)) {
      if (other->fqdn != fe && !env.reachableServers(other->fqdn).empty()) alive.push_back(other->fqdn);
    }
    return failedPrecondition(
        "front-end pool `" + fe + "` that the chat servers attach to does not answer" +
        (alive.empty() ? std::string("; no front-end pool answers: bring one up first")
                       : "; choose a reachable one: `tandemctl chat failover --pool " + p.fqdn +
                             " --frontend-pool " + alive.front() + "`"));
  }
  // Active servers: in the new primary's site or a site low-latency to it.
  std::vector<std::string> eligible = eligibleChatServers(env.topology(), p, (*backup)->site);
  std::vector<std::string> active = o.active_servers.empty() ? eligible : o.active_servers;
  for (const auto& s : active) {
    if (std::find(eligible.begin(), eligible.end(), s) == eligible.end()) {
      return failedPrecondition("server `" + s + "` may not be an active server of `" + p.fqdn +
                                "` after failover: it is not in site `" + (*backup)->site +
                                "` (the new primary's) nor in a site marked low_latency_to it; "
                                "eligible: " + joinNames(eligible));
    }
  }
  if (active.empty()) {
    return failedPrecondition("chat pool `" + p.fqdn + "` has no server in site `" +
                              (*backup)->site + "` or a site low-latency to it; add one to the "
                              "topology first");
  }
  ctx.facts["primary"] = p.store;
  ctx.facts["primary_mirror"] = (*primary)->mirror;
  ctx.facts["backup"] = p.backup_store;
  ctx.facts["backup_mirror"] = p.backup_mirror;
  ctx.facts["backup_site"] = (*backup)->site;
  ctx.facts["frontend_pool"] = fe;
  ctx.facts["active_servers"] = active;
  ctx.facts["interval_s"] = (*primary)->log_shipping ? (*primary)->log_shipping->interval_s : 5;
  return Status::ok();
}


// The backup store is already writable: steps 1-5 have nothing left to do.
Result<bool> alreadyRecovered(Env& env, const std::string& backup) {
  auto st = env.agentStatus(backup);
  if (!st) return fail(st.error());
  return isWritableRole(st->role) && !st->in_recovery;
}

// The action of steps 1-5: `act` on the backup store's agent while it is still restoring; once
// it is recovered (a rerun, or a resume after step 5) the step reports "backup store `b` was
// already recovered" followed by `already`, and does nothing.
using BackupStoreAction =
    std::function<Result<std::string>(StepContext&, const std::string& backup, sqlagent::Client&)>;
std::function<Result<std::string>(StepContext&)> unlessRecovered(Env& env, std::string already,
                                                                 BackupStoreAction act) {
  return [&env, already, act](StepContext& ctx) -> Result<std::string> {
    const std::string b = fact(ctx, "backup");
    auto done = alreadyRecovered(env, b);
    if (!done) return fail(done.error());
    if (*done) return "backup store `" + b + "` was already recovered" + already;
    auto a = env.agent(b);
    if (!a) return fail(a.error());
    return act(ctx, b, *a);
  };
}

// The verification of steps 1 and 2: OK once the backup store is recovered; until then `check`
// judges the log-shipping status its agent reports.
using ShippingCheck =
    std::function<Status(const std::string& backup, const sqlagent::LogShippingStatus&)>;
std::function<Status(const StepContext&)> verifyShippingUnlessRecovered(Env& env,
                                                                        ShippingCheck check) {
  return [&env, check](const StepContext& ctx) -> Status {
    const std::string b = fact(ctx, "backup");
    auto done = alreadyRecovered(env, b);
    if (!done) return done.error();
    if (*done) return Status::ok();
    auto a = env.agent(b);
    if (!a) return a.error();
    auto ls = a->logShippingStatus();
    if (!ls) return ls.error();
    return check(b, *ls);
  };
}

void recordShare(StepContext& ctx, const sqlagent::LogShippingStatus& ls) {
  if (!ls.last_backed_up.empty()) {
    ctx.facts["share_last_log"] = ls.last_backed_up;
    ctx.facts["share_last_log_time"] = ls.last_backed_up_time;
  }
  if (!ls.last_restored_time.empty()) ctx.facts["last_restored_time"] = ls.last_restored_time;
}

}  // namespace

// ---- The steps -------------------------------------------------------------------------------

namespace {

Step removeLogShipping(Env& env) {
  Step s;
  s.name = "remove log shipping on the backup store";
  s.timeout = 30s;
  s.precondition = [&env](const StepContext& ctx) -> Status {
    auto st = env.agentStatus(fact(ctx, "backup"));
    if (!st) return failedPrecondition(st.error().message());
    if (st->role != "BackupRestoring" && !isWritableRole(st->role)) {
      return failedPrecondition("backup store `" + fact(ctx, "backup") + "` is " + st->role +
                                ", not a restoring log-shipping standby; check it with "
                                "`tandemctl db log-shipping status --store " + fact(ctx, "backup") + "`");
    }
    return Status::ok();
  };
  s.plan = [&env](const StepContext& ctx) {
    auto a = env.agent(fact(ctx, "backup"));
    auto ls = a ? a->logShippingStatus() : Result<sqlagent::LogShippingStatus>(fail(a.error()));
    if (!ls) return "stop the copy and restore jobs of `" + fact(ctx, "backup") + "`";
    return "stop the copy and restore jobs of `" + fact(ctx, "backup") + "` (copy job " +
           (ls->copy_job ? "running" : "stopped") + ", restore job " +
           (ls->restore_job ? "running" : "stopped") + "; newest log on the share " +
           (ls->last_backed_up.empty() ? "none" : ls->last_backed_up + " at " + ls->last_backed_up_time) + ")";
  };
  s.action = unlessRecovered(
      env, "; log shipping was removed before",
      [](StepContext& ctx, const std::string& b, sqlagent::Client& a) -> Result<std::string> {
        auto ls = a.logShippingStatus();
        if (!ls) return fail(ls.error());
        recordShare(ctx, *ls);
        if (!ls->copy_job && !ls->restore_job) {
          return "log shipping was already removed from backup store `" + b +
                 "` (it stays restoring)";
        }
        auto r = a.removeLogShipping();
        if (!r) return fail(r.error());
        return "removed log shipping from backup store `" + b +
               "` (copy and restore jobs stopped; the store stays restoring)";
      });
  s.verify = verifyShippingUnlessRecovered(
      env, [](const std::string& b, const sqlagent::LogShippingStatus& ls) -> Status {
        if (ls.copy_job || ls.restore_job) {
          return internalError("backup store `" + b + "` still reports its " +
                               (ls.copy_job ? "copy" : "restore") + " job running");
        }
        return Status::ok();
      });
  return s;
}

Step copyLogBackups(Env& env) {
  Step s;
  s.name = "copy every log backup on the share not yet in the copy folder";
  s.timeout = 60s;
  s.plan = [](const StepContext& ctx) {
    return "copy the log backups on the share newer than the copy folder's newest to `" +
           fact(ctx, "backup") + "`";
  };
  s.action = unlessRecovered(
      env, "; nothing left to copy",
      [](StepContext& ctx, const std::string& b, sqlagent::Client& a) -> Result<std::string> {
        auto r = a.copyNow();
        if (!r) return fail(r.error());
        auto ls = a.logShippingStatus();
        if (!ls) return fail(ls.error());
        recordShare(ctx, *ls);
        ctx.facts["copied"] = ctx.facts.value("copied", 0) + r->copied;
        return "copied " + std::to_string(r->copied) + " log backup" + (r->copied == 1 ? "" : "s") +
               " to the copy folder of `" + b + "` (newest on the share " +
               (ls->last_backed_up.empty()
                    ? "none"
                    : ls->last_backed_up + ", archived " + ls->last_backed_up_time) +
               ")";
      });
  s.verify = verifyShippingUnlessRecovered(
      env, [](const std::string& b, const sqlagent::LogShippingStatus& ls) -> Status {
        if (!ls.last_backed_up.empty() && ls.last_copied < ls.last_backed_up) {
          return internalError("the copy folder of `" + b + "` ends at " + ls.last_copied +
                               " but the share holds " + ls.last_backed_up);
        }
        return Status::ok();
      });
  return s;
}

Step applyUnappliedLogBackups(Env& env) {
  Step s;
  s.name = "apply every unapplied log backup in sequence";
  s.timeout = 120s;
  s.plan = [](const StepContext& ctx) {
    return "replay every copied log backup on `" + fact(ctx, "backup") + "` in order";
  };
  s.action = unlessRecovered(
      env, "; nothing left to apply",
      [](StepContext& ctx, const std::string& b, sqlagent::Client& a) -> Result<std::string> {
        auto r = a.applyAll();
        if (!r) return fail(r.error());
        ctx.facts["last_applied"] = r->last_applied;
        if (!r->last_commit_time.empty()) ctx.facts["last_commit_replayed"] = r->last_commit_time;
        return "applied every copied log backup to `" + b + "` up to " +
               (r->last_applied.empty() ? "the newest" : r->last_applied) +
               " (last commit replayed " +
               (r->last_commit_time.empty() ? "unknown" : r->last_commit_time) + ")";
      });
  s.verify = [&env](const StepContext& ctx) -> Status {
    const std::string b = fact(ctx, "backup");
    auto st = env.agentStatus(b);
    if (!st) return st.error();
    if (!st->pg_up) return internalError("PostgreSQL of backup store `" + b + "` is not up");
    return Status::ok();
  };
  return s;
}

Step endConnections(Env& env) {
  Step s;
  s.name = "end all connections to the backup store";
  s.timeout = 20s;
  s.plan = [&env](const StepContext& ctx) {
    auto a = env.agent(fact(ctx, "backup"));
    auto c = a ? a->connections() : Result<std::vector<sqlagent::ConnectionInfo>>(fail(a.error()));
    return "end the " + (c ? std::to_string(c->size()) : std::string("open")) +
           " client connections to `" + fact(ctx, "backup") + "`";
  };
  s.action = unlessRecovered(
      env, "; its connections were left alone",
      [](StepContext&, const std::string& b, sqlagent::Client& a) -> Result<std::string> {
        auto n = a.endConnections(true);
        if (!n) return fail(n.error());
        return "ended " + std::to_string(*n) + " connection" + (*n == 1 ? "" : "s") +
               " to backup store `" + b + "`";
      });
  return s;
}

Step recoverBackupStore(Env& env) {
  Step s;
  s.name = "recover the backup store (online, writable)";
  s.timeout = 60s;
  s.plan = [](const StepContext& ctx) {
    auto answering = stringList(ctx.facts.value("primary_answering", nlohmann::json::array()));
    return std::string(answering.empty() ? "" : "fence " + joinNames(answering) + " (still answering), then ") +
           "bring `" + fact(ctx, "backup") + "` online as a writable principal";
  };
  s.action = unlessRecovered(
      env, " (writable)",
      [&env](StepContext& ctx, const std::string& b, sqlagent::Client& a) -> Result<std::string> {
        // Fence first: an old primary that still answers (--force) must not accept commits.
        std::string fenced;
        for (const std::string& old : {fact(ctx, "primary"), fact(ctx, "primary_mirror")}) {
          if (old.empty() || !env.probeAgent(old).isOk()) continue;
          auto f = callAgent(
              env, old, [](sqlagent::Client& o) { return o.fence(); },
              "fencing old store `" + old + "`");
          if (!f) return f;
          fenced += (fenced.empty() ? "" : ", ") + old;
        }
        auto r = a.recover();
        if (!r) return fail(r.error());
        if (!ctx.facts.contains("last_commit_replayed") &&
            ctx.facts.contains("last_restored_time")) {
          ctx.facts["last_commit_replayed"] = ctx.facts["last_restored_time"];
        }
        ctx.facts["recovered_at"] = formatUtc(realClock().wallNow());
        return "recovered backup store `" + b + "` (writable; last commit replayed " +
               (fact(ctx, "last_commit_replayed").empty() ? "unknown"
                                                          : fact(ctx, "last_commit_replayed")) +
               ")" + (fenced.empty() ? "" : "; fenced " + fenced + " first");
      });
  s.verify = [&env](const StepContext& ctx) -> Status {
    const std::string b = fact(ctx, "backup");
    return pollUntil(ctx, [&]() -> Status {
      auto st = env.agentStatus(b);
      if (!st) return st.error();
      if (!isWritableRole(st->role) || st->in_recovery || !st->pg_up) {
        return internalError("backup store `" + b + "` reports role " + st->role +
                             (st->in_recovery ? " (still in recovery)" : ""));
      }
      return Status::ok();
    });
  };
  return s;
}

Step setPoolStateFailedOver(Env& env, const std::string& pool) {
  Step s;
  s.name = "set the chat pool state to FailedOver";
  s.timeout = 20s;
  s.plan = [pool](const StepContext& ctx) {
    return "set `" + pool + "` state FailedOver (chat servers use `" + fact(ctx, "backup") +
           "`) and front-end pool `" + fact(ctx, "frontend_pool") + "`";
  };
  s.action = [&env, pool](StepContext& ctx) -> Result<std::string> {
    const std::string fe = fact(ctx, "frontend_pool");
    auto state = env.setting(chatStateKey(pool));
    if (!state) return fail(state.error());
    auto cur_fe = env.setting(chatFrontendPoolKey(pool));
    if (!cur_fe) return fail(cur_fe.error());
    if (*state == "FailedOver" && *cur_fe == fe) {
      return "chat pool `" + pool + "` was already FailedOver (front-end pool `" + fe + "`)";
    }
    Status st = env.setSettings({{chatStateKey(pool), "FailedOver"}, {chatFrontendPoolKey(pool), fe}});
    if (!st.isOk()) return fail(st);
    return "set chat pool `" + pool + "` state to FailedOver: its chat servers now use `" +
           fact(ctx, "backup") + "` and attach to front-end pool `" + fe + "`";
  };
  s.verify = [&env, pool](const StepContext& ctx) -> Status {
    auto state = env.setting(chatStateKey(pool));
    if (!state) return state.error();
    auto fe = env.setting(chatFrontendPoolKey(pool));
    if (!fe) return fe.error();
    if (*state != "FailedOver" || *fe != fact(ctx, "frontend_pool")) {
      return internalError("the CMS holds state " + state->dump() + " and front-end pool " +
                           fe->dump() + " for `" + pool + "`");
    }
    return Status::ok();
  };
  return s;
}

Step installBackupMirror(Env& env) {
  Step s;
  s.name = "install the backup mirror for the new primary";
  s.timeout = 180s;
  s.precondition = [&env](const StepContext& ctx) -> Status {
    const std::string m = fact(ctx, "backup_mirror");
    if (m.empty() || ctx.what_if) return Status::ok();
    if (Status st = env.probeAgent(m); !st.isOk()) {
      return failedPrecondition(st.message() + "; start it (`tandemctl deploy status`), then "
                                "continue with --resume");
    }
    return Status::ok();
  };
  s.plan = [](const StepContext& ctx) {
    const std::string m = fact(ctx, "backup_mirror");
    return m.empty() ? "nothing: the topology names no backup_mirror; `" + fact(ctx, "backup") + "` serves alone"
                     : "make `" + m + "` the synchronous mirror of `" + fact(ctx, "backup") + "`";
  };
  s.action = [&env](StepContext& ctx) -> Result<std::string> {
    const std::string b = fact(ctx, "backup"), m = fact(ctx, "backup_mirror");
    if (m.empty()) return "the topology names no backup mirror: `" + b + "` serves alone";
    if (internal::pairSynchronized(env, b, m).isOk()) {
      return "`" + m + "` was already the synchronized mirror of `" + b + "`";
    }
    auto r = callAgent(env, b, [&m](sqlagent::Client& a) { return a.installMirror(m); });
    if (!r) return r;
    return "installed `" + m + "` as the synchronous mirror of `" + b + "` (SYNCHRONIZED)";
  };
  s.verify = [&env](const StepContext& ctx) -> Status {
    const std::string b = fact(ctx, "backup"), m = fact(ctx, "backup_mirror");
    if (m.empty()) return Status::ok();
    return pollUntil(ctx, [&] { return internal::pairSynchronized(env, b, m); });
  };
  return s;
}

Step setActiveServers(Env& env, const std::string& pool) {
  return setActiveServersStep(env, pool, "backup_site");
}

// The report: the data-loss bound and, with acknowledged ids, the count of messages lost.
nlohmann::json failoverSummary(Env& env, const ChatFailoverOptions& o, const StepContext& ctx) {
  nlohmann::json r;
  r["share_last_log"] = fact(ctx, "share_last_log");
  r["share_last_log_time"] = fact(ctx, "share_last_log_time");
  r["last_commit_replayed"] = fact(ctx, "last_commit_replayed");
  r["primary_last_ack"] = nullptr;  // the primary is gone: its last acknowledged commit is unknown
  r["interval_s"] = ctx.facts.value("interval_s", 5);
  r["frontend_pool"] = fact(ctx, "frontend_pool");
  r["active_servers"] = ctx.facts.value("active_servers", nlohmann::json::array());
  r["mgccomp"] = kMgccompNote;
  std::vector<std::string> lines;
  if (ctx.what_if) {
    lines.push_back("data-loss bound: known once the log backups are applied (step 3); log "
                    "backups reach the share every " + std::to_string(r["interval_s"].get<int>()) + " s");
    lines.push_back(kMgccompNote);
    r["lines"] = lines;
    return r;
  }
  lines.push_back("data-loss bound: commits after " +
                  (r["last_commit_replayed"] == "" ? std::string("the last replayed commit (unknown)")
                                                    : fact(ctx, "last_commit_replayed")) +
                  " are lost; the last log backup that reached the share was " +
                  (r["share_last_log"] == "" ? std::string("unknown")
                                              : fact(ctx, "share_last_log") + " at " +
                                                    fact(ctx, "share_last_log_time")) +
                  "; the primary's last acknowledged commit is unknown (the primary is "
                  "unreachable): with log backups every " +
                  std::to_string(r["interval_s"].get<int>()) + " s that is at most the last " +
                  std::to_string(r["interval_s"].get<int>()) + " s before the outage");
  if (!o.acknowledged_ids_file.empty() && !ctx.what_if) {
    auto ids = internal::readIds(o.acknowledged_ids_file);
    auto backup = env.store(fact(ctx, "backup"));
    if (ids && backup) {
      std::vector<std::string> addrs = {(*backup)->address};
      auto count = internal::countMessages(env, addrs, *ids);
      if (count) {
        long lost = static_cast<long>(ids->size()) - count->present;
        r["acknowledged"] = ids->size();
        r["messages_lost"] = lost;
        r["newest_message_recovered"] = count->newest_ts;
        lines.push_back("messages lost: " + std::to_string(lost) + " of " +
                        std::to_string(ids->size()) + " acknowledged (newest recovered message " +
                        count->newest_ts + ")");
      } else {
        r["messages_lost_error"] = count.error().message();
      }
    } else {
      r["messages_lost_error"] = ids ? backup.error().message() : ids.error().message();
    }
  }
  lines.push_back(kMgccompNote);
  r["lines"] = lines;
  return r;
}

}  // namespace

Runbook chatFailoverRunbook(Env& env, const ChatFailoverOptions& o) {
  Runbook rb;
  rb.name = "chat-failover";
  rb.subject = o.pool;
  rb.command = "tandemctl chat failover --pool " + o.pool +
               (o.frontend_pool.empty() ? "" : " --frontend-pool " + o.frontend_pool) +
               (o.force ? " --force" : "") + " --yes";
  rb.gate = [&env, o](StepContext& ctx) { return failoverGate(env, o, ctx); };
  rb.steps = {removeLogShipping(env),      copyLogBackups(env),
              applyUnappliedLogBackups(env), endConnections(env),
              recoverBackupStore(env),     setPoolStateFailedOver(env, o.pool),
              installBackupMirror(env),    setActiveServers(env, o.pool)};
  rb.summarize = [&env, o](const StepContext& ctx) { return failoverSummary(env, o, ctx); };
  return rb;
}

}  // namespace tandem::hadr
