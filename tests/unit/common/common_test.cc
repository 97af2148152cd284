// Unit tests for src/common: Status, HashRing, files, processes, clock.
#include <unistd.h>

#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/files.h"
#include "common/hash_ring.h"
#include "common/process.h"
#include "common/status.h"

namespace tandem {
namespace {

TEST(Status, WithContextKeepsCodeAndCause) {
  Status st = unavailable("pgBackRest exited 1").withContext("restoring store `pcb`");
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "restoring store `pcb`: pgBackRest exited 1");
  EXPECT_TRUE(Status::ok().withContext("x").isOk());
}

TEST(Status, ResultCarriesErrorOrValue) {
  auto f = [](bool good) -> Result<int> {
    if (good) return 7;
    return fail(notFound("store `x` is unknown"));
  };
  EXPECT_EQ(*f(true), 7);
  EXPECT_EQ(f(false).error().code(), StatusCode::kNotFound);
}

TEST(HashRing, OwnershipIsStableAndIndependentOfMemberOrder) {
  HashRing a({"fe1a", "fe1b", "fe1c"});
  HashRing b({"fe1c", "fe1a", "fe1b"});
  for (int i = 0; i < 200; ++i) {
    std::string key = "user" + std::to_string(i) + "@example.test";
    EXPECT_EQ(a.ownerOf(key), b.ownerOf(key));
  }
}

TEST(HashRing, RemovingAMemberMovesOnlyItsKeys) {
  HashRing three({"a", "b", "c"});
  HashRing two({"a", "b"});
  std::map<std::string, int> owners;
  for (int i = 0; i < 1000; ++i) {
    std::string key = "room" + std::to_string(i);
    owners[three.ownerOf(key)]++;
    if (three.ownerOf(key) != "c") EXPECT_EQ(three.ownerOf(key), two.ownerOf(key));
  }
  // Spread: every member owns a fair share.
  for (const auto& m : {"a", "b", "c"}) EXPECT_GT(owners[m], 200);
}

TEST(HashRing, EmptyRingOwnsNothing) { EXPECT_EQ(HashRing({}).ownerOf("x"), ""); }

TEST(Files, AtomicWriteThenRead) {
  auto dir = std::filesystem::temp_directory_path() / ("tandem-files-" + std::to_string(::getpid()));
  std::string path = (dir / "sub" / "f.txt").string();
  ASSERT_TRUE(writeFileAtomic(path, "hello").isOk());
  EXPECT_EQ(*readFile(path), "hello");
  auto missing = readFile((dir / "nope").string());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(Process, CapturesOutputAndExitCode) {
  auto r = runProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->lastLine(), "err");
}

TEST(Process, TimeoutKillsTheChild) {
  RunOptions o;
  o.timeout = std::chrono::milliseconds(200);
  auto r = runProcess({"sleep", "5"}, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->timed_out);
  auto checked = runChecked("waiting", {"sleep", "5"}, o);
  EXPECT_EQ(checked.error().code(), StatusCode::kTimeout);
}

TEST(Process, MissingProgramIsNotFound) {
  auto r = runProcess({"tandem-no-such-program"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kNotFound);
}

TEST(Process, NonZeroExitBecomesAnOperatorSentence) {
  auto r = runChecked("checking", {"sh", "-c", "echo broken >&2; exit 1"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "checking: sh exited 1: broken");
}

TEST(Clock, FormatsAndParsesUtc) {
  SystemTime t = parseUtc("2026-11-25T13:40:01.123Z");
  EXPECT_EQ(formatUtc(t), "2026-11-25T13:40:01.123Z");
}

}  // namespace
}  // namespace tandem
