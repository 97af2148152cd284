// Logging: one spdlog logger per process, named after the server or tool.
//
// Call initLogging() once at start; afterwards use spdlog's free functions (spdlog::info(...)).
// Thread-safe (spdlog's _mt sinks).
#pragma once

#include <string>

#include <spdlog/spdlog.h>

namespace tandem {

struct LogOptions {
  std::string name = "tandem";  // appears in every line, e.g. "fe1a.example.test/frontend"
  std::string file;             // empty: stderr; otherwise appended to this file
  std::string level = "info";   // trace|debug|info|warn|error
};

// Installs the default logger. Idempotent; a second call replaces the first logger.
void initLogging(const LogOptions& options);

}  // namespace tandem
