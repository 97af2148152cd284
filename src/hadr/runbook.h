// The runbook runner (STYLE.md §8): what every failover/failback procedure needs, in one place.
//
// A runbook is an ordered list of named steps. Each step has a precondition (checks the live
// state; refuses with one sentence naming what to run first), an idempotent action (notices work
// already done, returns an outcome sentence in the past tense) and a verification (checks the
// effect from outside). The runner:
//  - checks the runbook's gate and each step's precondition before the step runs;
//  - `what_if`: runs the gate and the preconditions only and prints each step's plan;
//  - journals the run before and after each step (JournalStore: the CMS, or a local file);
//  - bounds each step by its timeout and times it; prints `[3/7] <step> … <outcome> (2.1 s)`;
//  - `resume`: continues a run that died or stopped, from the first step not done;
//  - on failure stops, and reports the step, the state left behind and the command to resume.
// One Runner runs one runbook at a time on the calling thread; actions run on a helper thread
// only so that a step that overruns its timeout can be abandoned.
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "hadr/journal.h"

namespace tandem::hadr {

// What a step sees. `facts` is shared by all steps of a run and kept in the journal, so a resumed
// run sees what earlier steps learned (e.g. the last log backup applied, for the RPO report).
struct StepContext {
  nlohmann::json facts = nlohmann::json::object();
  bool what_if = false;  // preconditions run in a --what-if plan: assume earlier steps succeed
  bool resuming = false;
  std::chrono::steady_clock::time_point deadline;  // the step's timeout; bound every wait by it
  // Time left before the deadline (zero when past it).
  std::chrono::milliseconds timeLeft() const;
};

struct Step {
  // Imperative, in the runbook's words: "remove log shipping on the backup store".
  std::string name;
  // Null: none. Refuses with FailedPrecondition and one sentence that says what to run first.
  std::function<Status(const StepContext&)> precondition;
  // Required. Idempotent: does nothing (and says "already ...") when the work is done. Returns the
  // outcome sentence in the past tense.
  std::function<Result<std::string>(StepContext&)> action;
  // Null: none. Checks the effect from outside (what the store reports, what the CMS holds).
  std::function<Status(const StepContext&)> verify;
  // Null: the plan is the step name. What the step would do against the live state (--what-if).
  std::function<std::string(const StepContext&)> plan;
  // Bound on action + verification. Default 60 s.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

struct Runbook {
  std::string name;     // "chat-failover": journal key and report name
  std::string subject;  // what it acts on, e.g. the chat pool "chat.example.test"
  // The command that runs it, without --resume/--what-if (for hints), e.g.
  // "tandemctl chat failover --pool chat.example.test".
  std::string command;
  // Null: none. The runbook-wide gate, checked before any step on every run (including resumes
  // and --what-if): must hold for the whole run (e.g. "the primary store is unreachable").
  std::function<Status(StepContext&)> gate;
  std::vector<Step> steps;
  // Null: none. Called once after the last step (and for --what-if) to add runbook-specific
  // figures to the report, e.g. the data-loss bound; the result goes under "report" in the JSON.
  std::function<nlohmann::json(const StepContext&)> summarize;
  // Null: none. Facts a fresh run starts with (e.g. options given on the command line).
  nlohmann::json initial_facts = nlohmann::json::object();
};

struct RunOptions {
  bool what_if = false;
  bool resume = false;
  // Where progress lines go (stderr in tandemctl). Null: nowhere.
  std::ostream* progress = nullptr;
  // Called after step N (1-based) is journaled done. tandemctl wires
  // TANDEM_RUNBOOK_DIE_AFTER_STEP=N to kill -9 itself here; tests throw to simulate a death.
  std::function<void(int step)> after_step;
};

enum class RunOutcome {
  kDone,            // every step done (exit 0)
  kPlanned,         // --what-if: nothing changed (exit 0)
  kNothingToResume, // --resume of a run that had completed: nothing changed (exit 0)
  kRefused,         // a precondition refused before anything changed (exit 3)
  kFailed,          // the first step of a fresh run failed (exit 1)
  kStoppedPartWay,  // a later step failed or refused; resumable (exit 4)
};
const char* runOutcomeName(RunOutcome outcome);

struct StepReport {
  int number = 0;  // 1-based
  std::string name;
  std::string state;  // "pending" | "running" | "done" | "failed" | "refused" | "planned"
  std::string outcome;  // outcome sentence, plan, or the error sentence
  double duration_s = 0;
  std::string started_at;  // UTC ISO-8601, empty when not run
  std::string ended_at;
};

struct RunReport {
  std::string runbook;
  std::string subject;
  std::string run_id;
  RunOutcome outcome = RunOutcome::kDone;
  Status status;         // why it refused/failed/stopped (OK otherwise)
  int stopped_at = 0;    // 1-based step that failed or refused (0: none)
  std::string state_left;       // one sentence: what is done and what is not
  std::string next_command;     // the exact command to run next (resume, or what to run first)
  std::string journal;          // where the journal is kept
  std::string started_at;
  double total_s = 0;           // this invocation's time plus earlier invocations' (resumed)
  std::vector<StepReport> steps;
  nlohmann::json facts = nlohmann::json::object();
  nlohmann::json summary = nlohmann::json::object();  // Runbook::summarize

  int exitCode() const;
  // The `--json` document (schema in docs/runbooks/README.md).
  nlohmann::json toJson() const;
  // The human summary printed at the end (steps with times, then the summary lines).
  std::string render() const;
};

class Runner {
 public:
  explicit Runner(JournalStore& journal, Clock& clock = realClock())
      : journal_(journal), clock_(clock) {}
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runs (or plans, or resumes) `runbook`. Never throws (except what options.after_step throws).
  // A journal that cannot be written stops the run before the step it could not record.
  RunReport run(const Runbook& runbook, const RunOptions& options);

  // The journal key of a runbook: "<name>/<subject>".
  static std::string journalKey(const Runbook& runbook);

 private:
  JournalStore& journal_;
  Clock& clock_;
};

}  // namespace tandem::hadr
