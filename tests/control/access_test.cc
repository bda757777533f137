// Who may connect and what a peer may do, decided from injected
// credentials (the real SO_PEERCRED path is covered in server_test).
#include "access.h"

#include <gtest/gtest.h>

namespace quiesce::control {
namespace {

PeerCreds Peer(uid_t uid) { return PeerCreds{1234, uid, uid}; }

TEST(PeerAllowed, DefaultsToTheHostsUidAlone) {
  const AccessPolicy policy{1000, {}, ""};
  EXPECT_TRUE(PeerAllowed(policy, Peer(1000)));
  EXPECT_FALSE(PeerAllowed(policy, Peer(1001)));
  EXPECT_FALSE(PeerAllowed(policy, Peer(0)));  // root is not special
}

TEST(PeerAllowed, AnAllowlistReplacesTheDefault) {
  const AccessPolicy policy{1000, {2000, 0}, ""};
  EXPECT_TRUE(PeerAllowed(policy, Peer(2000)));
  EXPECT_TRUE(PeerAllowed(policy, Peer(0)));
  EXPECT_FALSE(PeerAllowed(policy, Peer(1000)));
}

TEST(CapabilitiesFor, WriteIsOffByDefault) {
  const AccessPolicy policy{1000, {}, ""};
  const Capabilities caps = CapabilitiesFor(policy, Peer(1000), "/d/a.db");
  EXPECT_TRUE(caps.read);
  EXPECT_FALSE(caps.write);
}

TEST(CapabilitiesFor, OneMeansEveryDatabase) {
  const AccessPolicy policy{1000, {}, "1"};
  EXPECT_TRUE(CapabilitiesFor(policy, Peer(1000), "/any/where.db").write);
}

TEST(CapabilitiesFor, AGlobSelectsDatabasesByPath) {
  const AccessPolicy policy{1000, {}, "/profile/storage/*.sqlite"};
  EXPECT_TRUE(
      CapabilitiesFor(policy, Peer(1000), "/profile/storage/a.sqlite").write);
  EXPECT_FALSE(
      CapabilitiesFor(policy, Peer(1000), "/profile/storage/x/a.sqlite").write)
      << "* must not cross a directory";
  EXPECT_FALSE(CapabilitiesFor(policy, Peer(1000), "/profile/a.sqlite").write);
  EXPECT_TRUE(CapabilitiesFor(policy, Peer(1000), "/profile/a.sqlite").read);
}

TEST(CapabilitiesFor, AStrangerGetsNothing) {
  const AccessPolicy policy{1000, {}, "1"};
  const Capabilities caps = CapabilitiesFor(policy, Peer(65534), "/d/a.db");
  EXPECT_FALSE(caps.read);
  EXPECT_FALSE(caps.write);
}

TEST(WritableSummary, SaysHowWriteIsGranted) {
  EXPECT_EQ(WritableSummary({0, {}, ""}), "none");
  EXPECT_EQ(WritableSummary({0, {}, "1"}), "all");
  EXPECT_EQ(WritableSummary({0, {}, "/p/*.db"}), "/p/*.db");
}

}  // namespace
}  // namespace quiesce::control
