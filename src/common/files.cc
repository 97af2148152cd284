// File helpers: read, atomic write, mkdir -p.
#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tandem {

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT) return fail(notFound("file `" + path + "` does not exist"));
    return fail(unavailable("cannot read `" + path + "`: " + std::strerror(err)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status makeDirs(const std::string& path, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return unavailable("cannot create directory `" + path + "`: " + ec.message());
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
  return Status::ok();
}

Status writeFileAtomic(const std::string& path, const std::string& contents, int mode) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
  }
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return unavailable("cannot write `" + path + "`: " + std::strerror(errno));
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return unavailable("cannot write `" + path + "`: " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return unavailable("cannot flush `" + path + "` to disk: " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return unavailable("cannot rename into `" + path + "`: " + std::strerror(err));
  }
  // The rename is durable only once the directory is: without this a crash may bring back the
  // old file (or none), losing a write the caller already acted on (a witness's vote).
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return unavailable("cannot open directory `" + dir + "` to flush it: " + std::strerror(errno));
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0) return unavailable("cannot flush directory `" + dir + "` to disk: " + std::strerror(err));
  return Status::ok();
}

}  // namespace tandem
