// The runbook runner with fake steps: refusal, resume after a death, idempotent rerun, timeout,
// what-if, local journal fallback and reconciliation.
#include "hadr/runbook.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

namespace tandem::hadr {
namespace {

using namespace std::chrono_literals;

// An in-memory key/value service that can be switched off, standing in for the CMS.
struct FakeCms {
  std::map<std::string, nlohmann::json> values;
  bool up = true;
  std::unique_ptr<JournalStore> store() {
    return std::make_unique<FunctionJournalStore>(
        "the CMS",
        [this](const std::string& k) -> Result<std::optional<nlohmann::json>> {
          if (!up) return fail(unavailable("cannot reach the CMS"));
          auto it = values.find(k);
          if (it == values.end()) return std::optional<nlohmann::json>{};
          return std::optional<nlohmann::json>(it->second);
        },
        [this](const std::string& k, const nlohmann::json& v) -> Status {
          if (!up) return unavailable("cannot reach the CMS");
          if (v.is_null()) values.erase(k); else values[k] = v;
          return Status::ok();
        });
  }
};

// A world the fake steps act on: each step sets a flag; actions are idempotent.
struct World {
  std::map<std::string, bool> done;
  std::map<std::string, int> actions;  // how many times an action changed something
};

Step flagStep(World& w, const std::string& name) {
  Step s;
  s.name = name;
  s.action = [&w, name](StepContext& ctx) -> Result<std::string> {
    if (w.done[name]) return "already " + name;
    w.done[name] = true;
    w.actions[name]++;
    ctx.facts["last"] = name;
    return "did " + name;
  };
  s.verify = [&w, name](const StepContext&) {
    return w.done[name] ? Status::ok() : internalError(name + " is not done");
  };
  s.plan = [name](const StepContext&) { return name; };
  return s;
}

Runbook threeSteps(World& w) {
  Runbook rb;
  rb.name = "fake-failover";
  rb.subject = "chat.example.test";
  rb.command = "tandemctl chat failover --pool chat.example.test";
  rb.steps = {flagStep(w, "one"), flagStep(w, "two"), flagStep(w, "three")};
  rb.summarize = [](const StepContext& ctx) {
    return nlohmann::json{{"last", ctx.facts.value("last", "")}};
  };
  return rb;
}

struct Died {};

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/tandem-runbook-test-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(RunnerTest, RunsEveryStepInOrderAndReportsOutcomes) {
  World w;
  FileJournalStore journal(dir_);
  Runner runner(journal);
  std::ostringstream progress;
  auto report = runner.run(threeSteps(w), {.progress = &progress});
  EXPECT_EQ(report.outcome, RunOutcome::kDone);
  EXPECT_EQ(report.exitCode(), 0);
  ASSERT_EQ(report.steps.size(), 3u);
  EXPECT_EQ(report.steps[2].outcome, "did three");
  EXPECT_EQ(report.summary["last"], "three");
  EXPECT_NE(progress.str().find("[2/3] two … did two ("), std::string::npos) << progress.str();
  auto doc = journal.load("fake-failover/chat.example.test");
  ASSERT_TRUE(doc && *doc);
  EXPECT_EQ((**doc)["state"], "done");
}

TEST_F(RunnerTest, RefusesWithNothingChangedWhenTheFirstPreconditionFails) {
  World w;
  FileJournalStore journal(dir_);
  Runner runner(journal);
  Runbook rb = threeSteps(w);
  rb.steps[0].precondition = [](const StepContext&) {
    return failedPrecondition("primary store `pc1` is reachable; run `tandemctl db failover` instead");
  };
  auto report = runner.run(rb, {});
  EXPECT_EQ(report.outcome, RunOutcome::kRefused);
  EXPECT_EQ(report.exitCode(), 3);
  EXPECT_NE(report.status.message().find("pc1"), std::string::npos);
  EXPECT_TRUE(w.actions.empty());
  auto doc = journal.load("fake-failover/chat.example.test");
  ASSERT_TRUE(doc);
  EXPECT_FALSE(*doc) << "a refused fresh run leaves no journal";
}

TEST_F(RunnerTest, GateRefusalChangesNothing) {
  World w;
  FileJournalStore journal(dir_);
  Runner runner(journal);
  Runbook rb = threeSteps(w);
  rb.gate = [](StepContext&) { return failedPrecondition("the CMS is unreachable"); };
  auto report = runner.run(rb, {});
  EXPECT_EQ(report.exitCode(), 3);
  EXPECT_TRUE(w.actions.empty());
}

TEST_F(RunnerTest, WhatIfRunsPreconditionsOnlyAndPrintsThePlan) {
  World w;
  FileJournalStore journal(dir_);
  Runner runner(journal);
  Runbook rb = threeSteps(w);
  int preconditions = 0;
  rb.steps[1].precondition = [&](const StepContext& ctx) {
    ++preconditions;
    EXPECT_TRUE(ctx.what_if);
    return Status::ok();
  };
  std::ostringstream progress;
  auto report = runner.run(rb, {.what_if = true, .progress = &progress});
  EXPECT_EQ(report.outcome, RunOutcome::kPlanned);
  EXPECT_EQ(report.exitCode(), 0);
  EXPECT_EQ(preconditions, 1);
  EXPECT_TRUE(w.actions.empty());
  EXPECT_NE(progress.str().find("[3/3] three … would three"), std::string::npos) << progress.str();
  auto doc = journal.load("fake-failover/chat.example.test");
  EXPECT_FALSE(*doc);
}

TEST_F(RunnerTest, ResumesAfterTheRunDiesAfterAStep) {
  World w;
  FileJournalStore journal(dir_);
  Runbook rb = threeSteps(w);
  {
    Runner runner(journal);
    RunOptions o;
    o.after_step = [](int step) { if (step == 2) throw Died{}; };
    EXPECT_THROW((void)runner.run(rb, o), Died);
  }
  EXPECT_TRUE(w.done["two"]);
  EXPECT_FALSE(w.done["three"]);
  Runner runner(journal);
  // Without --resume: refused, pointing at --resume.
  auto refused = runner.run(rb, {});
  EXPECT_EQ(refused.exitCode(), 3);
  EXPECT_EQ(refused.next_command, "tandemctl chat failover --pool chat.example.test --resume");
  std::ostringstream progress;
  auto resumed = runner.run(rb, {.resume = true, .progress = &progress});
  EXPECT_EQ(resumed.outcome, RunOutcome::kDone);
  EXPECT_EQ(w.actions["one"], 1);
  EXPECT_EQ(w.actions["two"], 1);
  EXPECT_EQ(w.actions["three"], 1);
  EXPECT_NE(progress.str().find("[1/3] one … done before: did one"), std::string::npos);
  EXPECT_EQ(resumed.summary["last"], "three") << "facts survive in the journal";
}

TEST_F(RunnerTest, ResumeRerunsAStepThatDiedWhileRunning) {
  World w;
  FileJournalStore journal(dir_);
  Runbook rb = threeSteps(w);
  // The work happens, then the step fails before it is recorded (as after a kill -9 mid-step).
  rb.steps[1].action = [&w](StepContext&) -> Result<std::string> {
    w.done["two"] = true;
    return fail(unavailable("lost the sqlagent of store `pcb`"));
  };
  Runner runner(journal);
  auto stopped = runner.run(rb, {});
  EXPECT_EQ(stopped.outcome, RunOutcome::kStoppedPartWay);
  EXPECT_EQ(stopped.exitCode(), 4);
  EXPECT_EQ(stopped.stopped_at, 2);
  EXPECT_NE(stopped.state_left.find("1 of 3 steps done"), std::string::npos) << stopped.state_left;
  EXPECT_NE(stopped.status.message().find("step 2 (two)"), std::string::npos);
  Runbook fixed = threeSteps(w);
  auto resumed = runner.run(fixed, {.resume = true});
  EXPECT_EQ(resumed.outcome, RunOutcome::kDone);
  EXPECT_EQ(resumed.steps[1].outcome, "already two") << "the rerun step noticed the work was done";
}

TEST_F(RunnerTest, RerunOfACompletedRunbookChangesNothing) {
  World w;
  FileJournalStore journal(dir_);
  Runner runner(journal);
  ASSERT_EQ(runner.run(threeSteps(w), {}).outcome, RunOutcome::kDone);
  auto again = runner.run(threeSteps(w), {});
  EXPECT_EQ(again.outcome, RunOutcome::kDone);
  for (const auto& [name, count] : w.actions) EXPECT_EQ(count, 1) << name;
  EXPECT_EQ(again.steps[0].outcome, "already one");
  auto resume = runner.run(threeSteps(w), {.resume = true});
  EXPECT_EQ(resume.outcome, RunOutcome::kNothingToResume);
  EXPECT_EQ(resume.exitCode(), 0);
}

TEST_F(RunnerTest, AStepThatOverrunsItsTimeoutStopsTheRun) {
  World w;
  FileJournalStore journal(dir_);
  Runner runner(journal);
  Runbook rb = threeSteps(w);
  rb.steps[1].timeout = 100ms;
  rb.steps[1].action = [](StepContext&) -> Result<std::string> {
    std::this_thread::sleep_for(400ms);
    return "slow";
  };
  auto t0 = std::chrono::steady_clock::now();
  auto report = runner.run(rb, {});
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 350ms);
  EXPECT_EQ(report.outcome, RunOutcome::kStoppedPartWay);
  EXPECT_EQ(report.status.code(), StatusCode::kTimeout);
  EXPECT_NE(report.status.message().find("timeout of 0.1 s"), std::string::npos)
      << report.status.message();
  EXPECT_FALSE(w.done["three"]);
  std::this_thread::sleep_for(400ms);  // let the abandoned helper finish before teardown
}

TEST_F(RunnerTest, JournalsLocallyWhenTheCmsIsDownAndReconcilesLater) {
  World w;
  FakeCms cms;
  Runbook rb = threeSteps(w);
  {
    FallbackJournalStore journal(cms.store(), std::make_unique<FileJournalStore>(dir_));
    Runner runner(journal);
    cms.up = false;
    RunOptions o;
    o.after_step = [](int step) { if (step == 1) throw Died{}; };
    EXPECT_THROW((void)runner.run(rb, o), Died);
    EXPECT_TRUE(journal.usedLocal());
  }
  EXPECT_TRUE(cms.values.empty());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/fake-failover-chat.example.test.json"));
  cms.up = true;
  FallbackJournalStore journal(cms.store(), std::make_unique<FileJournalStore>(dir_));
  Runner runner(journal);
  auto resumed = runner.run(rb, {.resume = true});
  EXPECT_EQ(resumed.outcome, RunOutcome::kDone);
  EXPECT_EQ(w.actions["one"], 1);
  ASSERT_EQ(cms.values.count("runbook.journal.fake-failover/chat.example.test"), 1u);
  EXPECT_EQ(cms.values["runbook.journal.fake-failover/chat.example.test"]["state"], "done");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/fake-failover-chat.example.test.json"));
}

TEST_F(RunnerTest, JsonReportCarriesStepsTimesAndOutcome) {
  World w;
  FileJournalStore journal(dir_);
  Runner runner(journal);
  auto doc = runner.run(threeSteps(w), {}).toJson();
  EXPECT_EQ(doc["outcome"], "done");
  EXPECT_EQ(doc["exit_code"], 0);
  EXPECT_EQ(doc["steps"].size(), 3u);
  EXPECT_TRUE(doc["steps"][0]["duration_s"].is_number());
  EXPECT_TRUE(doc["total_s"].is_number());
}

}  // namespace
}  // namespace tandem::hadr
