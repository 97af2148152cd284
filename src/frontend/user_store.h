// UserStore: a front-end pool's user data in its `rtc` database (DESIGN.md §4): accounts with
// SCRAM credentials (never passwords), rosters, pending subscription requests, offline messages
// and block lists. The partner pool's Backup Service copies these tables by PostgreSQL logical
// replication (src/backup): every table here needs a primary key to be copied.
//
// All methods block on PostgreSQL (call them off the network thread) and are thread-safe (they
// lease connections from the pool). Failures carry the store's Status (Unavailable when the
// store cannot be reached) with context naming the user.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/pool.h"
#include "xmpp/sasl.h"

namespace tandem::frontend {

struct UserRecord {
  std::string name;  // localpart
  std::string pool;  // home pool FQDN
  std::string created_at;
};

struct RosterItem {
  std::string contact;               // bare JID
  std::string name;                  // display name, "" when none
  std::string subscription = "none";  // none | to | from | both
  bool ask = false;                   // outbound subscription request pending
  bool approved = false;              // pre-approved: the contact's request will be granted
                                      // at once (RFC 6121 §3.4)
  std::vector<std::string> groups;
};

struct OfflineMessage {
  long long id = 0;
  std::string stanza;  // serialised <message/>
  std::string stored_at;  // UTC ISO-8601
};

class UserStore {
 public:
  // `addresses`: the pool store and its mirror; `password`: the deployment secret.
  UserStore(std::vector<std::string> addresses, std::string password, size_t max_connections = 4);

  // Creates `rtc` when missing and applies the front-end migrations. Idempotent.
  Status migrate();

  // Creates the user with credentials for both SCRAM hashes. Conflict when it exists and
  // `if_missing` is false; OK (nothing changed) when it exists and `if_missing` is true.
  Status createUser(const std::string& name, const std::string& pool, const std::string& password,
                    bool if_missing = false);
  // NotFound when there is no such user. Removes the roster, offline messages and blocks too.
  Status removeUser(const std::string& name);
  Status setPassword(const std::string& name, const std::string& password);
  Result<std::vector<UserRecord>> listUsers();
  // nullopt when the user does not exist.
  Result<std::optional<UserRecord>> findUser(const std::string& name);
  Result<std::optional<xmpp::ScramCredentials>> credentials(const std::string& name,
                                                             xmpp::ScramHash hash);

  // Rosters, keyed by the owner's bare JID.
  Result<std::vector<RosterItem>> roster(const std::string& owner);
  Status putRosterItem(const std::string& owner, const RosterItem& item);
  Status removeRosterItem(const std::string& owner, const std::string& contact);

  // Inbound subscription requests not yet answered (RFC 6121 §3.1.3 "pending in").
  Status addPendingIn(const std::string& owner, const std::string& contact,
                      const std::string& stanza);
  Status removePendingIn(const std::string& owner, const std::string& contact);
  Result<std::vector<std::pair<std::string, std::string>>> pendingIn(const std::string& owner);

  // Offline messages: store one; take all (deleted in the same transaction: at-most-once
  // delivery from the store's point of view, the session then owns them).
  Status storeOffline(const std::string& owner, const std::string& stanza);
  Result<std::vector<OfflineMessage>> takeOffline(const std::string& owner);

  Result<std::vector<std::string>> blocks(const std::string& owner);
  Status setBlocked(const std::string& owner, const std::vector<std::string>& contacts,
                    bool blocked);
  // Removes every block of `owner` (XEP-0191 unblock-all).
  Status clearBlocks(const std::string& owner);

 private:
  std::vector<std::string> addresses_;
  std::string password_;
  std::unique_ptr<store::ConnectionPool> pool_;
};

}  // namespace tandem::frontend
