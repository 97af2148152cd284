// The room history in `mgc.messages`: what a stored message is, and the queries behind XEP-0313
// (MAM, with XEP-0059 paging) and XEP-0045 history on join.
//
// A message is stored once, by the group-commit writer (group_commit.h), before anyone sees it.
// Its XEP-0359 stanza id is also its MAM/RSM id. Order within a room is `seq` order, which is
// commit order because a room has one owning server whose single writer commits batches one
// after the other. Functions here block on the connection; same thread rule as Connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/connection.h"

namespace tandem::chat {

struct StoredMessage {
  int64_t seq = 0;          // assigned by the store; 0 until committed
  std::string room;         // room node (local part), e.g. "ops"
  std::string stanza_id;    // XEP-0359 id assigned by us
  std::string origin_id;    // the sender's XEP-0359 origin-id, "" when none
  std::string sender;       // real bare JID of the author
  std::string nick;         // nickname at the time of sending
  std::string body;         // message body text ("" for subject changes without body)
  std::string stanza;       // the <message/> as broadcast (from = room@service/nick)
  int64_t ts_us = 0;        // server receive time, microseconds since the Unix epoch (UTC)
};

struct ArchiveQuery {
  std::string room;
  std::optional<int64_t> start_us, end_us;  // inclusive bounds on ts, µs since epoch
  std::string after_id;     // RSM <after>: messages after this stanza id
  std::string before_id;    // RSM <before>id</before>: messages before this id
  bool last_page = false;   // RSM empty <before/>: the newest page
  std::string with_nick;    // only messages from this occupant nick ("" = everyone)
  size_t max = 50;          // page size; callers cap it (MAM: at most 250)
};

struct ArchivePage {
  std::vector<StoredMessage> messages;  // oldest first
  bool complete = false;    // true when no message lies beyond this page in paging direction
  int64_t count = -1;       // total matching messages (room + time + nick), -1 when not counted
};

// Runs a MAM query. InvalidArgument when after_id/before_id names no message of the room
// (XEP-0059 item-not-found); Unavailable/Internal from the store.
Result<ArchivePage> queryArchive(store::Connection& c, const ArchiveQuery& q);

// The newest `max_stanzas` messages of `room` (optionally only those at/after `since_us`),
// oldest first: the XEP-0045 discussion history sent on join.
Result<std::vector<StoredMessage>> recentHistory(store::Connection& c, const std::string& room,
                                                 size_t max_stanzas,
                                                 std::optional<int64_t> since_us = {});

// Number of stored messages of a room (metrics, `chat room show`).
Result<int64_t> countMessages(store::Connection& c, const std::string& room);

// XEP-0082 date-time in UTC with microseconds: "2026-11-25T13:45:01.123456Z".
std::string formatTimestamp(int64_t ts_us);
// Parses XEP-0082 date-time (with 'Z' or ±hh:mm, optional fraction); nullopt when malformed.
std::optional<int64_t> parseTimestamp(const std::string& text);
// Microseconds since the epoch, now (system clock).
int64_t nowMicros();

}  // namespace tandem::chat
