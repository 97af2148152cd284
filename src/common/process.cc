// Child processes: fork/exec with pipes, timeouts, user switching and detached spawning.
#include "common/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace tandem {

namespace {

std::vector<char*> toArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// In the child, after fork: switch user, set env and cwd. Returns false on failure.
bool prepareChild(const std::string& user, const std::map<std::string, std::string>& env,
                  const std::string& cwd) {
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  if (!user.empty() && ::getuid() == 0) {
    struct passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) return false;
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0) return false;
    if (::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) return false;
    ::setenv("HOME", pw->pw_dir, 1);
    ::setenv("USER", pw->pw_name, 1);
  }
  if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) return false;
  return true;
}

}  // namespace

std::string RunResult::lastLine() const {
  for (const std::string* s : {&err, &out}) {
    size_t end = s->find_last_not_of(" \n\r\t");
    if (end == std::string::npos) continue;
    size_t start = s->rfind('\n', end);
    start = (start == std::string::npos) ? 0 : start + 1;
    return s->substr(start, end - start + 1);
  }
  return "";
}

Result<RunResult> runProcess(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) return fail(invalidArgument("no program to run"));
  int inPipe[2], outPipe[2], errPipe[2];
  if (::pipe2(inPipe, O_CLOEXEC) || ::pipe2(outPipe, O_CLOEXEC) || ::pipe2(errPipe, O_CLOEXEC)) {
    return fail(unavailable(std::string("cannot create pipes: ") + std::strerror(errno)));
  }
  pid_t pid = ::fork();
  if (pid < 0) return fail(unavailable(std::string("cannot fork: ") + std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(inPipe[0], 0);
    ::dup2(outPipe[1], 1);
    ::dup2(errPipe[1], 2);
    if (!prepareChild(options.user, options.env, options.cwd)) {
      std::fprintf(stderr, "cannot switch to user `%s` or directory `%s`\n", options.user.c_str(),
                   options.cwd.c_str());
      ::_exit(126);
    }
    auto args = toArgv(argv);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run `%s`: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(inPipe[0]);
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  if (!options.input.empty()) {
    ssize_t ignored = ::write(inPipe[1], options.input.data(), options.input.size());
    (void)ignored;
  }
  ::close(inPipe[1]);

  RunResult result;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  struct pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  int open = 2;
  char buf[8192];
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(std::min<long>(left, 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(r));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (auto& f : fds) if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = (!result.timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  if (result.exit_code == 127 && result.err.find("cannot run") != std::string::npos) {
    return fail(notFound("program `" + argv[0] + "` is not installed (run scripts/setup)"));
  }
  return result;
}

Result<RunResult> runChecked(const std::string& what, const std::vector<std::string>& argv,
                             const RunOptions& options) {
  auto r = runProcess(argv, options);
  if (!r) return fail(r.error().withContext(what));
  if (r->timed_out) {
    return fail(timeoutError(what + ": " + argv[0] + " did not finish within " +
                             std::to_string(options.timeout.count() / 1000) + " s"));
  }
  if (r->exit_code != 0) {
    return fail(unavailable(what + ": " + argv[0] + " exited " + std::to_string(r->exit_code) +
                            ": " + r->lastLine()));
  }
  return r;
}

Result<int> spawnDetached(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) return fail(invalidArgument("no program to start"));
  int errPipe[2];
  if (::pipe2(errPipe, O_CLOEXEC) != 0) {
    return fail(unavailable(std::string("cannot create pipe: ") + std::strerror(errno)));
  }
  pid_t pid = ::fork();
  if (pid < 0) return fail(unavailable(std::string("cannot fork: ") + std::strerror(errno)));
  if (pid == 0) {
    ::close(errPipe[0]);
    ::setsid();
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    int out = options.log_file.empty()
                  ? devnull
                  : ::open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out < 0) out = devnull;
    if (!options.user.empty() && out != devnull) {
      if (auto ids = lookupUser(options.user)) {
        if (::fchown(out, ids->uid, ids->gid) != 0) {
        }
      }
    }
    ::dup2(out, 1);
    ::dup2(out, 2);
    if (!prepareChild(options.user, options.env, options.cwd)) {
      int e = EPERM;
      ssize_t ignored = ::write(errPipe[1], &e, sizeof e);
      (void)ignored;
      ::_exit(126);
    }
    auto args = toArgv(argv);
    ::execvp(args[0], args.data());
    int e = errno;
    ssize_t ignored = ::write(errPipe[1], &e, sizeof e);
    (void)ignored;
    ::_exit(127);
  }
  ::close(errPipe[1]);
  int childErr = 0;
  ssize_t n = ::read(errPipe[0], &childErr, sizeof childErr);
  ::close(errPipe[0]);
  if (n == sizeof childErr) {
    ::waitpid(pid, nullptr, 0);
    return fail(unavailable("cannot start `" + argv[0] + "`: " + std::strerror(childErr)));
  }
  return static_cast<int>(pid);
}

bool isProcessAlive(int pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(st, line)) return false;
  size_t rp = line.rfind(')');
  if (rp == std::string::npos || rp + 2 >= line.size()) return false;
  char state = line[rp + 2];
  return state != 'Z' && state != 'X';
}

Result<UserIds> lookupUser(const std::string& name) {
  struct passwd* pw = ::getpwnam(name.c_str());
  if (pw == nullptr) return fail(notFound("user `" + name + "` does not exist"));
  return UserIds{pw->pw_uid, pw->pw_gid};
}

}  // namespace tandem
