// Runbook journals in a local file, in the CMS, or in the CMS with a local fallback.
#include "hadr/journal.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

#include "common/files.h"

namespace tandem::hadr {

// ---- FileJournalStore ----------------------------------------------------------------------

std::string FileJournalStore::path(const std::string& key) const {
  std::string name = key;
  for (char& c : name) {
    if (c == '/') c = '-';
  }
  return dir_ + "/" + name + ".json";
}

Result<std::optional<nlohmann::json>> FileJournalStore::load(const std::string& key) {
  struct stat st {};
  if (::stat(path(key).c_str(), &st) != 0) return std::optional<nlohmann::json>{};
  auto text = readFile(path(key));
  if (!text) return fail(text.error());
  try {
    return std::optional<nlohmann::json>(nlohmann::json::parse(*text));
  } catch (const std::exception& e) {
    return fail(StatusCode::kDataLoss,
                "runbook journal `" + path(key) + "` is not valid JSON: " + e.what());
  }
}

Status FileJournalStore::save(const std::string& key, const nlohmann::json& doc) {
  TANDEM_RETURN_IF_ERROR(makeDirs(dir_, 0755));
  return writeFileAtomic(path(key), doc.dump(2) + "\n", 0644);
}

Status FileJournalStore::remove(const std::string& key) {
  if (::unlink(path(key).c_str()) != 0 && errno != ENOENT) {
    return unavailable("cannot remove runbook journal `" + path(key) + "`: " + std::strerror(errno));
  }
  return Status::ok();
}

// ---- FunctionJournalStore ------------------------------------------------------------------

Result<std::optional<nlohmann::json>> FunctionJournalStore::load(const std::string& key) {
  auto value = get_(settingKey(key));
  if (!value) return fail(value.error());
  if (!*value || (*value)->is_null()) return std::optional<nlohmann::json>{};
  return *value;
}

Status FunctionJournalStore::save(const std::string& key, const nlohmann::json& doc) {
  return set_(settingKey(key), doc);
}

Status FunctionJournalStore::remove(const std::string& key) {
  return set_(settingKey(key), nullptr);
}

// ---- FallbackJournalStore ------------------------------------------------------------------

namespace {
long seqOf(const std::optional<nlohmann::json>& doc) {
  if (!doc || !doc->is_object()) return -1;
  return doc->value("seq", 0L);
}
}  // namespace

Result<std::optional<nlohmann::json>> FallbackJournalStore::load(const std::string& key) {
  auto local = local_->load(key);
  if (!local) return fail(local.error());
  auto remote = primary_->load(key);
  if (!remote) {
    if (remote.error().code() != StatusCode::kUnavailable) return fail(remote.error());
    used_local_ = true;  // the CMS is down: keep journaling locally
    return *local;
  }
  if (seqOf(*local) > seqOf(*remote)) {
    // The local copy was written while the CMS was unreachable: reconcile it into the CMS.
    if (primary_->save(key, **local).isOk()) {
      (void)local_->remove(key);  // a stale local copy is harmless: its seq is not higher
    } else {
      used_local_ = true;
    }
    return *local;
  }
  return *remote;
}

Status FallbackJournalStore::save(const std::string& key, const nlohmann::json& doc) {
  if (!used_local_) {
    Status st = primary_->save(key, doc);
    if (st.isOk()) return st;
    if (st.code() != StatusCode::kUnavailable) return st;
    used_local_ = true;
  }
  return local_->save(key, doc);
}

Status FallbackJournalStore::remove(const std::string& key) {
  Status a = primary_->remove(key);
  Status b = local_->remove(key);
  return a.isOk() ? b : a;
}

std::string FallbackJournalStore::where(const std::string& key) const {
  return used_local_ ? local_->where(key) + " (the CMS was unreachable; reconciled on the next run)"
                     : primary_->where(key);
}

}  // namespace tandem::hadr
