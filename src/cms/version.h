// A CMS version: one immutable, numbered configuration of the whole deployment.
//
// Versions are append-only rows of xds (number, time, author, kind, summary, document); nothing
// is edited in place: publishing a topology or changing a setting adds a version. The document
// is {"topology_yaml": <the published file's text>, "topology": <topology::toJson>,
// "settings": {key: value}} (settings complete, see settings.h). `epoch` counts CMS failovers:
// a replica orders versions by (epoch, number), so a version from a CMS made active by
// `cms failover` replaces one from the old active even if the standby had fallen behind.
// Values; thread-safe to share once built.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "topology/topology.h"

namespace tandem::cms {

// The product version every replica reports (replication-status "product version").
inline constexpr const char* kProductVersion = "tandem 0.1.0";

struct Version {
  int64_t number = 0;  // 1, 2, 3 ... within the deployment; 0 = bootstrap (not from the CMS)
  int64_t epoch = 0;   // CMS failover count of the store that created it
  SystemTime created_at{};
  std::string author;   // e.g. "tandemctl@host", "deploy", "runbook chat failover"
  std::string kind;     // "topology" | "setting" | "failover" | "bootstrap"
  std::string summary;  // one line: what changed
  nlohmann::json document = nlohmann::json::object();

  // True when this version should replace `other` on a replica.
  bool isNewerThan(const Version& other) const {
    return epoch != other.epoch ? epoch > other.epoch : number > other.number;
  }
};

// The wire/file form: {"version", "epoch", "created_at" (UTC ISO-8601), "author", "kind",
// "summary", "document"}.
nlohmann::json toJson(const Version& v);
// Errors: InvalidArgument naming the missing or mistyped field.
Result<Version> versionFromJson(const nlohmann::json& j);

// A version with its topology parsed, as servers read it. Immutable.
class Snapshot {
 public:
  // Parses the document's topology_yaml. Errors: InvalidArgument when it has none or the text
  // does not load.
  static Result<std::shared_ptr<const Snapshot>> make(Version v);
  // A version-0 snapshot built from a topology file on disk, settings at their defaults: what a
  // server runs on before the CMS has ever pushed it anything.
  static Result<std::shared_ptr<const Snapshot>> bootstrap(const std::string& topology_file);

  const Version& version() const { return version_; }
  const topology::Topology& topology() const { return *topology_; }
  const nlohmann::json& settings() const { return settings_; }

  // The value of a setting; null when unset.
  nlohmann::json setting(const std::string& key) const;
  // Typed readers of the keys in settings.h (defaults when unset).
  std::string chatState(const std::string& chat_pool) const;                  // "Normal"
  std::vector<std::string> activeServers(const std::string& chat_pool) const;  // []
  std::string chatFrontendPool(const std::string& chat_pool) const;           // ""
  std::string userPool(const std::string& user) const;                        // "" when unknown

 private:
  Version version_;
  std::shared_ptr<const topology::Topology> topology_;
  nlohmann::json settings_;
};

// Builds the document of a topology version: parses and validates `yaml` (every problem in the
// error, InvalidArgument), reconciles `previous_settings` with it.
Result<nlohmann::json> makeTopologyDocument(const std::string& yaml, const std::string& file,
                                            const nlohmann::json& previous_settings);

}  // namespace tandem::cms
