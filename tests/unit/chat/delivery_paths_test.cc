// DeliveryPaths / HeldStanzas: one sticky front-end path per destination (issue #14).
#include "chat/delivery_paths.h"

#include <gtest/gtest.h>

#include <set>

namespace tandem::chat {
namespace {

using Clock = DeliveryPaths::Clock;
using std::chrono::milliseconds;

const std::vector<std::string> kFrontEnds = {"fe1a.example.test", "fe1b.example.test"};

std::string userOwnedBy(const std::string& fqdn, const std::vector<std::string>& members) {
  HashRing ring(members);
  for (int i = 0;; ++i) {
    std::string bare = "u" + std::to_string(i) + "@example.test";
    if (ring.ownerOf(bare) == fqdn) return bare;
  }
}

TEST(DeliveryPathsTest, Regression14EveryStanzaForOneDestinationTakesOnePath) {
  DeliveryPaths paths;
  paths.setAttached(kFrontEnds);
  auto t = Clock::now();
  std::set<std::string> used;
  for (int i = 0; i < 100; ++i) used.insert(paths.pathFor("alice@example.test", t + milliseconds(i)));
  EXPECT_EQ(used.size(), 1u);
}

TEST(DeliveryPathsTest, PathIsTheRingOwnerTheFrontEndsComputeWhenAllAreAttached) {
  DeliveryPaths paths;
  paths.setAttached({kFrontEnds[1], kFrontEnds[0]});  // any order
  for (const auto& fe : kFrontEnds) {
    EXPECT_EQ(paths.pathFor(userOwnedBy(fe, kFrontEnds), Clock::now()), fe);
  }
}

TEST(DeliveryPathsTest, NoAttachedFrontEndGivesNoPath) {
  DeliveryPaths paths;
  EXPECT_EQ(paths.pathFor("alice@example.test", Clock::now()), "");
  paths.setAttached({});
  EXPECT_EQ(paths.pathFor("alice@example.test", Clock::now()), "");
}

TEST(DeliveryPathsTest, BusyDestinationKeepsItsPathWhenAnotherFrontEndAttaches) {
  DeliveryPaths paths(std::chrono::seconds(10));
  std::string bare = userOwnedBy(kFrontEnds[0], kFrontEnds);
  paths.setAttached({kFrontEnds[1]});  // its owner is detached: it goes through fe1b
  auto t = Clock::now();
  EXPECT_EQ(paths.pathFor(bare, t), kFrontEnds[1]);
  paths.setAttached(kFrontEnds);  // the owner is back, but the destination is busy on fe1b
  EXPECT_EQ(paths.pathFor(bare, t + milliseconds(100)), kFrontEnds[1]);
  EXPECT_EQ(paths.switches(), 0u);
  // Idle for longer than idle_forget: back to its owner.
  EXPECT_EQ(paths.pathFor(bare, t + std::chrono::seconds(11)), kFrontEnds[0]);
}

TEST(DeliveryPathsTest, DestinationMovesOnlyWhenItsFrontEndDetaches) {
  DeliveryPaths paths;
  std::string bare = userOwnedBy(kFrontEnds[0], kFrontEnds);
  paths.setAttached(kFrontEnds);
  auto t = Clock::now();
  EXPECT_EQ(paths.pathFor(bare, t), kFrontEnds[0]);
  paths.setAttached({kFrontEnds[1]});
  EXPECT_EQ(paths.pathFor(bare, t + milliseconds(1)), kFrontEnds[1]);
  EXPECT_EQ(paths.switches(), 1u);
}

TEST(DeliveryPathsTest, RemembersABoundedNumberOfDestinations) {
  DeliveryPaths paths(std::chrono::seconds(10), 100);
  paths.setAttached(kFrontEnds);
  auto t = Clock::now();
  for (int i = 0; i < 1000; ++i) {
    paths.pathFor("u" + std::to_string(i) + "@example.test", t + milliseconds(i));
  }
  EXPECT_LE(paths.remembered(), 100u);
}

TEST(HeldStanzasTest, KeepsOrderDropsTheOldestWhenFullAndExpires) {
  HeldStanzas held(3, milliseconds(500));
  auto t = Clock::now();
  EXPECT_EQ(held.push("a", t), 0u);
  EXPECT_EQ(held.push("b", t + milliseconds(100)), 0u);
  EXPECT_EQ(held.push("c", t + milliseconds(200)), 0u);
  EXPECT_EQ(held.push("d", t + milliseconds(300)), 1u);  // "a" pushed out
  EXPECT_EQ(held.front(), "b");
  EXPECT_EQ(held.expire(t + milliseconds(750)), 2u);  // "b" and "c" waited 500 ms or more
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held.front(), "d");
  held.pop();
  EXPECT_TRUE(held.empty());
}

TEST(DestinationOfTest, ReadsTheBareJidOfTheStartTagsTo) {
  EXPECT_EQ(destinationOf("<message to=\"Alice@Example.test/phone\" from=\"r@c\"><body "
                          "to=\"x@y\"/></message>"),
            "alice@example.test");
  EXPECT_EQ(destinationOf("<iq type='result' to='bob@example.test/r' id='1'/>"),
            "bob@example.test");
  EXPECT_EQ(destinationOf("<presence from=\"r@c/n\"><x to=\"a@b\"/></presence>"), "");
  EXPECT_EQ(destinationOf("<message xto=\"a@b\" to=\"c@d\"/>"), "c@d");
}

}  // namespace
}  // namespace tandem::chat
