// JID parsing and normalisation.
#include "xmpp/jid.h"

#include <gtest/gtest.h>

namespace tandem::xmpp {
namespace {

TEST(Jid, ParsesAndNormalisesCase) {
  auto j = Jid::parse("Alice@Example.TEST/Phone");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->local, "alice");
  EXPECT_EQ(j->domain, "example.test");
  EXPECT_EQ(j->resource, "Phone");
  EXPECT_EQ(j->bare(), "alice@example.test");
  EXPECT_EQ(j->full(), "alice@example.test/Phone");
}

TEST(Jid, DomainOnlyAndResourceWithSlashes) {
  auto d = Jid::parse("chat.example.test");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->local.empty());
  auto r = Jid::parse("room@chat.example.test/nick/with/slash");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->resource, "nick/with/slash");
}

TEST(Jid, RefusesMalformed) {
  for (const char* bad : {"", "@example.test", "a@", "a@b/", "a b@example.test", "a@b c",
                          "a<b@example.test"}) {
    EXPECT_FALSE(Jid::parse(bad)) << bad;
  }
}

TEST(Jid, UserNames) {
  EXPECT_TRUE(isValidUserName("alice"));
  EXPECT_TRUE(isValidUserName("a.b-c_d9"));
  EXPECT_FALSE(isValidUserName("Alice"));
  EXPECT_FALSE(isValidUserName("-x"));
  EXPECT_FALSE(isValidUserName(""));
}

}  // namespace
}  // namespace tandem::xmpp
