// CMS export files: every version of the CMS (topology, settings and the user directory each
// version carries) in one checksummed, versioned file (`tandemctl cms export/import`,
// Export-/Import-CsConfiguration, and the export the master writes to the backup share after
// every new version, which `cms move --from` uses when a site is lost with the CMS).
//
// The file is one JSON document:
//   {"format": "tandem-cms-export", "format_version": 1, "exported_at": "<UTC>",
//    "source": {"store", "pool", "epoch"}, "versions": [<toJson(Version)>, ... oldest first],
//    "checksum": "sha256:<hex>"}
// The checksum is the SHA-256 of the document without "checksum", dumped canonically (keys
// sorted, no spaces), so a truncated or edited file is refused instead of imported.
// Values and pure functions, except where a function says it touches a store or a file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cms/version.h"
#include "common/status.h"
#include "topology/topology.h"

namespace tandem::cms {

// Bumped on any change of the file's shape; decodeExport refuses other versions.
inline constexpr int kExportFormatVersion = 1;

struct ExportFile {
  std::string store, pool;  // the CMS copy it was taken from
  int64_t epoch = 0;        // that copy's epoch when exported
  SystemTime exported_at{};
  std::vector<Version> versions;  // oldest first, with documents
  int64_t latestNumber() const { return versions.empty() ? 0 : versions.back().number; }
};

// The "checksum" value of an export document that lacks it: "sha256:<hex>" of its canonical
// dump.
std::string exportChecksum(const nlohmann::json& document_without_checksum);

// The file text (checksum included).
std::string encodeExport(const ExportFile& file);
// Parses and checks a file's text; `name` names it in errors. Errors: DataLoss when the
// checksum does not match (damaged or edited), InvalidArgument when it is not an export, is of
// another format_version (naming both) or a version inside is malformed.
Result<ExportFile> decodeExport(const std::string& text, const std::string& name);
// decodeExport of a file on disk (NotFound/Unavailable from reading it).
Result<ExportFile> readExport(const std::string& path);

// Every version of the active CMS copy of `topology` (blocks on the store). Errors: as
// Client::connect, NotFound when nothing was published yet.
Result<ExportFile> exportActive(const topology::Topology& topology, const std::string& state_dir);

// Writes `file` to `path` atomically (a reader sees the whole old or the whole new file).
Status writeExport(const std::string& path, const ExportFile& file);

// The directory of the backup share where the CMS master leaves an export after every new
// version: <state_dir>/share/cms. Pure string work.
std::string shareExportDir(const std::string& state_dir);
// The share file for an export: cms-export-e<epoch>-v<number>.json in shareExportDir.
std::string shareExportPath(const std::string& state_dir, const ExportFile& file);
// The newest export on the share (highest epoch, then version). NotFound when there is none.
Result<std::string> latestShareExport(const std::string& state_dir);
// Keeps the newest `keep` exports on the share, deletes older ones (best effort).
void pruneShareExports(const std::string& state_dir, size_t keep);

}  // namespace tandem::cms
