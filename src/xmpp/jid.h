// Jid: an XMPP address (RFC 7622) in its normalised form.
//
// "stringprep-lite": we lowercase the ASCII of the localpart and domainpart, refuse the
// characters RFC 7622 forbids in a localpart, control characters and over-long parts, and leave
// non-ASCII text as the (valid UTF-8) bytes given. Enough for deployments whose user names are
// ASCII, which `tandemctl user add` enforces. A value type; thread-safe as any value.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tandem::xmpp {

struct Jid {
  std::string local;     // "" for a server or service address
  std::string domain;    // never empty in a parsed Jid
  std::string resource;  // "" for a bare JID

  // Parses and normalises. Fails with InvalidArgument naming the JID when it is empty, has an
  // empty part next to a separator, a forbidden character, or a part longer than 1023 bytes.
  static Result<Jid> parse(std::string_view text);

  bool isBare() const { return resource.empty(); }
  bool empty() const { return domain.empty(); }
  Jid bareJid() const { return Jid{local, domain, ""}; }
  std::string bare() const;  // "local@domain" or "domain"
  std::string full() const;  // bare() + "/resource" when there is one
  bool operator==(const Jid&) const = default;
};

// True when `name` is a valid user name (localpart) for `tandemctl user add`: 1-64 characters
// of [a-z0-9._-], starting with a letter or digit.
bool isValidUserName(std::string_view name);

}  // namespace tandem::xmpp
