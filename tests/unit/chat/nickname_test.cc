#include "chat/nickname.h"

#include <gtest/gtest.h>

#include <string>

namespace tandem::chat {
namespace {

TEST(Nickname, AcceptsOrdinaryNicknames) {
  EXPECT_TRUE(isValidNickname("alice", 64));
  EXPECT_TRUE(isValidNickname("Alice Smith", 64));
  EXPECT_TRUE(isValidNickname("\xc3\xa9lodie", 64));           // é precomposed
  EXPECT_TRUE(isValidNickname("\xe6\x9d\x8e\xe9\x9b\xb7", 64));  // CJK
  EXPECT_TRUE(isValidNickname("\xf0\x9f\x98\x80", 64));          // emoji (4 bytes)
  EXPECT_TRUE(isValidNickname(std::string(64, 'x'), 64));
}

TEST(Nickname, RefusesEmptyTooLongAndWhitespace) {
  EXPECT_FALSE(isValidNickname("", 64));
  EXPECT_FALSE(isValidNickname(std::string(65, 'x'), 64));
  EXPECT_FALSE(isValidNickname("   ", 64));
  EXPECT_FALSE(isValidNickname(" bob", 64));
  EXPECT_FALSE(isValidNickname("bob ", 64));
  EXPECT_FALSE(isValidNickname("\xc2\xa0" "bob", 64));  // no-break space in front
}

TEST(Nickname, RefusesControlAndFormatCharacters) {
  EXPECT_FALSE(isValidNickname("a\tb", 64));
  EXPECT_FALSE(isValidNickname("a\nb", 64));
  EXPECT_FALSE(isValidNickname(std::string("a\0b", 3), 64));
  EXPECT_FALSE(isValidNickname("a\x7f" "b", 64));
  EXPECT_FALSE(isValidNickname("a\xc2\x85" "b", 64));      // U+0085 (C1)
  EXPECT_FALSE(isValidNickname("a\xe2\x80\xae" "b", 64));  // U+202E right-to-left override
  EXPECT_FALSE(isValidNickname("a\xe2\x80\x8b" "b", 64));  // U+200B zero width space
  EXPECT_FALSE(isValidNickname("a\xef\xbf\xbf", 64));      // U+FFFF noncharacter
}

TEST(Nickname, RefusesMalformedUtf8) {
  EXPECT_FALSE(isValidNickname("a\xff", 64));
  EXPECT_FALSE(isValidNickname("a\xc3", 64));               // truncated
  EXPECT_FALSE(isValidNickname("\xc0\xaf", 64));            // overlong '/'
  EXPECT_FALSE(isValidNickname("\xed\xa0\x80", 64));        // surrogate
}

TEST(Nickname, RefusesDecomposedLettersThatPoseAsPrecomposedOnes) {
  EXPECT_FALSE(isValidNickname("e\xcc\x81lodie", 64));  // e + U+0301: NFC is é
}

}  // namespace
}  // namespace tandem::chat
