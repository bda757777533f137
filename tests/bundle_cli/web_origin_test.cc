// Origins as a user names them -> the directory Gecko keeps them in.
#include "web_origin.h"

#include <gtest/gtest.h>

namespace quiesce::bundle {
namespace {

std::string Dir(const std::string& url) {
  auto o = ParseOrigin(url);
  return o ? o->directory : "(none)";
}

TEST(WebOrigin, SanitisedLikeQuotaManager) {
  EXPECT_EQ(Dir("http://127.0.0.1:8080"), "http+++127.0.0.1+8080");
  EXPECT_EQ(Dir("https://example.com"), "https+++example.com");
  EXPECT_EQ(Dir("http://[::1]:8000"), "http+++[++1]+8000");
}

TEST(WebOrigin, AnyUrlOfTheOriginNamesIt) {
  auto o = ParseOrigin("HTTP://Example.COM:80/a/b?c=d#e");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->origin, "http://example.com");
  EXPECT_EQ(Dir("https://example.com:443/"), "https+++example.com");
  EXPECT_EQ(Dir("https://example.com:8443?x"), "https+++example.com+8443");
  EXPECT_EQ(Dir("http://127.0.0.1:08080"), "http+++127.0.0.1+8080");
}

TEST(WebOrigin, RejectsWhatHasNoCacheStorage) {
  for (const char* bad : {"", "127.0.0.1:8080", "ftp://example.com",
                          "file:///tmp/x", "http://", "http://:80",
                          "http://user@example.com", "http://a:port",
                          "http://a:123456", "http://[::1"}) {
    EXPECT_FALSE(ParseOrigin(bad)) << bad;
  }
}

TEST(WebOrigin, MatchesTheOriginsCachesDatabaseOnly) {
  const WebOrigin o = *ParseOrigin("http://127.0.0.1:8080");
  const std::string db =
      "/p/storage/default/http+++127.0.0.1+8080/cache/caches.sqlite";
  EXPECT_TRUE(IsOriginCacheDatabase(db, o, ""));
  EXPECT_TRUE(IsOriginCacheDatabase(db, o, "/p"));
  EXPECT_TRUE(IsOriginCacheDatabase(db, o, "/p/"));
  EXPECT_FALSE(IsOriginCacheDatabase(db, o, "/q"));
  EXPECT_FALSE(IsOriginCacheDatabase(
      "/p/storage/default/http+++127.0.0.1+80800/cache/caches.sqlite", o, ""));
  EXPECT_FALSE(IsOriginCacheDatabase(
      "/p/storage/default/http+++127.0.0.1+8080/idb/1.sqlite", o, ""));
  EXPECT_FALSE(IsOriginCacheDatabase(
      "/p/storage/permanent/http+++127.0.0.1+8080/cache/caches.sqlite", o,
      ""));
}

}  // namespace
}  // namespace quiesce::ctl
