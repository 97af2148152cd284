// Runbook journals: where a runbook run records each step before and after it runs, so that a
// run that dies can be resumed (`--resume`) and a rerun is safe.
//
// A journal is one JSON document per (runbook, subject), e.g. key "chat-failover/chat.example.test".
// The preferred home is the CMS (every operator machine sees it); when the CMS is unreachable the
// runner keeps going with a local file under `<state dir>/journal/` and reconciles it into the
// CMS the next time it can (FallbackJournalStore). Documents carry a `seq` that grows with every
// save: the higher `seq` wins when two copies disagree.
//
// Implementations block on I/O. Not thread-safe: one runner uses one store.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tandem::hadr {

class JournalStore {
 public:
  virtual ~JournalStore() = default;
  // The journal under `key`, or nullopt when there is none. Unavailable when the store cannot be
  // read (the CMS is down); the caller may fall back to another store.
  virtual Result<std::optional<nlohmann::json>> load(const std::string& key) = 0;
  // Replaces the journal under `key`. Durable when it returns OK. Unavailable when it cannot.
  virtual Status save(const std::string& key, const nlohmann::json& doc) = 0;
  // Removes the journal under `key` (OK when absent).
  virtual Status remove(const std::string& key) = 0;
  // Where the journal lives, for messages: "the CMS", "/var/lib/tandem/journal/x.json".
  virtual std::string where(const std::string& key) const = 0;
};

// Journals as files `<dir>/<key with '/' -> '-'>.json`, written atomically (fsync + rename).
class FileJournalStore final : public JournalStore {
 public:
  explicit FileJournalStore(std::string dir) : dir_(std::move(dir)) {}
  Result<std::optional<nlohmann::json>> load(const std::string& key) override;
  Status save(const std::string& key, const nlohmann::json& doc) override;
  Status remove(const std::string& key) override;
  std::string where(const std::string& key) const override { return path(key); }
  std::string path(const std::string& key) const;

 private:
  std::string dir_;
};

// Journals in a key/value service reached through two functions (the CMS settings API:
// get returns nullopt for an absent key; both return Unavailable when the service is down).
// The CMS key is "runbook.journal.<key>".
class FunctionJournalStore final : public JournalStore {
 public:
  using Getter = std::function<Result<std::optional<nlohmann::json>>(const std::string& key)>;
  using Setter = std::function<Status(const std::string& key, const nlohmann::json& value)>;
  FunctionJournalStore(std::string name, Getter get, Setter set)
      : name_(std::move(name)), get_(std::move(get)), set_(std::move(set)) {}
  Result<std::optional<nlohmann::json>> load(const std::string& key) override;
  Status save(const std::string& key, const nlohmann::json& doc) override;
  Status remove(const std::string& key) override;
  std::string where(const std::string& /*key*/) const override { return name_; }
  static std::string settingKey(const std::string& key) { return "runbook.journal." + key; }

 private:
  std::string name_;
  Getter get_;
  Setter set_;
};

// The CMS first, the local file when the CMS is unreachable. load() returns the copy with the
// higher `seq`; when the local copy is newer and the CMS answers, it is written to the CMS and the
// local file removed (reconciled). save() writes the CMS; on Unavailable it writes the local file
// and remembers that it did (usedLocal()).
class FallbackJournalStore final : public JournalStore {
 public:
  FallbackJournalStore(std::unique_ptr<JournalStore> primary, std::unique_ptr<JournalStore> local)
      : primary_(std::move(primary)), local_(std::move(local)) {}
  Result<std::optional<nlohmann::json>> load(const std::string& key) override;
  Status save(const std::string& key, const nlohmann::json& doc) override;
  Status remove(const std::string& key) override;
  std::string where(const std::string& key) const override;
  bool usedLocal() const { return used_local_; }

 private:
  std::unique_ptr<JournalStore> primary_;
  std::unique_ptr<JournalStore> local_;
  bool used_local_ = false;
};

}  // namespace tandem::hadr
