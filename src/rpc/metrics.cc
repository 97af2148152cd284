// Metrics: a mutex-guarded map of metric families, rendered in Prometheus text format 0.0.4.
#include "rpc/metrics.h"

#include <cmath>
#include <cstdio>

namespace tandem::rpc {

static std::string escapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

static std::string renderLabels(const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"" + escapeLabel(v) + "\"";
  }
  return out + "}";
}

static std::string renderValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void Metrics::set(const std::string& name, const std::string& type, const std::string& help,
                  const std::map<std::string, std::string>& labels, double v, bool add) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  if (f.type.empty()) f.type = type;
  if (f.help.empty()) f.help = help;
  double& slot = f.series[renderLabels(labels)];
  slot = add ? slot + v : v;
}

void Metrics::setGauge(const std::string& name, double v,
                       const std::map<std::string, std::string>& labels, const std::string& help) {
  set(name, "gauge", help, labels, v, false);
}

void Metrics::addCounter(const std::string& name, double delta,
                         const std::map<std::string, std::string>& labels,
                         const std::string& help) {
  set(name, "counter", help, labels, delta < 0 ? 0 : delta, true);
}

void Metrics::clear(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  families_.erase(name);
}

double Metrics::value(const std::string& name, const std::map<std::string, std::string>& labels,
                      double fallback) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto f = families_.find(name);
  if (f == families_.end()) return fallback;
  auto s = f->second.series.find(renderLabels(labels));
  return s == f->second.series.end() ? fallback : s->second;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, v] : f.series) out += name + labels + " " + renderValue(v) + "\n";
  }
  return out;
}

}  // namespace tandem::rpc
