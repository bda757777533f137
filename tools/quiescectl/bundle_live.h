// The live side of `quiescectl bundle`: the host's caches.sqlite of one
// origin, and consistent images of it (quiesce snapshots) in a private
// scratch directory that is removed with this object.
#ifndef QUIESCE_TOOLS_QUIESCECTL_BUNDLE_LIVE_H_
#define QUIESCE_TOOLS_QUIESCECTL_BUNDLE_LIVE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client.h"
#include "operations.h"
#include "web_origin.h"

struct sqlite3;

namespace quiesce::ctl {

// A snapshot file opened read-only with SQLite; closed and removed on
// destruction.
class Image {
 public:
  Image(sqlite3* db, std::filesystem::path path, uint64_t generation)
      : db_(db), path_(std::move(path)), generation_(generation) {}
  ~Image();
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  sqlite3* db() const { return db_; }
  uint64_t generation() const { return generation_; }

 private:
  sqlite3* db_;                  // read-only connection to path_
  std::filesystem::path path_;   // the snapshot file
  uint64_t generation_;          // the commit it shows
};

class LiveOrigin {
 public:
  // Connects to the host at `socket` (or the one quiescectl would choose)
  // and finds the caches.sqlite of the origin among its open databases.
  // `candidates` are what the user's --origin may mean (OriginCandidates):
  // exactly one of them must be open (else a usage error naming them).
  // Refused (exit 4) when the host has none open.
  static std::unique_ptr<LiveOrigin> Find(
      const std::string& socket, const std::vector<bundle::WebOrigin>& candidates,
      const std::string& profile, Failure* failure);
  static std::unique_ptr<LiveOrigin> Find(const std::string& socket,
                                          const bundle::WebOrigin& origin,
                                          const std::string& profile,
                                          Failure* failure) {
    return Find(socket, std::vector<bundle::WebOrigin>{origin}, profile, failure);
  }
  const bundle::WebOrigin& origin() const { return origin_; }
  ~LiveOrigin();
  LiveOrigin(const LiveOrigin&) = delete;
  LiveOrigin& operator=(const LiveOrigin&) = delete;

  const std::string& db_path() const { return db_path_; }
  // The directory holding caches.sqlite and morgue/.
  std::filesystem::path cache_dir() const {
    return std::filesystem::path(db_path_).parent_path();
  }
  control::Client& client() { return *client_; }
  // A scratch file name in the private directory.
  std::filesystem::path Scratch(const std::string& name) const {
    return scratch_ / name;
  }

  // A consistent image of the live database as of its latest commit.
  // `progress` (may be empty) gets pages done and in all.
  std::unique_ptr<Image> Snapshot(
      const std::function<void(uint64_t, uint64_t)>& progress,
      Failure* failure);

 private:
  LiveOrigin(std::unique_ptr<control::Client> client, bundle::WebOrigin origin,
             std::string db_path, std::filesystem::path scratch)
      : client_(std::move(client)),
        origin_(std::move(origin)),
        db_path_(std::move(db_path)),
        scratch_(std::move(scratch)) {}

  std::unique_ptr<control::Client> client_;
  bundle::WebOrigin origin_;
  std::string db_path_;            // canonical, as the host lists it
  std::filesystem::path scratch_;  // private (0700) temporary directory
  int snapshots_ = 0;              // names the next snapshot file
};

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_BUNDLE_LIVE_H_
