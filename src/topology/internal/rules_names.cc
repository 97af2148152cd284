// Validator: the Checker, name syntax, duplicate names and addresses, and site references.
#include <arpa/inet.h>

#include <cctype>
#include <map>

#include "topology/internal/checker.h"
#include "topology/internal/yaml_reader.h"

namespace tandem::topology::internal {

// ---- Checker ---------------------------------------------------------------------------------

void Checker::add(int line, std::string rule, std::string message) {
  problems_.push_back(Problem{t_.file, line, std::move(rule), oneLine(std::move(message))});
}

void Checker::unknown(const std::string& name, const std::string& key,
                      const std::string& subject, const char* kind, const char* list,
                      int line) {
  add(line, "unknown-reference",
      "`" + key + "` of " + subject + " names " + kind + " `" + name + "`, which is not in `" +
          list + "`");
}

const Site* Checker::site(const std::string& name, const std::string& key,
                          const std::string& subject, int line) {
  if (name.empty()) return nullptr;
  const Site* s = t_.findSite(name);
  if (s == nullptr) unknown(name, key, subject, "site", "sites", line);
  return s;
}

const Store* Checker::store(const std::string& name, const std::string& key,
                            const std::string& subject, int line) {
  if (name.empty()) return nullptr;
  const Store* s = t_.findStore(name);
  if (s == nullptr) unknown(name, key, subject, "store", "stores", line);
  return s;
}

const Pool* Checker::pool(const std::string& name, const std::string& key,
                          const std::string& subject, int line) {
  if (name.empty()) return nullptr;
  const Pool* p = t_.findPool(name);
  if (p == nullptr) unknown(name, key, subject, "pool", "pools", line);
  return p;
}

std::string subjectOf(const Store& s) { return "store `" + s.name + "`"; }
std::string subjectOf(const Pool& p) {
  return std::string(p.role == PoolRole::kChat   ? "chat pool `"
                     : p.role == PoolRole::kEdge ? "edge pool `"
                                                 : "front-end pool `") +
         p.fqdn + "`";
}
std::string subjectOf(const Site& s) { return "site `" + s.name + "`"; }

std::string roleWord(PoolRole role) {
  return role == PoolRole::kFrontend ? "front-end" : poolRoleName(role);
}
std::string aPoolOfRole(PoolRole role) {
  return std::string(role == PoolRole::kEdge ? "an " : "a ") + roleWord(role) + " pool";
}

// ---- Syntax ----------------------------------------------------------------------------------

bool isDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253 || name.back() == '.') return false;
  size_t label = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    if (!std::isalnum(c) && c != '-') return false;
    if (label == 0 && c == '-') return false;
    if (++label > 63) return false;
  }
  return name.back() != '-';
}

bool isSimpleName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool isUserName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name) {
    if (!(std::islower(c) || std::isdigit(c) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string addressProblem(const std::string& address) {
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) != 1) {
    in6_addr v6{};
    if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
      return "is an IPv6 address; Tandem listens on IPv4 addresses (use 127.0.X.Y on one "
             "machine)";
    }
    return "is not an IP address (write it as four numbers, e.g. 127.0.1.10)";
  }
  uint32_t a = ntohl(v4.s_addr);
  if (a == 0) return "is the unspecified address 0.0.0.0, which no server can be reached on";
  if (a == 0xffffffffu) return "is the broadcast address";
  if ((a >> 28) == 0xe) return "is a multicast address";
  return "";
}

// ---- Rules -----------------------------------------------------------------------------------

namespace {

// Reports the second and later uses of a name, naming the line of the first.
class UniqueNames {
 public:
  UniqueNames(Checker& c, std::string what) : c_(c), what_(std::move(what)) {}
  void see(const std::string& name, int line, const std::string& kind) {
    if (name.empty()) return;
    auto [it, inserted] = first_.emplace(name, std::make_pair(line, kind));
    if (inserted) return;
    c_.add(line, "duplicate-name",
           what_ + " `" + name + "` is defined twice (first as " + it->second.second +
               " at line " + std::to_string(it->second.first) + "); " + what_ + "s must be unique");
  }

 private:
  Checker& c_;
  std::string what_;
  std::map<std::string, std::pair<int, std::string>> first_;
};

void checkDomain(Checker& c) {
  const Topology& t = c.topology();
  if (t.domain.empty() || isDnsName(t.domain)) return;
  c.add(lineOf(t.key_lines, "domain", 0), "invalid-domain",
        "domain `" + t.domain +
            "` is not a DNS name; use letters, digits and hyphens in dot-separated labels, e.g. "
            "example.test");
}

void checkSyntaxOfNames(Checker& c) {
  const Topology& t = c.topology();
  for (const auto& s : t.sites) {
    if (!s.name.empty() && !isSimpleName(s.name)) {
      c.add(lineOf(s.key_lines, "name", s.line), "invalid-name",
            "site name `" + s.name +
                "` must start with a letter or digit and use only letters, digits, `-`, `_` "
                "and `.`");
    }
  }
  for (const auto& s : t.stores) {
    if (!s.name.empty() && !isSimpleName(s.name)) {
      c.add(lineOf(s.key_lines, "name", s.line), "invalid-name",
            "store name `" + s.name +
                "` must start with a letter or digit and use only letters, digits, `-`, `_` "
                "and `.` (it names the store's host and directories)");
    }
  }
  for (const auto& p : t.pools) {
    if (!p.fqdn.empty() && !isDnsName(p.fqdn)) {
      c.add(lineOf(p.key_lines, "fqdn", p.line), "invalid-fqdn",
            "pool FQDN `" + p.fqdn + "` is not a DNS name, e.g. pool1.example.test");
    }
    for (const auto& s : p.servers) {
      if (!s.fqdn.empty() && !isDnsName(s.fqdn)) {
        c.add(lineOf(s.key_lines, "fqdn", s.line), "invalid-fqdn",
              "server FQDN `" + s.fqdn + "` is not a DNS name, e.g. fe1a.example.test");
      }
    }
  }
  for (const auto& u : t.users) {
    if (!u.name.empty() && !isUserName(u.name)) {
      c.add(lineOf(u.key_lines, "name", u.line), "invalid-name",
            "user name `" + u.name +
                "` must use only lower-case letters, digits, `.`, `_` and `-` (it is the part "
                "of the address before @)");
    }
  }
  for (const auto& r : t.rooms) {
    if (!r.name.empty() && !isUserName(r.name)) {
      c.add(lineOf(r.key_lines, "name", r.line), "invalid-name",
            "room name `" + r.name +
                "` must use only lower-case letters, digits, `.`, `_` and `-` (it is the part "
                "of the room address before @)");
    }
  }
}

void checkDuplicates(Checker& c) {
  const Topology& t = c.topology();
  UniqueNames sites(c, "site"), stores(c, "store"), users(c, "user"), rooms(c, "room");
  UniqueNames fqdns(c, "FQDN");  // pools and servers share DNS: one name, one thing
  for (const auto& s : t.sites) sites.see(s.name, lineOf(s.key_lines, "name", s.line), "a site");
  for (const auto& s : t.stores) {
    stores.see(s.name, lineOf(s.key_lines, "name", s.line), "a store");
  }
  for (const auto& p : t.pools) {
    fqdns.see(p.fqdn, lineOf(p.key_lines, "fqdn", p.line), "a pool");
    for (const auto& s : p.servers) {
      fqdns.see(s.fqdn, lineOf(s.key_lines, "fqdn", s.line), "a server");
    }
  }
  for (const auto& u : t.users) users.see(u.name, lineOf(u.key_lines, "name", u.line), "a user");
  for (const auto& r : t.rooms) rooms.see(r.name, lineOf(r.key_lines, "name", r.line), "a room");
}

void checkAddresses(Checker& c) {
  const Topology& t = c.topology();
  std::map<std::string, std::string> owner;  // address -> "store `sql1` (line 12)"
  auto see = [&](const std::string& address, const std::string& who, int line) {
    if (address.empty()) return;
    std::string why = addressProblem(address);
    if (!why.empty()) {
      c.add(line, "invalid-address", "address `" + address + "` of " + who + " " + why);
      return;
    }
    auto [it, inserted] = owner.emplace(address, who + " (line " + std::to_string(line) + ")");
    if (!inserted) {
      c.add(line, "duplicate-address",
            "address `" + address + "` of " + who + " is already used by " + it->second +
                "; every server and store needs its own address");
    }
  };
  for (const auto& s : t.stores) {
    see(s.address, subjectOf(s), lineOf(s.key_lines, "address", s.line));
  }
  for (const auto& p : t.pools) {
    for (const auto& s : p.servers) {
      see(s.address, "server `" + s.fqdn + "`", lineOf(s.key_lines, "address", s.line));
    }
  }
}

void checkSites(Checker& c) {
  for (const auto& s : c.topology().sites) {
    for (size_t i = 0; i < s.low_latency_to.size(); ++i) {
      const std::string& other = s.low_latency_to[i];
      int line = lineOf(s.key_lines, "low_latency_to[" + std::to_string(i) + "]", s.line);
      if (other == s.name) {
        c.add(line, "low-latency-self",
              "site `" + s.name + "` lists itself in `low_latency_to`; list other sites only");
        continue;
      }
      c.site(other, "low_latency_to", subjectOf(s), line);
    }
  }
}

}  // namespace

void checkNames(Checker& c) {
  checkDomain(c);
  checkSyntaxOfNames(c);
  checkDuplicates(c);
  checkAddresses(c);
  checkSites(c);
}

}  // namespace tandem::topology::internal
