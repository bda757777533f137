// Gecko's naming rules as the bundle library implements them, checked
// against values a real Firefox wrote (the ESR 153 fixtures).
#include <gtest/gtest.h>

#include <set>

#include "digest.h"
#include "gecko_names.h"

namespace quiesce::bundle {
namespace {

TEST(GeckoNamesTest, MorguePathIsTheLastByteOfTheIdInDecimal) {
  // Both seen in the fixture: entry /item/1 and /item/46.
  EXPECT_EQ(MorguePathOfBodyId("{fa76a194-bea1-4720-a275-2c6fdd11908d}"),
            "morgue/141/{fa76a194-bea1-4720-a275-2c6fdd11908d}.final");
  EXPECT_EQ(MorguePathOfBodyId("{80eaa968-8429-49fc-9951-797671e9860a}"),
            "morgue/10/{80eaa968-8429-49fc-9951-797671e9860a}.final");
}

TEST(GeckoNamesTest, AnythingButABodyIdIsRefused) {
  for (const char* bad :
       {"", "{fa76a194-bea1-4720-a275-2c6fdd11908d", "../../etc/passwd",
        "{FA76A194-BEA1-4720-A275-2C6FDD11908D}",
        "{fa76a194-bea1-4720-a275/2c6fdd11908d}",
        "{fa76a194-bea1-4720-a275-2c6fdd11908g}"}) {
    EXPECT_EQ(MorguePathOfBodyId(bad), std::nullopt) << bad;
  }
}

TEST(GeckoNamesTest, NewBodyIdsAreWellFormedAndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    std::optional<std::string> id = NewBodyId();
    ASSERT_TRUE(id.has_value());
    ASSERT_TRUE(MorguePathOfBodyId(*id).has_value()) << *id;
    EXPECT_EQ((*id)[15], '4') << "version 4: " << *id;
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), 100u);
}

TEST(GeckoNamesTest, CacheNamesAreUtf16LittleEndian) {
  // storage.key of the fixture's "probe-v1".
  EXPECT_EQ(HexEncode(*Utf8ToUtf16Le("probe-v1")),
            "700072006f00620065002d0076003100");
  EXPECT_EQ(Utf16LeToUtf8(*HexDecode("700072006f00620065002d0076003100")),
            "probe-v1");
  // Outside the BMP: a surrogate pair, and back.
  std::string emoji = "caf\xC3\xA9-\xF0\x9F\x8D\x8E";
  std::optional<std::string> utf16 = Utf8ToUtf16Le(emoji);
  ASSERT_TRUE(utf16.has_value());
  EXPECT_EQ(HexEncode(*utf16), "630061006600e9002d003cd84edf");
  EXPECT_EQ(Utf16LeToUtf8(*utf16), emoji);
}

TEST(GeckoNamesTest, InvalidNamesAreRefused) {
  EXPECT_EQ(Utf16LeToUtf8(*HexDecode("3cd8")), std::nullopt);  // lone high
  EXPECT_EQ(Utf16LeToUtf8(*HexDecode("0edf")), std::nullopt);  // lone low
  EXPECT_EQ(Utf16LeToUtf8("abc"), std::nullopt);               // odd length
  EXPECT_EQ(Utf8ToUtf16Le("\xC0\xAF"), std::nullopt);          // overlong
  EXPECT_EQ(Utf8ToUtf16Le("\xED\xA0\x80"), std::nullopt);      // surrogate
  EXPECT_EQ(Utf8ToUtf16Le("\xE2\x82"), std::nullopt);          // truncated
}

TEST(GeckoNamesTest, UrlHashIsTheSha1PrefixFirefoxStored) {
  // request_url_no_query_hash and request_url_query_hash of /item/1.
  EXPECT_EQ(HexEncode(GeckoHash("http://127.0.0.1:8765/item/1")),
            "780ceb0dfbf10b17");
  EXPECT_EQ(HexEncode(GeckoHash("")), "da39a3ee5e6b4b0d");
}

TEST(GeckoNamesTest, Base64RoundTrips) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 7));
    std::string encoded = Base64Encode(bytes);
    EXPECT_EQ(Base64Decode(encoded), bytes) << i;
  }
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
  EXPECT_EQ(Base64Decode("YWI"), std::nullopt);
  EXPECT_EQ(Base64Decode("Y*I="), std::nullopt);
}

TEST(GeckoNamesTest, Sha256IsHex) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace quiesce::bundle
