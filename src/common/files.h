// Small file-system helpers that report failures as Status sentences.
// All functions block on disk I/O; none keeps state. Thread-safe.
#pragma once

#include <string>

#include "common/status.h"

namespace tandem {

// Reads the whole file. Fails with NotFound or Unavailable, naming the path.
Result<std::string> readFile(const std::string& path);

// Writes `contents` to `path` atomically and durably (temp file in the same directory, fsync,
// rename, fsync of the directory), so a reader sees the old or the new file, never half of
// one, and once it returns OK the new file survives a crash. Creates parent directories.
Status writeFileAtomic(const std::string& path, const std::string& contents, int mode = 0644);

// mkdir -p. OK when the directory already exists.
Status makeDirs(const std::string& path, int mode = 0755);

}  // namespace tandem
