// Running other programs (pg_ctl, pgbackrest, initdb, tandemd): capture output, bound time,
// optionally as another user, or spawn detached into its own session.
//
// Every call blocks the calling thread until the child ends or the timeout expires; none
// touches shared state. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace tandem {

struct RunOptions {
  // Wall-clock bound; the child (and its process group) gets SIGKILL when it expires.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  // Run as this user (via setuid/setgid after fork) when we are root; empty: as ourselves.
  std::string user;
  // Extra environment variables (added to ours).
  std::map<std::string, std::string> env;
  // Working directory; empty: ours.
  std::string cwd;
  // Written to the child's stdin, then closed.
  std::string input;
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or the timeout
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
  // Last non-empty line of stderr (or stdout), for error sentences.
  std::string lastLine() const;
};

// Runs argv[0] (looked up in PATH) to completion. Fails only when it cannot start (NotFound);
// a non-zero exit is reported in the result, not as an error.
Result<RunResult> runProcess(const std::vector<std::string>& argv, const RunOptions& options = {});

// Runs and turns a non-zero exit or timeout into a Status: "<what>: <argv0> exited N: <last line>".
Result<RunResult> runChecked(const std::string& what, const std::vector<std::string>& argv,
                             const RunOptions& options = {});

struct SpawnOptions {
  std::string user;      // as RunOptions::user
  std::string log_file;  // stdout and stderr appended here; empty: /dev/null
  std::map<std::string, std::string> env;
  std::string cwd;
};

// Starts argv detached (new session, stdin /dev/null) and returns its pid without waiting.
Result<int> spawnDetached(const std::vector<std::string>& argv, const SpawnOptions& options = {});

// True when a process with this pid exists and is not a zombie.
bool isProcessAlive(int pid);

// uid/gid of a user name; NotFound when the user does not exist.
struct UserIds {
  unsigned uid = 0;
  unsigned gid = 0;
};
Result<UserIds> lookupUser(const std::string& name);

}  // namespace tandem
