// A damaged bundle is rejected as a whole, with an error naming the
// defect; a good one reads back exactly.
#include <gtest/gtest.h>
#include <zip.h>

#include <cstdlib>
#include <cstring>

#include "bundle_fixture.h"
#include "digest.h"

namespace quiesce::testing {
namespace {

namespace fs = std::filesystem;
using bundle::Bundle;

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<fs::path> fixture = FixtureCacheDir("clean");
    if (!fixture) GTEST_SKIP() << "Firefox fixtures not found";
    fs::path cache_dir = CopyFixture(*fixture, tmp_.path(), "cache");
    Conn db((cache_dir / "caches.sqlite").string(), "unix");
    good_ = tmp_.path() / "good.zip";
    absl::StatusOr<bundle::PackResult> packed = bundle::PackBundle(
        db.get(), cache_dir, kOrigin, kCacheName, {}, good_);
    ASSERT_TRUE(packed.ok()) << packed.status();
  }

  // A copy of the good bundle, edited through libzip (so that the ZIP
  // itself stays valid and only the bundle's own checks can object).
  fs::path Edited(const std::function<void(zip_t*)>& edit) {
    fs::path copy = tmp_.path() / ("edited-" + std::to_string(++edits_) +
                                   ".zip");
    fs::copy_file(good_, copy);
    int error = 0;
    zip_t* zip = zip_open(copy.c_str(), 0, &error);
    EXPECT_NE(zip, nullptr);
    edit(zip);
    EXPECT_EQ(zip_close(zip), 0) << zip_strerror(zip);
    return copy;
  }

  static void Replace(zip_t* zip, const char* name, const std::string& bytes) {
    void* copy = std::malloc(bytes.size() + 1);
    std::memcpy(copy, bytes.data(), bytes.size());
    zip_source_t* source = zip_source_buffer(zip, copy, bytes.size(), 1);
    ASSERT_GE(zip_file_add(zip, name, source, ZIP_FL_OVERWRITE), 0)
        << zip_strerror(zip);
  }

  static std::string Part(zip_t* zip, const char* name) {
    zip_stat_t st;
    EXPECT_EQ(zip_stat(zip, name, 0, &st), 0);
    std::string bytes(st.size, '\0');
    zip_file_t* f = zip_fopen(zip, name, 0);
    EXPECT_EQ(zip_fread(f, bytes.data(), st.size),
              static_cast<zip_int64_t>(st.size));
    zip_fclose(f);
    return bytes;
  }

  // Opens `path`, expecting a rejection whose message contains `what`.
  static void ExpectRejected(const fs::path& path, const std::string& what) {
    absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Open(path);
    ASSERT_FALSE(bundle.ok()) << "accepted a bundle with: " << what;
    EXPECT_NE(bundle.status().message().find(what), std::string::npos)
        << bundle.status();
    EXPECT_NE(bundle.status().message().find("rejected"), std::string::npos)
        << bundle.status();
  }

  TempDir tmp_;
  fs::path good_;
  int edits_ = 0;
};

TEST_F(VerifyTest, TheGoodBundleOpens) {
  absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Open(good_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  // META.json, SECURITY_INFO.json, then an entry document and a body each.
  EXPECT_EQ((*bundle)->meta().parts.size(), 1u + 2u * kFixtureEntries);
}

TEST_F(VerifyTest, AFlippedByteInTheFileIsRejected) {
  // Bodies are stored uncompressed: find one in the raw file and flip a
  // byte of it, as a bad disk or transfer would.
  absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Open(good_);
  ASSERT_TRUE(bundle.ok());
  std::string body = *(*bundle)->ReadPart("5.response_body");
  std::string raw = ReadFile(good_);
  size_t at = raw.find(body);
  ASSERT_NE(at, std::string::npos);
  raw[at + body.size() / 2] ^= 0x01;
  fs::path flipped = tmp_.path() / "flipped.zip";
  WriteFile(flipped, raw);
  ExpectRejected(flipped, "5.response_body");
}

TEST_F(VerifyTest, ABodyThatDoesNotMatchItsSha256IsRejected) {
  fs::path edited = Edited([&](zip_t* zip) {
    std::string body = Part(zip, "3.response_body");
    body[body.size() - 1] ^= 0x20;
    Replace(zip, "3.response_body", body);
  });
  ExpectRejected(edited, "part 3.response_body does not match its SHA-256");
}

TEST_F(VerifyTest, AnEntryDocumentThatWasEditedIsRejected) {
  fs::path edited = Edited([&](zip_t* zip) {
    std::string entry = Part(zip, "0.json");
    size_t at = entry.find("text/plain");
    ASSERT_NE(at, std::string::npos);
    entry.replace(at, 10, "text/html!");
    Replace(zip, "0.json", entry);
  });
  ExpectRejected(edited, "part 0.json does not match its SHA-256");
}

TEST_F(VerifyTest, AMissingPartIsRejected) {
  fs::path edited = Edited([&](zip_t* zip) {
    ASSERT_EQ(zip_delete(zip, zip_name_locate(zip, "7.response_body", 0)), 0);
  });
  ExpectRejected(edited, "part 7.response_body listed in META.json is missing");
}

TEST_F(VerifyTest, AnUnlistedPartIsRejected) {
  fs::path edited = Edited(
      [&](zip_t* zip) { Replace(zip, "37.response_body", "surprise"); });
  ExpectRejected(edited, "part 37.response_body is not listed in META.json");
}

TEST_F(VerifyTest, AMissingMetaIsRejected) {
  fs::path edited = Edited([&](zip_t* zip) {
    ASSERT_EQ(zip_delete(zip, zip_name_locate(zip, "META.json", 0)), 0);
  });
  ExpectRejected(edited, "no META.json");
}

TEST_F(VerifyTest, BadMetaIsRejected) {
  struct Case {
    std::string from, to, error;
  };
  for (const Case& c : std::vector<Case>{
           {"\"origin\"", "\"origine\"", "\"origin\" is missing"},
           {"\"format_version\": 1", "\"format_version\": 9",
            "format version 9 is not supported"},
           {"quiesce-cache-bundle", "appelflap", "\"format\" is not"},
           {"\"number_of_entries\": 37", "\"number_of_entries\": 36",
            "part 36.json is not a part of this format"},
           {"{", "[", "META.json is not a JSON object"},
       }) {
    fs::path edited = Edited([&](zip_t* zip) {
      std::string meta = Part(zip, "META.json");
      size_t at = meta.find(c.from);
      ASSERT_NE(at, std::string::npos) << c.from;
      meta.replace(at, c.from.size(), c.to);
      Replace(zip, "META.json", meta);
    });
    ExpectRejected(edited, c.error);
  }
}

TEST_F(VerifyTest, AWrongChecksumInMetaIsRejected) {
  fs::path edited = Edited([&](zip_t* zip) {
    std::string meta = Part(zip, "META.json");
    std::string sha = bundle::Sha256Hex(Part(zip, "SECURITY_INFO.json"));
    size_t at = meta.find(sha);
    ASSERT_NE(at, std::string::npos);
    meta[at] = meta[at] == '0' ? '1' : '0';
    Replace(zip, "META.json", meta);
  });
  ExpectRejected(edited, "part SECURITY_INFO.json does not match its SHA-256");
}

TEST_F(VerifyTest, NotAZipIsRejected) {
  fs::path junk = tmp_.path() / "junk.zip";
  WriteFile(junk, "this is not a zip file at all");
  absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Open(junk);
  ASSERT_FALSE(bundle.ok());
  EXPECT_NE(bundle.status().message().find("not a readable ZIP"),
            std::string::npos)
      << bundle.status();
}

}  // namespace
}  // namespace quiesce::testing
