// Time helpers: UTC ISO-8601 formatting (STYLE.md §9) and an injectable clock for tests.
#pragma once

#include <chrono>
#include <string>

namespace tandem {

using SystemTime = std::chrono::system_clock::time_point;

// "2026-11-25T13:40:01.123Z"
std::string formatUtc(SystemTime t);

// Parses formatUtc's output (milliseconds optional). Returns epoch on failure.
SystemTime parseUtc(const std::string& text);

// A clock a test can control. Production code takes `Clock&` where time matters to logic.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
  virtual SystemTime wallNow() const = 0;
};

// The real clocks.
Clock& realClock();

}  // namespace tandem
