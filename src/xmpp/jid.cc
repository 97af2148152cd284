// Jid parsing and normalisation (RFC 7622, simplified as described in jid.h).
#include "xmpp/jid.h"

#include <cctype>

namespace tandem::xmpp {

namespace {
constexpr size_t kMaxPart = 1023;

std::string lowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool hasControl(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool validLocal(std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@': case ' ':
        return false;
      default: break;
    }
  }
  return !hasControl(s);
}

bool validDomain(std::string_view s) {
  if (s.empty() || s.size() > kMaxPart || hasControl(s)) return false;
  if (s.back() == '.') s.remove_suffix(1);
  for (char c : s) {
    if (c == ' ' || c == '@' || c == '/' || c == '"' || c == '<' || c == '>' || c == '\'' ||
        c == '&')
      return false;
  }
  return !s.empty();
}
}  // namespace

Result<Jid> Jid::parse(std::string_view text) {
  auto bad = [&](const char* why) {
    return fail(StatusCode::kInvalidArgument,
                "JID `" + std::string(text.substr(0, 200)) + "` is invalid: " + why);
  };
  if (text.empty()) return bad("it is empty");
  Jid j;
  std::string_view rest = text;
  size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    j.resource = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (j.resource.empty()) return bad("the resource is empty");
    if (j.resource.size() > kMaxPart || hasControl(j.resource)) return bad("the resource is invalid");
  }
  size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view local = rest.substr(0, at);
    if (local.empty()) return bad("the localpart is empty");
    if (local.size() > kMaxPart || !validLocal(local)) return bad("the localpart is invalid");
    j.local = lowerAscii(local);
    rest = rest.substr(at + 1);
  }
  if (!validDomain(rest)) return bad("the domain is invalid");
  j.domain = lowerAscii(rest);
  if (!j.domain.empty() && j.domain.back() == '.') j.domain.pop_back();
  return j;
}

std::string Jid::bare() const { return local.empty() ? domain : local + "@" + domain; }

std::string Jid::full() const { return resource.empty() ? bare() : bare() + "/" + resource; }

bool isValidUserName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace tandem::xmpp
