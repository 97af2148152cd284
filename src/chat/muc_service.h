// MucService: the XEP-0045 multi-user chat service of one chat server, with XEP-0313 archives
// (paged with XEP-0059), XEP-0359 stable ids and categories.
//
// What it guarantees (docs/persistent-chat.md):
// - A groupchat message is committed to `mgc` by the group-commit writer before it is
//   broadcast, and the sender's reflection is that broadcast: a reflection is an
//   acknowledgement of durability. A message that cannot be stored is answered with an error
//   (wait / resource-constraint) and is never broadcast.
// - It serves only rooms this server owns (`owns(room)`, the hash ring over the active
//   servers); stanzas for other rooms get service-unavailable. setOwnership() evicts the
//   occupants of rooms that moved away (unavailable presence, status 332) so they rejoin the
//   new owner.
// - Room state (config, subject, affiliations) persists in `mgc` (room_store.h); occupants
//   live in memory only, so after a restart clients rejoin.
// Hostile input costs others nothing: nicknames and bodies are bounded, floods are capped per
// room, and every refusal is the standard stanza error.
// Thread rule: every method runs on the home executor given at construction.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <asio.hpp>

#include "chat/db_runner.h"
#include "chat/group_commit.h"
#include "chat/room_store.h"
#include "chat/schema.h"
#include "xml/element.h"

namespace tandem::chat {

struct MucLimits {
  size_t max_nick_bytes = 64;             // longer nicknames: jid-malformed / not-acceptable
  size_t max_body_bytes = 64 * 1024;      // longer messages: not-acceptable
  size_t max_occupants_per_room = 5000;   // joins beyond: service-unavailable
  size_t max_history_stanzas = 50;        // history on join, upper bound (default 20)
  size_t max_mam_page = 500;              // MAM page size cap (a 500-result page, #14)
  size_t max_rooms_loading = 1000;        // rooms loading at once; beyond: wait/resource-constraint
  size_t max_nick_changes_per_10s = 5;    // per occupant; beyond: wait/resource-constraint
};

struct MucStats {
  uint64_t rooms = 0, occupants = 0;
  uint64_t messages_stored = 0, messages_broadcast = 0, deliveries = 0, messages_refused = 0;
  uint64_t mam_queries = 0;
};

class MucService {
 public:
  struct Options {
    std::string service;   // MUC service JID, e.g. "chat.example.test"
    std::string server;    // this chat server's FQDN (for logs)
    std::string domain;    // the XMPP domain (for "@domain" category entries; informational)
    MucLimits limits;
  };
  // Sends one serialized stanza towards the front ends.
  using Sender = std::function<void(std::string)>;
  using OwnerCheck = std::function<bool(const std::string& room)>;

  // Requires: `writer` and `db` outlive the service; all run with `home` as their home.
  MucService(asio::any_io_executor home, Options o, GroupCommitWriter& writer, DbRunner& db,
             Sender send, OwnerCheck owns);
  ~MucService();

  // One stanza routed to the service or one of its rooms.
  void handle(xml::Element stanza);

  // The ownership rule changed (active servers): evict rooms this server no longer owns.
  // With `active` false every room is evicted and every stanza refused.
  void setOwnership(OwnerCheck owns, bool active);

  // The category a room created over XMPP starts in (CMS `chat.<pool>.default_category`,
  // default `general`); applies to rooms loaded from now on.
  void setDefaultCategory(std::string category);

  // Administration (`tandemctl chat room add|remove` through the chat server's admin endpoint),
  // done by the server that owns the room so that the live room follows. `done` runs on the
  // home executor: true when the room was created / removed, false when it already existed /
  // did not exist. Errors: Unavailable when this server does not serve the room (another one
  // of the active servers does); FailedPrecondition when the category does not exist (add);
  // the store's error (nothing changed).
  // Removing tells every occupant the room was destroyed (XEP-0045 §10.9) before deleting its
  // record and history.
  using AdminDone = std::function<void(Result<bool>)>;
  void adminAddRoom(const std::string& name, const std::string& category,
                    const std::string& title, AdminDone done);
  void adminRemoveRoom(const std::string& name, const std::string& reason, AdminDone done);

  MucStats stats() const;
  // Room names currently held in memory (owned and loaded).
  std::vector<std::string> loadedRooms() const;

 private:
  struct Occupant {
    std::string nick;
    std::string bare;                 // real bare JID
    std::set<std::string> sessions;   // full JIDs joined under this nick
    std::string role;                 // moderator | participant | visitor
    std::vector<xml::Element> status; // <show/>, <status/> of the last presence
    bool history_pending = false;     // history still loading: live messages buffered
    std::vector<std::string> buffered;
    std::deque<std::chrono::steady_clock::time_point> nick_changes;  // in the last 10 s
  };
  struct Room {
    RoomRecord rec;
    Category category;                          // the room's category (creation/join rules)
    bool loaded = false, exists = false, locked = false;
    // Created by a join whose creator the default category does not admit: held in memory
    // only (locked) until its first configuration form names a category that admits them.
    bool unsaved = false;
    std::vector<xml::Element> waiting;          // stanzas that arrived while loading
    std::map<std::string, Occupant> occupants;  // by nick
    std::map<std::string, std::string> nick_of; // full JID -> nick
  };

  // muc_service.cc: dispatch, loading, presence (join/leave), eviction
  void dispatch(Room& room, xml::Element stanza);
  void loadRoom(const std::string& name);
  void onPresence(Room& room, const xml::Element& p, const std::string& nick);
  void join(Room& room, const xml::Element& p, const std::string& nick);
  void resync(Room& room, const xml::Element& p, Occupant& o);
  void changeNick(Room& room, const xml::Element& p, const std::string& old_nick,
                  const std::string& new_nick);
  void sendNickChange(const Room& room, const Occupant& who, const std::string& old_nick,
                      const std::string& new_nick, const std::string& to, bool self);
  void leave(Room& room, const std::string& full_jid, const std::string& status_text,
             const std::vector<int>& codes, const std::string& actor_reason = "");
  void sendRoomPresence(const Room& room, const Occupant& who, const std::string& to,
                        bool self, const std::vector<int>& extra_codes, bool unavailable);
  void broadcastPresence(const Room& room, const Occupant& who, const std::vector<int>& codes,
                         bool unavailable);
  void sendHistoryAndSubject(Room& room, const std::string& nick, const std::string& full,
                             size_t max_stanzas, std::optional<int64_t> since_us);
  void evict(Room& room, int code, const std::string& why);

  // muc_register.cc: registration (XEP-0045 §7.10), reserved nicknames (§7.12), room disco#info
  void onRoomDiscoInfo(Room& room, const xml::Element& iq, const xml::Element& query);
  void onRegisterIq(Room& room, const xml::Element& iq, const xml::Element& query);
  // The nickname `bare` registered with the room, "" when none.
  std::string reservedNick(const Room& room, const std::string& bare) const;
  // Whether `nick` is registered by someone other than `bare`.
  bool isReservedForOther(const Room& room, const std::string& nick, const std::string& bare) const;

  // muc_admin.cc: destroy, administrator's room commands
  void tellDestroyed(Room& room, const std::string& reason, const std::string& alternate);
  void destroyRoom(Room& room, const std::string& reason, const std::string& alternate);
  Status servesForAdmin(const std::string& name) const;
  std::string affiliationOf(const Room& room, const std::string& bare) const;
  std::string roleFor(const Room& room, const std::string& affiliation) const;
  void persistRoom(const Room& room);
  void persistAffiliation(const Room& room, const std::string& jid, const std::string& aff);
  std::string roomJid(const Room& room) const { return room.rec.name + "@" + options_.service; }

  // muc_messages.cc: groupchat (durable), subject, private messages, invitations
  void onMessage(Room& room, const xml::Element& m, const std::string& nick);
  void onGroupchat(Room& room, const xml::Element& m, const std::string& sender_nick);
  void onSubject(Room& room, const xml::Element& m, const std::string& sender_nick);
  void onInvite(Room& room, const xml::Element& m, const xml::Element& invite);
  void deliver(Room& room, const std::string& stanza_without_to);

  // muc_iq.cc: disco, owner (config, destroy), admin (affiliations, roles), MAM, ping
  void onServiceIq(const xml::Element& iq);
  void onRoomIq(Room& room, const xml::Element& iq);
  void onOwnerIq(Room& room, const xml::Element& iq, const xml::Element& query);
  void onAdminIq(Room& room, const xml::Element& iq, const xml::Element& query);
  void onMamQuery(Room& room, const xml::Element& iq, const xml::Element& query);
  xml::Element roomDiscoInfo(const Room& room) const;
  xml::Element configForm(const Room& room) const;
  void applyConfigForm(Room& room, const xml::Element& x);
  Status checkConfigForm(const Room& room, const xml::Element& x) const;
  // Applies a submitted configuration (x may be null: an empty instant-room form), unlocks the
  // room, saves it, answers `iq`, and adjusts occupants to the new membership/moderation.
  void finishConfig(Room& room, const xml::Element& iq, const xml::Element* x);
  // Checks `category` (it must exist and admit the submitter as a creator), then moves the
  // room there (saving an unsaved room) and finishes the configuration.
  void configureInCategory(Room& room, const xml::Element& iq, const xml::Element* x,
                           const std::string& category);

  void sendError(const xml::Element& stanza, const std::string& type, const std::string& cond,
                 const std::string& text = "");
  void refuseNickname(const Room& room, const xml::Element& p);
  void send(const xml::Element& e) { send_(e.toString()); }

  asio::any_io_executor home_;
  Options options_;
  std::string default_category_ = kDefaultCategory;
  GroupCommitWriter& writer_;
  DbRunner& db_;
  Sender send_;
  OwnerCheck owns_;
  bool active_ = true;
  std::map<std::string, std::unique_ptr<Room>> rooms_;
  MucStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards posted continuations
};

// XEP-0045 namespaces.
inline constexpr const char* kNsMuc = "http://jabber.org/protocol/muc";
inline constexpr const char* kNsMucUser = "http://jabber.org/protocol/muc#user";
inline constexpr const char* kNsMucAdmin = "http://jabber.org/protocol/muc#admin";
inline constexpr const char* kNsMucOwner = "http://jabber.org/protocol/muc#owner";
inline constexpr const char* kNsMam = "urn:xmpp:mam:2";
inline constexpr const char* kNsRsm = "http://jabber.org/protocol/rsm";
inline constexpr const char* kNsSid = "urn:xmpp:sid:0";
inline constexpr const char* kNsData = "jabber:x:data";
inline constexpr const char* kNsRegister = "jabber:iq:register";

}  // namespace tandem::chat
