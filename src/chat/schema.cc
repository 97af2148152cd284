// Migrations of the chat pool's databases `mgc` and `mgccomp`.
#include "chat/schema.h"

namespace tandem::chat {

const std::vector<store::Migration>& mgcMigrations() {
  static const std::vector<store::Migration> kList = {
      {1, "categories, rooms, affiliations, messages",
       R"sql(
CREATE TABLE categories (
  name        text PRIMARY KEY,
  description text NOT NULL DEFAULT '',
  creators    text[] NOT NULL DEFAULT '{*}',   -- who may create rooms: bare JIDs, '@domain', '*'
  members     text[] NOT NULL DEFAULT '{*}',   -- who may join its rooms: same forms
  created_at  timestamptz NOT NULL DEFAULT now());
INSERT INTO categories(name, description) VALUES ('general', 'Default category');
CREATE TABLE rooms (
  name         text PRIMARY KEY,               -- the room's node (local part), lower case
  category     text NOT NULL REFERENCES categories(name),
  config       jsonb NOT NULL DEFAULT '{}',
  subject      text NOT NULL DEFAULT '',
  subject_nick text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now());
CREATE TABLE affiliations (
  room        text NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
  jid         text NOT NULL,
  affiliation text NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
  reason      text NOT NULL DEFAULT '',
  PRIMARY KEY (room, jid));
CREATE TABLE messages (
  seq        bigserial PRIMARY KEY,
  room       text NOT NULL,
  stanza_id  text NOT NULL UNIQUE,             -- XEP-0359 id we assign, also the MAM/RSM id
  origin_id  text NOT NULL DEFAULT '',
  sender     text NOT NULL,                    -- real bare JID of the author
  nick       text NOT NULL,
  body       text NOT NULL DEFAULT '',
  stanza     text NOT NULL,                    -- the message as broadcast to occupants
  ts         timestamptz NOT NULL,
  written_by text NOT NULL);                   -- chat server FQDN (compliance feed cursor)
CREATE INDEX messages_room_seq ON messages(room, seq);
CREATE INDEX messages_room_ts ON messages(room, ts);
CREATE INDEX messages_writer_seq ON messages(written_by, seq);
)sql"},
  };
  return kList;
}

const std::vector<store::Migration>& complianceMigrations() {
  static const std::vector<store::Migration> kList = {
      {1, "compliance queue, feed cursors, export log",
       R"sql(
CREATE TABLE queue (
  mgc_seq    bigint PRIMARY KEY,               -- mgc.messages.seq: the exactly-once key
  room       text NOT NULL,
  stanza_id  text NOT NULL,
  sender     text NOT NULL,
  nick       text NOT NULL,
  body       text NOT NULL,
  ts         timestamptz NOT NULL,
  written_by text NOT NULL,
  queued_at  timestamptz NOT NULL DEFAULT now());
CREATE TABLE feed_cursor (
  writer   text PRIMARY KEY,
  last_seq bigint NOT NULL);
CREATE TABLE exports (
  id         bigint PRIMARY KEY,
  file       text NOT NULL,
  messages   integer NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now());
CREATE SEQUENCE export_ids;
)sql"},
      {2, "compliance adapter heartbeat",
       R"sql(
-- One row per compliance adapter (the chat server it runs beside): when it last ran an export
-- pass, at which interval, and what that pass did. `tandemctl chat compliance status` reads it
-- to say whether an adapter is draining the queue at all.
CREATE TABLE adapter (
  server       text PRIMARY KEY,
  last_run_at  timestamptz NOT NULL,
  interval_ms  integer NOT NULL,
  last_outcome text NOT NULL DEFAULT '');
)sql"},
  };
  return kList;
}

Status applyMgcSchema(store::Connection& c) {
  return store::applyMigrations(c, "chat.mgc", mgcMigrations());
}

Status applyComplianceSchema(store::Connection& c) {
  return store::applyMigrations(c, "chat.mgccomp", complianceMigrations());
}

Status ensureChatSchemas(const std::vector<std::string>& addresses, const std::string& password) {
  for (const char* db : {kMgcDatabase, kComplianceDatabase}) {
    TANDEM_RETURN_IF_ERROR(store::ensureDatabase(addresses, password, db));
    auto c = store::Connection::open(store::connectionString(addresses, db, password));
    if (!c) return c.error().withContext(std::string("database `") + db + "`");
    TANDEM_RETURN_IF_ERROR(std::string(db) == kMgcDatabase ? applyMgcSchema(**c)
                                                          : applyComplianceSchema(**c));
  }
  return Status::ok();
}

}  // namespace tandem::chat
