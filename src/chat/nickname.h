// Room nicknames (XEP-0045 §7.2, RFC 8266 "Nickname" profile, simplified): which nicknames a
// room accepts. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace tandem::chat {

// Whether `nick` may be used as a room nickname. Refused (each is one case of the hostile-input
// test): empty; longer than `max_bytes`; not UTF-8; any control character (C0, DEL, C1: a TAB
// in a nickname is one); bidi and zero-width format characters (U+200B-U+200F, U+202A-U+202E,
// U+2060-U+2069, U+FEFF), which let one nickname pose as another; noncharacters; only
// whitespace; leading or trailing whitespace (RFC 8266 trims it; we refuse rather than hand out
// a nickname the client did not ask for); an ASCII letter followed by a combining mark
// U+0300-U+036F (the decomposed form of a letter NFC would compose: "e" + U+0301 poses as
// "é"). Full NFC is not checked (no Unicode tables here): nicknames compare byte for byte.
bool isValidNickname(std::string_view nick, size_t max_bytes);

}  // namespace tandem::chat
