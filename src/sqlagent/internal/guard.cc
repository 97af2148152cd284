// The PostgreSQL guard: a principal's PostgreSQL never serves without its agent.
//
// - At start the agent spawns a small shell in its own session (so it outlives the agent, and a
//   kill of the agent's process group) whose stdin is the read end of a pipe only the agent
//   holds (the write end is close-on-exec: no pg_ctl, no postmaster inherits it).
// - When the agent ends, however it ends (kill -9 included), the kernel closes the write end;
//   the guard's `cat` returns, and if agent.json says Principal the guard stops PostgreSQL
//   (fast, then immediate). Without the agent nothing would fence it on a partition (rule 2)
//   or take back an exposure grant (rule 7).
// - A mirror, a restoring store and a standalone store keep running: a standby cannot
//   acknowledge commits and cannot be promoted without its agent; a standalone store has no
//   partner that could be promoted over it.
// - The agent that starts next starts PostgreSQL again through startPrincipalGuarded().
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "sqlagent/internal/agent.h"

extern char** environ;

namespace tandem::sqlagent {

namespace {

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Status Agent::startPostgresGuard() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return unavailable("store `" + self_.name + "`: cannot create the guard's pipe: " + std::strerror(errno));
  }
  const std::string pg_ctl = std::string(PgCluster::kBinDir) + "pg_ctl";
  const std::string pgdata = shellQuote(pg_->pgdata());
  const std::string script =
      "cat >/dev/null\n"  // returns when the agent is gone
      "grep -q '\"role\": \"Principal\"' " + shellQuote(storeDir() + "/agent.json") + " || exit 0\n"
      "R=; [ \"$(id -u)\" = 0 ] && R='runuser -u postgres --'\n"
      "echo \"sqlagent guard: agent of store " + self_.name + " ended; stopping its PostgreSQL\" >&2\n"
      "$R " + pg_ctl + " -D " + pgdata + " -m fast -w -t 20 stop >/dev/null 2>&1 || "
      "$R " + pg_ctl + " -D " + pgdata + " -m immediate -w -t 20 stop >/dev/null 2>&1\n";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, "/bin/sh", &fa, &attr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fds[0]);
  if (rc != 0) {
    ::close(fds[1]);
    return unavailable("store `" + self_.name + "`: cannot start the PostgreSQL guard: " + std::strerror(rc));
  }
  guard_fd_ = fds[1];  // held until the process ends: never closed on purpose
  spdlog::info("store `{}`: PostgreSQL guard running (pid {}): a principal's PostgreSQL stops "
               "when this agent ends", self_.name, pid);
  return Status::ok();
}

}  // namespace tandem::sqlagent
