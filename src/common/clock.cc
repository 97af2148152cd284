// UTC formatting and the real clock.
#include "common/clock.h"

#include <ctime>
#include <cstdio>

namespace tandem {

std::string formatUtc(SystemTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

SystemTime parseUtc(const std::string& text) {
  std::tm tm{};
  int msec = 0;
  int n = std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &msec);
  if (n < 6) return SystemTime{};
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t secs = timegm(&tm);
  return SystemTime{} + std::chrono::seconds(secs) + std::chrono::milliseconds(n == 7 ? msec : 0);
}

namespace {
class RealClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::now();
  }
  SystemTime wallNow() const override { return std::chrono::system_clock::now(); }
};
}  // namespace

Clock& realClock() {
  static RealClock clock;
  return clock;
}

}  // namespace tandem
