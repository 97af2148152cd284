// CMS export files: encode/decode with checksum and format version, export of the active copy,
// the backup share's export directory.
#include "cms/export.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cms/internal/sync.h"
#include "cms/internal/xds.h"
#include "common/files.h"

namespace tandem::cms {
namespace {

constexpr const char* kFormat = "tandem-cms-export";

std::string sha256Hex(const std::string& data) {  // "sha256:<hex>"
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    hex += buf;
  }
  return "sha256:" + hex;
}

nlohmann::json body(const ExportFile& f) {
  nlohmann::json versions = nlohmann::json::array();
  for (const auto& v : f.versions) versions.push_back(toJson(v));
  return {{"format", kFormat},
          {"format_version", kExportFormatVersion},
          {"exported_at", formatUtc(f.exported_at)},
          {"source", {{"store", f.store}, {"pool", f.pool}, {"epoch", f.epoch}}},
          {"versions", std::move(versions)}};
}

// (epoch, number) from "cms-export-e<E>-v<N>.json"; nullopt for other names.
std::optional<std::pair<int64_t, int64_t>> exportKey(const std::string& name) {
  long long e = 0, n = 0;
  int used = 0;
  if (std::sscanf(name.c_str(), "cms-export-e%lld-v%lld.json%n", &e, &n, &used) != 2 ||
      static_cast<size_t>(used) != name.size())
    return std::nullopt;
  return std::make_pair(static_cast<int64_t>(e), static_cast<int64_t>(n));
}

// Share exports, oldest first.
std::vector<std::pair<std::pair<int64_t, int64_t>, std::string>> shareExports(
    const std::string& state_dir) {
  std::vector<std::pair<std::pair<int64_t, int64_t>, std::string>> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(shareExportDir(state_dir), ec)) {
    auto key = exportKey(entry.path().filename().string());
    if (key) out.emplace_back(*key, entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string exportChecksum(const nlohmann::json& doc) { return sha256Hex(doc.dump()); }

std::string encodeExport(const ExportFile& f) {
  nlohmann::json doc = body(f);
  doc["checksum"] = exportChecksum(doc);
  return doc.dump(1) + "\n";
}

Result<ExportFile> decodeExport(const std::string& text, const std::string& name) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("format", std::string()) != kFormat)
    return fail(invalidArgument("`" + name + "` is not a CMS export (`tandemctl cms export` "
                                "writes one)"));
  if (!doc.contains("checksum") || !doc["checksum"].is_string())
    return fail(dataLoss("CMS export `" + name + "` carries no checksum; it is damaged"));
  const std::string claimed = doc["checksum"];
  doc.erase("checksum");
  if (exportChecksum(doc) != claimed)
    return fail(dataLoss("CMS export `" + name + "` does not match its checksum: it is damaged "
                         "or was edited; use another export (the share keeps the last few)"));
  const int fv = doc.value("format_version", 0);
  if (fv != kExportFormatVersion)
    return fail(invalidArgument("CMS export `" + name + "` has format version " +
                                std::to_string(fv) + "; this tandemctl reads version " +
                                std::to_string(kExportFormatVersion)));
  ExportFile f;
  try {
    f.store = doc.at("source").value("store", std::string());
    f.pool = doc.at("source").value("pool", std::string());
    f.epoch = doc.at("source").value("epoch", int64_t{0});
    f.exported_at = parseUtc(doc.value("exported_at", std::string()));
    for (const auto& j : doc.at("versions")) {
      auto v = versionFromJson(j);
      if (!v) return fail(v.error().withContext("CMS export `" + name + "`"));
      if (!f.versions.empty() && v->number <= f.versions.back().number)
        return fail(invalidArgument("CMS export `" + name + "` lists version " +
                                    std::to_string(v->number) + " out of order"));
      f.versions.push_back(std::move(*v));
    }
  } catch (const std::exception& e) {
    return fail(invalidArgument("CMS export `" + name + "` is malformed: " + e.what()));
  }
  return f;
}

Result<ExportFile> readExport(const std::string& path) {
  auto text = readFile(path);
  if (!text) return fail(text.error());
  return decodeExport(*text, path);
}

Result<ExportFile> exportActive(const topology::Topology& t, const std::string& state_dir) {
  auto secret = internal::readSecret(state_dir);
  if (!secret) return fail(secret.error());
  auto active = internal::findActive(t, *secret, false);
  if (!active) return fail(active.error());
  return internal::exportFrom(*active->xds);
}

Status writeExport(const std::string& path, const ExportFile& f) {
  return writeFileAtomic(path, encodeExport(f), 0600);
}

std::string shareExportDir(const std::string& state_dir) { return state_dir + "/share/cms"; }

std::string shareExportPath(const std::string& state_dir, const ExportFile& f) {
  return shareExportDir(state_dir) + "/cms-export-e" + std::to_string(f.epoch) + "-v" +
         std::to_string(f.latestNumber()) + ".json";
}

Result<std::string> latestShareExport(const std::string& state_dir) {
  auto all = shareExports(state_dir);
  if (all.empty())
    return fail(notFound("the backup share `" + shareExportDir(state_dir) +
                         "` holds no CMS export; the CMS master writes one after every new "
                         "version (or run `tandemctl cms export --to FILE`)"));
  return all.back().second;
}

void pruneShareExports(const std::string& state_dir, size_t keep) {
  auto all = shareExports(state_dir);
  for (size_t i = 0; i + keep < all.size(); ++i) {
    std::error_code ec;
    std::filesystem::remove(all[i].second, ec);
  }
}

}  // namespace tandem::cms
