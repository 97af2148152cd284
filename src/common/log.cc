// Logging set-up on spdlog.
#include "common/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace tandem {

void initLogging(const LogOptions& options) {
  std::shared_ptr<spdlog::logger> logger;
  if (options.file.empty()) {
    logger = spdlog::stderr_logger_mt(options.name + "#" + std::to_string(reinterpret_cast<uintptr_t>(&options)));
  } else {
    logger = spdlog::basic_logger_mt(options.name + "#file", options.file);
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [" + options.name + "] %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(options.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace tandem
