// A registry of gauges and counters rendered in the Prometheus text exposition format (0.0.4).
//
// Each process keeps one Metrics (usually owned by its admin endpoint) and serves render() at
// GET /metrics. Thread-safe: every method may be called from any thread.
#pragma once

#include <map>
#include <mutex>
#include <string>

namespace tandem::rpc {

class Metrics {
 public:
  // Sets the gauge `name` (Prometheus metric name, e.g. "tandem_cms_replica_version") for this
  // label set to `v`. `help` is kept from the first call that gives one.
  void setGauge(const std::string& name, double v,
                const std::map<std::string, std::string>& labels = {},
                const std::string& help = "");
  // Adds `delta` (>= 0) to the counter `name` for this label set (created at 0).
  void addCounter(const std::string& name, double delta = 1,
                  const std::map<std::string, std::string>& labels = {},
                  const std::string& help = "");
  // Removes every series of `name` (e.g. a gauge whose label set went away).
  void clear(const std::string& name);
  // The current value, or `fallback` when the series does not exist (tests, status pages).
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {},
               double fallback = 0) const;

  // "# HELP", "# TYPE" and one line per series, metrics sorted by name.
  std::string render() const;

 private:
  struct Family {
    std::string type;  // "gauge" | "counter"
    std::string help;
    std::map<std::string, double> series;  // rendered label set ("{a=\"b\"}") -> value
  };
  void set(const std::string& name, const std::string& type, const std::string& help,
           const std::map<std::string, std::string>& labels, double v, bool add);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // GUARDED_BY(mu_)
};

}  // namespace tandem::rpc
