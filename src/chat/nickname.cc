// Room nickname rules (see nickname.h).
#include "chat/nickname.h"

#include <cstdint>

namespace tandem::chat {

namespace {

// Decodes one UTF-8 sequence at s[i]; returns false for malformed, overlong or surrogate
// sequences. On success `cp` holds the code point and `i` points past it.
bool nextCodePoint(std::string_view s, size_t& i, uint32_t& cp) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || i + len > s.size()) return false;
  cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc >> 6) != 0x2) return false;
    cp = (cp << 6) | (cc & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
  i += len;
  return true;
}

bool isControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

bool isFormat(uint32_t cp) {
  return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

bool isNonCharacter(uint32_t cp) {
  return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe;
}

bool isSpace(uint32_t cp) {
  return cp == 0x20 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

bool isAsciiLetter(uint32_t cp) { return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z'; }

}  // namespace

bool isValidNickname(std::string_view nick, size_t max_bytes) {
  if (nick.empty() || nick.size() > max_bytes) return false;
  bool visible = false, last_space = false;
  uint32_t prev = 0;
  for (size_t i = 0; i < nick.size();) {
    uint32_t cp = 0;
    if (!nextCodePoint(nick, i, cp)) return false;
    if (isControl(cp) || isFormat(cp) || isNonCharacter(cp)) return false;
    if (cp >= 0x300 && cp <= 0x36f && isAsciiLetter(prev)) return false;
    last_space = isSpace(cp);
    if (last_space && !visible) return false;  // leading whitespace (or only whitespace)
    if (!last_space) visible = true;
    prev = cp;
  }
  return visible && !last_space;
}

}  // namespace tandem::chat
