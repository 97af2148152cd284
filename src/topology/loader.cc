// Topology loader: YAML text -> Topology, with a line for every element and key, and a
// Problem (never an exception) for every shape error.
//
// - yaml-cpp parses the whole text first; a syntax error is one `yaml-syntax` problem.
// - Each element (site, store, pool, server, user, room) is read by a MapReader that records
//   key lines and reports wrong types, missing keys, unknown and repeated keys.
// - Cross-references and deployment rules are not checked here (validator.cc).
#include "topology/loader.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <vector>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include "common/files.h"
#include "topology/internal/yaml_reader.h"
#include "topology/validator.h"

namespace tandem::topology {

using internal::listItems;
using internal::MapReader;
using internal::nodeLine;
using internal::ProblemSink;

std::string Problem::toString() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ": " + message;
}

namespace {

// ---- Elements --------------------------------------------------------------------------------

// Reads the item as a map, or reports wrong-type and returns false.
bool isElementMap(const YAML::Node& item, ProblemSink& sink, int line, const std::string& kind,
                  const std::string& example) {
  bool is_map = false;
  try {
    is_map = item.IsMap();
  } catch (const std::exception&) {
  }
  if (!is_map) {
    sink.add(line, "wrong-type",
             "each item of `" + kind + "s` must be a map such as `" + example + "`, not " +
                 internal::nodeKindName(item));
  }
  return is_map;
}

Site readSite(const YAML::Node& node, ProblemSink& sink) {
  Site site;
  site.line = nodeLine(node, 0);
  MapReader r(node, sink, site.key_lines, site.line, "the site at line " + std::to_string(site.line));
  if (r.readString("name", site.name, true, "every site needs a name")) {
    r.setSubject("site `" + site.name + "`");
  }
  r.readStringList("low_latency_to", site.low_latency_to);
  r.finish({"name", "low_latency_to"});
  return site;
}

void readLogShipping(MapReader& store_reader, Store& store, ProblemSink& sink) {
  const YAML::Node* v = store_reader.value("log_shipping");
  if (v == nullptr) return;
  int line = store_reader.keyLine("log_shipping");
  bool is_map = false;
  try {
    is_map = v->IsMap();
  } catch (const std::exception&) {
  }
  if (!is_map) {
    sink.add(nodeLine(*v, line), "wrong-type",
             "`log_shipping` of " + store_reader.subject() +
                 " must be a map such as `{to: pcb, share: share/pc1, interval_s: 5}`, not " +
                 internal::nodeKindName(*v));
    return;
  }
  LogShipping ls;
  ls.line = line;
  MapReader r(*v, sink, ls.key_lines, line, "`log_shipping` of " + store_reader.subject());
  r.readString("to", ls.to, true, "name the backup store that restores the log backups");
  r.readString("share", ls.share, true, "give the backup share directory");
  r.readInt("interval_s", ls.interval_s);
  r.finish({"to", "share", "interval_s"});
  store.log_shipping = std::move(ls);
}

Store readStore(const YAML::Node& node, ProblemSink& sink) {
  Store store;
  store.line = nodeLine(node, 0);
  MapReader r(node, sink, store.key_lines, store.line,
              "the store at line " + std::to_string(store.line));
  if (r.readString("name", store.name, true, "every store needs a unique name")) {
    r.setSubject("store `" + store.name + "`");
  }
  r.readString("site", store.site, true, "name the site it runs in");
  r.readString("address", store.address, true, "give its IP address");
  r.readString("mirror", store.mirror, false);
  r.readString("witness", store.witness, false);
  r.readBool("witness_only", store.witness_only);
  readLogShipping(r, store, sink);
  r.finish({"name", "site", "address", "mirror", "witness", "witness_only", "log_shipping"});
  return store;
}

Server readServer(const YAML::Node& node, const Pool& pool, const std::string& pool_subject,
                  ProblemSink& sink) {
  Server server;
  server.line = nodeLine(node, pool.line);
  MapReader r(node, sink, server.key_lines, server.line,
              "the server at line " + std::to_string(server.line) + " of " + pool_subject);
  if (r.readString("fqdn", server.fqdn, true, "every server needs its FQDN")) {
    r.setSubject("server `" + server.fqdn + "`");
  }
  r.readString("address", server.address, true, "give its IP address");
  if (!r.readString("site", server.site, false)) server.site = pool.site;
  r.finish({"fqdn", "address", "site"});
  return server;
}

// Keys each role accepts beyond the common ones, and the ones it requires.
const std::vector<std::string> kCommonPoolKeys = {"fqdn", "role", "site", "servers"};
const std::vector<std::string> kFrontendKeys = {"store", "backup_pool", "edge_pool", "cms"};
const std::vector<std::string> kChatKeys = {"store", "backup_store", "backup_mirror",
                                            "frontend_pool", "active_servers"};
const std::vector<std::string> kEdgeKeys = {"next_hop", "federation"};

const std::vector<std::string>& roleKeys(PoolRole role) {
  switch (role) {
    case PoolRole::kFrontend: return kFrontendKeys;
    case PoolRole::kChat: return kChatKeys;
    case PoolRole::kEdge: return kEdgeKeys;
  }
  return kFrontendKeys;
}

std::string aPool(PoolRole role) {
  switch (role) {
    case PoolRole::kFrontend: return "a front-end pool";
    case PoolRole::kChat: return "a chat pool";
    case PoolRole::kEdge: return "an edge pool";
  }
  return "a pool";
}

// Reports keys that belong to another role (e.g. `next_hop` on a front-end pool).
void checkRoleKeys(const MapReader& r, const Pool& pool, ProblemSink& sink) {
  const auto& own = roleKeys(pool.role);
  for (PoolRole other : {PoolRole::kFrontend, PoolRole::kChat, PoolRole::kEdge}) {
    if (other == pool.role) continue;
    for (const auto& key : roleKeys(other)) {
      if (std::find(own.begin(), own.end(), key) != own.end() || !r.has(key)) continue;
      sink.add(r.keyLine(key), "key-not-for-role",
               "key `" + key + "` does not apply to " + r.subject() + ", " +
                   aPool(pool.role) + "; it is for " + aPool(other).substr(aPool(other).find(' ') + 1) + "s");
    }
  }
}

// Drops what a pool's role does not use (already reported as key-not-for-role), so that the
// validator does not count a chat pool's `cms: true` as a second CMS.
void clearOtherRoleFields(Pool& pool) {
  if (pool.role != PoolRole::kFrontend) {
    pool.backup_pool.clear();
    pool.edge_pool.clear();
    pool.cms = false;
  }
  if (pool.role != PoolRole::kChat) {
    pool.backup_store.clear();
    pool.backup_mirror.clear();
    pool.frontend_pool.clear();
    pool.active_servers.clear();
  }
  if (pool.role != PoolRole::kEdge) {
    pool.next_hop.clear();
    pool.federation = false;
  }
  if (pool.role == PoolRole::kEdge) pool.store.clear();
}

Pool readPool(const YAML::Node& node, ProblemSink& sink) {
  Pool pool;
  pool.line = nodeLine(node, 0);
  MapReader r(node, sink, pool.key_lines, pool.line,
              "the pool at line " + std::to_string(pool.line));
  if (r.readString("fqdn", pool.fqdn, true, "every pool needs its FQDN")) {
    r.setSubject("pool `" + pool.fqdn + "`");
  }
  std::string role;
  bool role_known = false;
  if (r.readString("role", role, true, "give one of frontend, chat, edge")) {
    if (auto parsed = parsePoolRole(role)) {
      pool.role = *parsed;
      role_known = true;
    } else {
      sink.add(r.keyLine("role"), "invalid-role",
               "role `" + role + "` of " + r.subject() +
                   " is not a pool role; use frontend, chat or edge");
    }
  }
  r.readString("site", pool.site, true, "name the site it runs in");
  r.readString("store", pool.store, role_known && pool.role != PoolRole::kEdge,
               "name the store that holds its databases");
  r.readString("backup_pool", pool.backup_pool, false);
  r.readString("edge_pool", pool.edge_pool, false);
  r.readBool("cms", pool.cms);
  r.readString("backup_store", pool.backup_store, false);
  r.readString("backup_mirror", pool.backup_mirror, false);
  r.readString("frontend_pool", pool.frontend_pool, role_known && pool.role == PoolRole::kChat,
               "name the front-end pool its chat servers attach to");
  r.readStringList("active_servers", pool.active_servers);
  r.readString("next_hop", pool.next_hop, role_known && pool.role == PoolRole::kEdge,
               "name the front-end pool that receives its inbound traffic");
  r.readBool("federation", pool.federation);

  if (const YAML::Node* servers = r.value("servers")) {
    for (const auto& item : listItems(*servers, sink, r.keyLine("servers"),
                                      "`servers` of " + r.subject())) {
      int line = nodeLine(item, r.keyLine("servers"));
      if (isElementMap(item, sink, line, "server", "{fqdn: fe1a.example.test, address: 127.0.1.1}")) {
        pool.servers.push_back(readServer(item, pool, r.subject(), sink));
      }
    }
  } else {
    sink.add(pool.line, "missing-key", r.subject() + " has no `servers`; list at least one");
  }

  pool.role_known = role_known;
  std::vector<std::string> allowed = kCommonPoolKeys;
  if (role_known) {
    allowed.insert(allowed.end(), roleKeys(pool.role).begin(), roleKeys(pool.role).end());
    checkRoleKeys(r, pool, sink);
    clearOtherRoleFields(pool);
    // Keys of other roles were reported above; do not report them again as unknown.
    for (PoolRole other : {PoolRole::kFrontend, PoolRole::kChat, PoolRole::kEdge}) {
      allowed.insert(allowed.end(), roleKeys(other).begin(), roleKeys(other).end());
    }
  } else {
    for (PoolRole any : {PoolRole::kFrontend, PoolRole::kChat, PoolRole::kEdge}) {
      allowed.insert(allowed.end(), roleKeys(any).begin(), roleKeys(any).end());
    }
  }
  r.finish(allowed);
  return pool;
}

User readUser(const YAML::Node& node, ProblemSink& sink) {
  User user;
  user.line = nodeLine(node, 0);
  MapReader r(node, sink, user.key_lines, user.line,
              "the user at line " + std::to_string(user.line));
  if (r.readString("name", user.name, true, "give the user name (the part before @)")) {
    r.setSubject("user `" + user.name + "`");
  }
  r.readString("pool", user.pool, true, "name the user's home pool");
  r.readString("password", user.password, false);
  r.finish({"name", "pool", "password"});
  return user;
}

Room readRoom(const YAML::Node& node, ProblemSink& sink) {
  Room room;
  room.line = nodeLine(node, 0);
  MapReader r(node, sink, room.key_lines, room.line,
              "the room at line " + std::to_string(room.line));
  if (r.readString("name", room.name, true, "give the room name")) {
    r.setSubject("room `" + room.name + "`");
  }
  r.readString("category", room.category, false);
  r.finish({"name", "category"});
  return room;
}

// ---- The document ----------------------------------------------------------------------------

template <typename T, typename ReadFn>
void readList(MapReader& root, const std::string& key, const std::string& kind,
              const std::string& example, bool required, ProblemSink& sink, std::vector<T>& out,
              ReadFn read) {
  const YAML::Node* v = root.value(key);
  if (v == nullptr) {
    if (required) {
      sink.add(0, "missing-key", "the topology has no `" + key + "`; list its " + kind + "s");
    }
    return;
  }
  for (const auto& item : listItems(*v, sink, root.keyLine(key), "`" + key + "`")) {
    int line = nodeLine(item, root.keyLine(key));
    if (isElementMap(item, sink, line, kind, example)) out.push_back(read(item, sink));
  }
}

void readDocument(const YAML::Node& root, Topology& t, ProblemSink& sink) {
  MapReader r(root, sink, t.key_lines, 1, "the topology");
  r.readString("domain", t.domain, true, "give the XMPP domain users sign in to");
  if (!r.has("domain")) {
    // readString reported it at the map's line; the whole file is the better place.
    sink.problems().back().line = 0;
  }
  readList(r, "sites", "site", "{name: Site1}", true, sink, t.sites, readSite);
  readList(r, "stores", "store", "{name: sql1, site: Site1, address: 127.0.1.10}", true, sink,
           t.stores, readStore);
  readList(r, "pools", "pool", "{fqdn: pool1.example.test, role: frontend, ...}", true, sink,
           t.pools, readPool);
  readList(r, "users", "user", "{name: alice, pool: pool1.example.test}", false, sink, t.users,
           readUser);
  readList(r, "rooms", "room", "{name: ops, category: general}", false, sink, t.rooms, readRoom);
  r.finish({"domain", "sites", "stores", "pools", "users", "rooms"});
}

// yaml-cpp's messages name parser states; say what the operator probably did.
std::string syntaxMessage(const std::string& yaml_msg) {
  static const std::pair<const char*, const char*> kHints[] = {
      {"end of map flow not found", "a `{` opened above is not closed with `}`"},
      {"end of sequence flow not found", "a `[` opened above is not closed with `]`"},
      {"end of map not found", "a line is indented differently from the keys beside it"},
      {"end of sequence not found", "a line is indented differently from the items beside it"},
      {"illegal map value", "a `:` is where no key can start (check the indentation, and "
                            "quote values that contain `: `)"},
      {"illegal block entry", "a `- ` item is where none can be (check the indentation, "
                              "and any `{` or `[` left open above)"},
      {"referenced anchor is not defined", "an alias (`*name`) refers to no `&name` above"},
  };
  for (const auto& [needle, hint] : kHints) {
    if (yaml_msg.find(needle) != std::string::npos) {
      return "the file is not valid YAML (" + yaml_msg + "): " + hint;
    }
  }
  return "the file is not valid YAML: " + yaml_msg;
}

// The line (1-based) of the first byte that is not part of well-formed UTF-8, or 0. Topology
// files are UTF-8 text; a name with stray bytes could not be printed as JSON or compared.
int firstNonUtf8Line(const std::string& text) {
  int line = 1;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '\n') ++line;
      ++i;
      continue;
    }
    // Lead byte: how many continuation bytes follow, and the smallest code point it may encode
    // (anything smaller is an overlong form).
    size_t more;
    uint32_t cp, smallest;
    if ((c & 0xe0) == 0xc0) {
      more = 1, cp = c & 0x1f, smallest = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      more = 2, cp = c & 0x0f, smallest = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      more = 3, cp = c & 0x07, smallest = 0x10000;
    } else {
      return line;
    }
    if (text.size() - i <= more) return line;
    for (size_t k = 1; k <= more; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return line;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < smallest || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return line;
    i += more + 1;
  }
  return 0;
}

// What a walk over the YAML events finds before any node graph is built (yaml-cpp's own node
// building cannot be bounded: on some malformed input LoadAll() never stops making documents).
struct YamlPrescan {
  int documents = 0;          // counted up to 2: a topology is one document
  int second_document_line = 0;
  int recursive_alias_line = 0;  // an alias inside the value its anchor names, e.g. `&a [*a]`
};

class PrescanHandler : public YAML::EventHandler {
 public:
  explicit PrescanHandler(YamlPrescan& out) : out_(out) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++out_.documents == 2) out_.second_document_line = mark.line + 1;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark);
  }
  // yaml-cpp would build a cycle of shared nodes from a recursive alias: never freed, and no
  // reader can walk it to the end.
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    node(mark);
    if (out_.recursive_alias_line == 0 &&
        std::find(open_.begin(), open_.end(), anchor) != open_.end()) {
      out_.recursive_alias_line = mark.line + 1;
    }
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    node(mark);
    open_.push_back(anchor);
  }
  void OnSequenceEnd() override { open_.pop_back(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    node(mark);
    open_.push_back(anchor);
  }
  void OnMapEnd() override { open_.pop_back(); }

 private:
  // The second document is reported at its first value (the line after `---`).
  void node(const YAML::Mark& mark) {
    if (out_.documents == 2 && !second_document_seen_) {
      second_document_seen_ = true;
      out_.second_document_line = mark.line + 1;
    }
  }

  YamlPrescan& out_;
  bool second_document_seen_ = false;
  std::vector<YAML::anchor_t> open_;  // anchors of the collections being read (0: none)
};

// Syntax errors are left for YAML::Load to report with its message and mark.
YamlPrescan prescanYaml(const std::string& text) {
  YamlPrescan found;
  std::istringstream in(text);
  PrescanHandler handler(found);
  try {
    YAML::Parser parser(in);
    while (found.documents < 2 && found.recursive_alias_line == 0 &&
           parser.HandleNextDocument(handler)) {
    }
  } catch (const std::exception&) {
  }
  return found;
}

void sortByLine(std::vector<Problem>& problems) {
  std::stable_sort(problems.begin(), problems.end(),
                   [](const Problem& a, const Problem& b) { return a.line < b.line; });
}

}  // namespace

LoadResult parseTopology(const std::string& text, const std::string& file) {
  LoadResult result;
  result.topology.file = file;
  ProblemSink sink(file);
  if (int line = firstNonUtf8Line(text); line != 0) {
    sink.add(line, "not-utf8",
             "this line holds bytes that are not UTF-8; a topology file is UTF-8 text");
    result.problems = std::move(sink.problems());
    return result;
  }
  YamlPrescan prescan = prescanYaml(text);
  if (prescan.recursive_alias_line != 0) {
    sink.add(prescan.recursive_alias_line, "yaml-syntax",
             "an alias (`*name`) is used inside the very value its anchor (`&name`) names; a "
             "value cannot contain itself");
    result.problems = std::move(sink.problems());
    return result;
  }
  YAML::Node doc;
  try {
    doc = YAML::Load(text);  // the first document only; a second one is reported below
  } catch (const YAML::Exception& e) {
    int line = e.mark.is_null() || e.mark.line < 0 ? 0 : e.mark.line + 1;
    sink.add(line, "yaml-syntax", syntaxMessage(e.msg));
  } catch (const std::exception& e) {
    sink.add(0, "yaml-syntax", std::string("the file is not valid YAML: ") + e.what());
  }
  if (sink.problems().empty()) {
    if (!doc.IsDefined() || doc.IsNull()) {
      sink.add(0, "empty-file",
               "the file is empty; a topology needs at least `domain`, `sites`, `stores` and "
               "`pools`");
    } else if (!doc.IsMap()) {
      sink.add(nodeLine(doc, 1), "wrong-type",
               std::string("the topology must be a map of keys (`domain`, `sites`, `stores`, "
                           "`pools`, ...), not ") +
                   internal::nodeKindName(doc));
    } else {
      result.parsed = true;
      if (prescan.documents > 1) {
        sink.add(prescan.second_document_line, "multiple-documents",
                 "the file holds more than one YAML document (`---`); a topology is one "
                 "document, and the rest would be ignored");
      }
      readDocument(doc, result.topology, sink);
    }
  }
  result.problems = std::move(sink.problems());
  sortByLine(result.problems);
  return result;
}

LoadResult loadTopologyFile(const std::string& path) {
  LoadResult result;
  result.topology.file = path;
  auto whole_file = [&](const std::string& rule, const std::string& message) {
    result.problems.push_back(Problem{path, 0, rule, message});
    return result;
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return whole_file("unreadable-file", "`" + path + "` is a directory, not a topology file");
  }
  auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxTopologyFileBytes) {
    return whole_file("too-large", "the file is " + std::to_string(size) +
                                       " bytes; a topology file is at most " +
                                       std::to_string(kMaxTopologyFileBytes) + " bytes");
  }
  auto text = readFile(path);
  if (!text) {
    bool missing = text.error().code() == StatusCode::kNotFound;
    return whole_file(missing ? "file-not-found" : "unreadable-file",
                      missing ? "the topology file does not exist" : text.error().message());
  }
  return parseTopology(*text, path);
}

namespace {
LoadResult withValidation(LoadResult loaded) {
  if (loaded.parsed) {
    for (auto& p : validate(loaded.topology)) loaded.problems.push_back(std::move(p));
    sortByLine(loaded.problems);
  }
  return loaded;
}
}  // namespace

LoadResult checkTopology(const std::string& text, const std::string& file) {
  return withValidation(parseTopology(text, file));
}

LoadResult checkTopologyFile(const std::string& path) {
  return withValidation(loadTopologyFile(path));
}

Result<Topology> loadValidTopology(const std::string& path) {
  LoadResult checked = checkTopologyFile(path);
  if (checked.problems.empty()) return std::move(checked.topology);
  const Problem& first = checked.problems.front();
  if (first.rule == "file-not-found") {
    return fail(notFound("topology file `" + path + "` does not exist"));
  }
  std::string message = "topology " + first.toString();
  if (checked.problems.size() > 1) {
    message += " (and " + std::to_string(checked.problems.size() - 1) +
               " more problems: run `tandemctl topology validate " + path + "`)";
  }
  return fail(invalidArgument(std::move(message)));
}

}  // namespace tandem::topology
