// Version (de)serialisation, Snapshot and topology documents.
#include "cms/version.h"

#include "cms/settings.h"
#include "common/files.h"
#include "topology/loader.h"

namespace tandem::cms {

nlohmann::json toJson(const Version& v) {
  return {{"version", v.number},   {"epoch", v.epoch},     {"created_at", formatUtc(v.created_at)},
          {"author", v.author},     {"kind", v.kind},       {"summary", v.summary},
          {"document", v.document}};
}

Result<Version> versionFromJson(const nlohmann::json& j) {
  try {
    Version v;
    v.number = j.at("version").get<int64_t>();
    v.epoch = j.value("epoch", int64_t{0});
    v.created_at = parseUtc(j.value("created_at", std::string()));
    v.author = j.value("author", std::string());
    v.kind = j.value("kind", std::string());
    v.summary = j.value("summary", std::string());
    v.document = j.at("document");
    if (!v.document.is_object()) return fail(invalidArgument("CMS version document is not an object"));
    return v;
  } catch (const std::exception& e) {
    return fail(invalidArgument(std::string("CMS version is malformed: ") + e.what()));
  }
}

Result<std::shared_ptr<const Snapshot>> Snapshot::make(Version v) {
  auto snap = std::shared_ptr<Snapshot>(new Snapshot());
  const nlohmann::json& doc = v.document;
  if (!doc.contains("topology_yaml") || !doc["topology_yaml"].is_string())
    return fail(invalidArgument("CMS version " + std::to_string(v.number) + " has no topology"));
  topology::LoadResult loaded =
      topology::parseTopology(doc["topology_yaml"].get<std::string>(), "CMS version " +
                                                                         std::to_string(v.number));
  if (!loaded.parsed)
    return fail(invalidArgument("the topology of CMS version " + std::to_string(v.number) +
                                " does not load: " +
                                (loaded.problems.empty() ? "" : loaded.problems[0].message)));
  snap->topology_ = std::make_shared<const topology::Topology>(std::move(loaded.topology));
  snap->settings_ = doc.contains("settings") && doc["settings"].is_object()
                        ? doc["settings"]
                        : defaultSettings(*snap->topology_);
  snap->version_ = std::move(v);
  return std::shared_ptr<const Snapshot>(snap);
}

Result<std::shared_ptr<const Snapshot>> Snapshot::bootstrap(const std::string& topology_file) {
  auto text = readFile(topology_file);
  if (!text) return fail(text.error().withContext("reading the bootstrap topology"));
  auto doc = makeTopologyDocument(*text, topology_file, nlohmann::json::object());
  if (!doc) return fail(doc.error());
  Version v;
  v.kind = "bootstrap";
  v.author = "topology file";
  v.summary = "bootstrap from " + topology_file;
  v.document = std::move(*doc);
  return make(std::move(v));
}

nlohmann::json Snapshot::setting(const std::string& key) const {
  auto it = settings_.find(key);
  return it == settings_.end() ? nlohmann::json() : *it;
}

std::string Snapshot::chatState(const std::string& pool) const {
  auto v = setting("chat." + pool + ".state");
  return v.is_string() ? v.get<std::string>() : "Normal";
}

std::vector<std::string> Snapshot::activeServers(const std::string& pool) const {
  std::vector<std::string> out;
  auto v = setting("chat." + pool + ".active_servers");
  if (v.is_array())
    for (const auto& s : v)
      if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}

std::string Snapshot::chatFrontendPool(const std::string& pool) const {
  auto v = setting("chat." + pool + ".frontend_pool");
  return v.is_string() ? v.get<std::string>() : "";
}

std::string Snapshot::userPool(const std::string& user) const {
  auto v = setting("users." + user);
  return v.is_object() && v.contains("pool") && v["pool"].is_string() ? v["pool"].get<std::string>()
                                                                       : "";
}

Result<nlohmann::json> makeTopologyDocument(const std::string& yaml, const std::string& file,
                                            const nlohmann::json& previous_settings) {
  topology::LoadResult checked = topology::checkTopology(yaml, file);
  if (!checked.problems.empty()) {
    std::string msg = "topology `" + file + "` is not valid: " + checked.problems[0].toString();
    if (checked.problems.size() > 1)
      msg += " (and " + std::to_string(checked.problems.size() - 1) + " more problems; run "
             "`tandemctl topology validate " + file + "`)";
    return fail(invalidArgument(msg));
  }
  nlohmann::json doc;
  doc["topology_yaml"] = yaml;
  doc["topology"] = topology::toJson(checked.topology);
  doc["settings"] = reconcileSettings(checked.topology, previous_settings);
  return doc;
}

}  // namespace tandem::cms
