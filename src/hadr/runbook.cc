// The runbook runner: gate, preconditions, journaled and timed steps, resume, report.
//
// Journal document (one per runbook and subject):
//   {"runbook", "subject", "run_id", "state": "running"|"stopped"|"done", "seq",
//    "started_at", "ended_at", "elapsed_s", "steps": [{"name", "state", "outcome",
//    "started_at", "ended_at", "duration_s"}], "facts": {...}}
// `seq` grows with every save, across runs, so the newer of two copies always wins.
#include "hadr/runbook.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <sstream>
#include <thread>

namespace tandem::hadr {

std::chrono::milliseconds StepContext::timeLeft() const {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

const char* runOutcomeName(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kDone: return "done";
    case RunOutcome::kPlanned: return "planned";
    case RunOutcome::kNothingToResume: return "nothing-to-resume";
    case RunOutcome::kRefused: return "refused";
    case RunOutcome::kFailed: return "failed";
    case RunOutcome::kStoppedPartWay: return "stopped";
  }
  return "failed";
}

int RunReport::exitCode() const {
  switch (outcome) {
    case RunOutcome::kDone:
    case RunOutcome::kPlanned:
    case RunOutcome::kNothingToResume: return 0;
    case RunOutcome::kRefused: return 3;
    case RunOutcome::kFailed: return 1;
    case RunOutcome::kStoppedPartWay: return 4;
  }
  return 1;
}

std::string Runner::journalKey(const Runbook& runbook) {
  return runbook.name + "/" + runbook.subject;
}

namespace {

double secondsBetween(std::chrono::steady_clock::time_point a,
                      std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string fmtSeconds(double s) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(1);
  o << s << " s";
  return o.str();
}

std::string newRunId(Clock& clock) {
  std::random_device rd;
  std::ostringstream o;
  o << formatUtc(clock.wallNow()) << "-" << std::hex << (rd() & 0xffff);
  return o.str();
}

// Runs action then verification on a helper thread, bounded by the step's timeout. On timeout
// the helper is abandoned (it owns copies of everything it touches).
struct StepRun {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  Result<std::string> outcome = std::string();
  StepContext ctx;
  Step step;
};

Result<std::string> runBounded(const Step& step, StepContext& ctx) {
  auto shared = std::make_shared<StepRun>();
  shared->ctx = ctx;
  shared->step = step;
  std::thread([shared] {
    Result<std::string> r = shared->step.action(shared->ctx);
    if (r && shared->step.verify) {
      Status v = shared->step.verify(shared->ctx);
      if (!v.isOk()) r = fail(v.withContext("verification after the action"));
    }
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->outcome = std::move(r);
    shared->finished = true;
    shared->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(shared->mu);
  if (!shared->cv.wait_until(lock, ctx.deadline, [&] { return shared->finished; })) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(step.timeout).count();
    return fail(timeoutError("step `" + step.name + "` did not finish within its timeout of " +
                             fmtSeconds(ms / 1000.0)));
  }
  ctx.facts = shared->ctx.facts;
  return shared->outcome;
}

nlohmann::json stepJson(const StepReport& s) {
  return {{"number", s.number},       {"name", s.name},         {"state", s.state},
          {"outcome", s.outcome},     {"duration_s", s.duration_s},
          {"started_at", s.started_at}, {"ended_at", s.ended_at}};
}

StepReport stepFromJson(const nlohmann::json& j, int number) {
  StepReport s;
  s.number = number;
  s.name = j.value("name", "");
  s.state = j.value("state", "pending");
  s.outcome = j.value("outcome", "");
  s.duration_s = j.value("duration_s", 0.0);
  s.started_at = j.value("started_at", "");
  s.ended_at = j.value("ended_at", "");
  return s;
}

}  // namespace

nlohmann::json RunReport::toJson() const {
  nlohmann::json steps_json = nlohmann::json::array();
  for (const auto& s : steps) steps_json.push_back(stepJson(s));
  nlohmann::json doc = {{"runbook", runbook},
                        {"subject", subject},
                        {"run_id", run_id},
                        {"outcome", runOutcomeName(outcome)},
                        {"exit_code", exitCode()},
                        {"started_at", started_at},
                        {"total_s", total_s},
                        {"steps", steps_json},
                        {"journal", journal},
                        {"report", summary}};
  if (!status.isOk()) {
    doc["error"] = {{"code", std::string(statusCodeName(status.code()))},
                    {"message", status.message()}};
  }
  if (stopped_at > 0) doc["stopped_at_step"] = stopped_at;
  if (!state_left.empty()) doc["state_left"] = state_left;
  if (!next_command.empty()) doc["next_command"] = next_command;
  return doc;
}

std::string RunReport::render() const {
  std::ostringstream o;
  o << runbook << " of " << subject << ": " << runOutcomeName(outcome);
  if (outcome != RunOutcome::kPlanned) o << " in " << fmtSeconds(total_s);
  o << "\n";
  bool touched = outcome != RunOutcome::kRefused;
  for (const auto& s : steps) touched |= s.state != "pending";
  for (const auto& s : steps) {
    if (!touched) break;  // refused by the gate: the error says it all
    o << "  " << s.number << ". " << s.name << ": " << s.state;
    if (s.state == "done" || s.state == "failed") o << " (" << fmtSeconds(s.duration_s) << ")";
    if (!s.outcome.empty()) o << " - " << s.outcome;
    o << "\n";
  }
  if (summary.is_object()) {
    for (const auto& [k, v] : summary.items()) {
      if (k == "lines" && v.is_array()) {
        for (const auto& line : v) o << line.get<std::string>() << "\n";
      }
    }
  }
  if (!state_left.empty()) o << "state left behind: " << state_left << "\n";
  if (!next_command.empty()) o << "next: " << next_command << "\n";
  return o.str();
}

// ---- Runner ------------------------------------------------------------------------------------

RunReport Runner::run(const Runbook& rb, const RunOptions& options) {
  const std::string key = journalKey(rb);
  const int n = static_cast<int>(rb.steps.size());
  auto say = [&](const std::string& text) {
    if (options.progress) *options.progress << text << std::flush;
  };
  auto started = clock_.now();
  RunReport report;
  report.runbook = rb.name;
  report.subject = rb.subject;
  report.started_at = formatUtc(clock_.wallNow());
  for (int i = 0; i < n; ++i) report.steps.push_back({i + 1, rb.steps[i].name, "pending", "", 0, "", ""});

  auto finish = [&](RunOutcome outcome, Status st) {
    report.outcome = outcome;
    report.status = std::move(st);
    report.journal = journal_.where(key);
    return report;
  };

  // ---- The journal: a previous run decides whether this is a fresh run, a resume or a refusal.
  auto loaded = journal_.load(key);
  if (!loaded) {
    return finish(RunOutcome::kFailed, loaded.error().withContext("reading the runbook journal"));
  }
  std::optional<nlohmann::json> previous = *loaded;
  bool unfinished = previous && previous->value("state", "") != "done";
  StepContext ctx;
  ctx.what_if = options.what_if;
  nlohmann::json doc;
  if (options.resume) {
    if (!previous) {
      report.next_command = rb.command;
      return finish(RunOutcome::kRefused,
                    failedPrecondition("there is no " + rb.name + " run of `" + rb.subject +
                                       "` to resume; start one with `" + rb.command + "`"));
    }
    const auto& steps = (*previous)["steps"];
    if (!steps.is_array() || static_cast<int>(steps.size()) != n) {
      return finish(RunOutcome::kRefused,
                    failedPrecondition("the journal of " + rb.name + " `" + rb.subject +
                                       "` does not match this version's steps; rerun it without "
                                       "--resume (every step is idempotent)"));
    }
    doc = *previous;
    for (int i = 0; i < n; ++i) {
      report.steps[i] = stepFromJson(steps[i], i + 1);
      report.steps[i].name = rb.steps[i].name;
    }
    report.run_id = doc.value("run_id", "");
    ctx.facts = doc.value("facts", nlohmann::json::object());
    ctx.resuming = true;
    if (!unfinished) {
      report.facts = ctx.facts;
      report.total_s = doc.value("elapsed_s", 0.0);
      if (rb.summarize) report.summary = rb.summarize(ctx);
      say(rb.name + " of " + rb.subject + ": run " + report.run_id +
          " completed at " + doc.value("ended_at", "?") + "; nothing to resume\n");
      return finish(RunOutcome::kNothingToResume, Status::ok());
    }
  } else if (unfinished && !options.what_if) {
    int at = 0;
    const auto& steps = (*previous)["steps"];
    for (size_t i = 0; steps.is_array() && i < steps.size(); ++i) {
      if (steps[i].value("state", "") != "done") { at = static_cast<int>(i) + 1; break; }
    }
    report.stopped_at = at;
    report.next_command = rb.command + " --resume";
    return finish(RunOutcome::kRefused,
                  failedPrecondition("a " + rb.name + " run of `" + rb.subject + "` (" +
                                     previous->value("run_id", "?") + ") stopped at step " +
                                     std::to_string(at) + "; continue it with `" +
                                     report.next_command + "`"));
  } else {
    report.run_id = newRunId(clock_);
    ctx.facts = rb.initial_facts.is_object() ? rb.initial_facts : nlohmann::json::object();
    doc = {{"runbook", rb.name}, {"subject", rb.subject}, {"run_id", report.run_id},
           {"state", "running"}, {"seq", previous ? previous->value("seq", 0L) : 0L},
           {"started_at", report.started_at}, {"elapsed_s", 0.0}};
  }
  const double earlier_s = doc.value("elapsed_s", 0.0);

  auto save = [&](const std::string& state) -> Status {
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& s : report.steps) steps.push_back(stepJson(s));
    doc["steps"] = steps;
    doc["facts"] = ctx.facts;
    doc["state"] = state;
    doc["seq"] = doc.value("seq", 0L) + 1;
    doc["elapsed_s"] = earlier_s + secondsBetween(started, clock_.now());
    if (state == "done") doc["ended_at"] = formatUtc(clock_.wallNow());
    Status st = journal_.save(key, doc);
    return st.isOk() ? st : st.withContext("recording progress in the journal at " + journal_.where(key));
  };
  auto stateLeft = [&](int failed_index) {
    std::ostringstream o;
    int done = 0;
    for (const auto& s : report.steps) done += s.state == "done";
    o << done << " of " << n << " steps done";
    if (failed_index >= 0) {
      o << "; step " << failed_index + 1 << " (" << rb.steps[failed_index].name << ") "
        << (report.steps[failed_index].state == "refused" ? "refused, not started"
                                                          : "did not complete");
    }
    return o.str();
  };
  auto anyDone = [&] {
    for (const auto& s : report.steps) if (s.state == "done") return true;
    return false;
  };

  // ---- The gate.
  if (rb.gate) {
    Status gate = rb.gate(ctx);
    if (!gate.isOk()) {
      bool part_way = options.resume && anyDone();
      if (part_way) {
        report.state_left = stateLeft(-1);
        report.next_command = rb.command + " --resume";
      }
      report.facts = ctx.facts;
      return finish(part_way ? RunOutcome::kStoppedPartWay : RunOutcome::kRefused, gate);
    }
  }

  // ---- --what-if: preconditions and plans only.
  if (options.what_if) {
    Status first_refusal;
    for (int i = 0; i < n; ++i) {
      const Step& step = rb.steps[i];
      auto& sr = report.steps[i];
      if (sr.state == "done") {
        say("[" + std::to_string(i + 1) + "/" + std::to_string(n) + "] " + step.name +
            " … already done: " + sr.outcome + "\n");
        continue;
      }
      ctx.deadline = clock_.now() + step.timeout;
      Status pre = step.precondition ? step.precondition(ctx) : Status::ok();
      if (!pre.isOk()) {
        sr.state = "refused";
        sr.outcome = pre.message();
        if (first_refusal.isOk()) {
          first_refusal = pre;
          report.stopped_at = i + 1;
        }
      } else {
        sr.state = "planned";
        sr.outcome = step.plan ? step.plan(ctx) : step.name;
      }
      say("[" + std::to_string(i + 1) + "/" + std::to_string(n) + "] " + step.name + " … " +
          (pre.isOk() ? "would " : "refused: ") + sr.outcome + "\n");
    }
    report.facts = ctx.facts;
    if (rb.summarize) report.summary = rb.summarize(ctx);
    return finish(first_refusal.isOk() ? RunOutcome::kPlanned : RunOutcome::kRefused,
                  first_refusal);
  }

  // ---- The run.
  for (int i = 0; i < n; ++i) {
    const Step& step = rb.steps[i];
    auto& sr = report.steps[i];
    const std::string tag = "[" + std::to_string(i + 1) + "/" + std::to_string(n) + "] ";
    if (sr.state == "done") {
      say(tag + step.name + " … done before: " + sr.outcome + "\n");
      continue;
    }
    ctx.deadline = clock_.now() + step.timeout;
    say(tag + step.name + " … ");
    Status pre = step.precondition ? step.precondition(ctx) : Status::ok();
    if (!pre.isOk()) {
      say("refused\n");
      sr.state = "refused";
      sr.outcome = pre.message();
      report.stopped_at = i + 1;
      report.facts = ctx.facts;
      if (!anyDone()) {
        // Nothing changed; a fresh run leaves no journal behind (a resume keeps its own).
        report.next_command.clear();
        return finish(RunOutcome::kRefused, pre);
      }
      report.state_left = stateLeft(i);
      report.next_command = rb.command + " --resume";
      (void)save("stopped");
      return finish(RunOutcome::kStoppedPartWay, pre);
    }
    sr.state = "running";
    sr.started_at = formatUtc(clock_.wallNow());
    Status journaled = save("running");
    if (!journaled.isOk()) {
      say("not started\n");
      sr.state = "pending";
      report.stopped_at = i + 1;
      report.state_left = stateLeft(-1);
      report.next_command = anyDone() ? rb.command + " --resume" : rb.command;
      return finish(anyDone() ? RunOutcome::kStoppedPartWay : RunOutcome::kFailed, journaled);
    }
    auto t0 = clock_.now();
    Result<std::string> outcome = runBounded(step, ctx);
    sr.duration_s = secondsBetween(t0, clock_.now());
    sr.ended_at = formatUtc(clock_.wallNow());
    if (!outcome) {
      say("failed (" + fmtSeconds(sr.duration_s) + ")\n");
      sr.state = "failed";
      sr.outcome = outcome.error().message();
      report.stopped_at = i + 1;
      report.facts = ctx.facts;
      bool first_of_fresh = !options.resume && !anyDone() && i == 0;
      report.state_left = stateLeft(i);
      report.next_command = rb.command + " --resume";
      (void)save("stopped");
      report.total_s = earlier_s + secondsBetween(started, clock_.now());
      return finish(first_of_fresh ? RunOutcome::kFailed : RunOutcome::kStoppedPartWay,
                    outcome.error().withContext("step " + std::to_string(i + 1) + " (" +
                                                step.name + ")"));
    }
    sr.state = "done";
    sr.outcome = *outcome;
    say(*outcome + " (" + fmtSeconds(sr.duration_s) + ")\n");
    Status recorded = save(i + 1 == n ? "done" : "running");
    if (!recorded.isOk()) {
      report.stopped_at = i + 1;
      report.state_left = stateLeft(-1) + " (step " + std::to_string(i + 1) +
                          " is done but could not be recorded)";
      report.next_command = rb.command + " --resume";
      report.facts = ctx.facts;
      return finish(RunOutcome::kStoppedPartWay, recorded);
    }
    if (options.after_step) options.after_step(i + 1);
  }
  report.total_s = earlier_s + secondsBetween(started, clock_.now());
  report.facts = ctx.facts;
  if (rb.summarize) report.summary = rb.summarize(ctx);
  return finish(RunOutcome::kDone, Status::ok());
}

}  // namespace tandem::hadr
