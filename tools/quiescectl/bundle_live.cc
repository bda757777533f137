#include "bundle_live.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "exit_codes.h"
#include "socket_choice.h"

namespace quiesce::ctl {
namespace {

constexpr int kCallTimeoutMs = 10000;

bool Fail(Failure* f, int code, std::string message) {
  f->exit_code = code;
  f->message = std::move(message);
  return false;
}

// A 0700 directory of our own under $TMPDIR (or /tmp).
bool MakeScratchDir(std::filesystem::path* dir, Failure* failure) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/quiescectl-bundle-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    return Fail(failure, kExitFailure,
                "cannot create a scratch directory in " +
                    pattern.substr(0, pattern.rfind('/')) + ": " +
                    std::strerror(errno));
  }
  *dir = pattern;
  return true;
}

}  // namespace

Image::~Image() {
  sqlite3_close(db_);
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

LiveOrigin::~LiveOrigin() {
  std::error_code ec;
  std::filesystem::remove_all(scratch_, ec);
}

std::unique_ptr<LiveOrigin> LiveOrigin::Find(
    const std::string& socket_flag, const std::vector<bundle::WebOrigin>& candidates,
    const std::string& profile, Failure* failure) {
  std::string socket, error;
  if (!ChooseSocket(socket_flag, &socket, &error)) {
    Fail(failure, kExitUnreachable, error);
    return nullptr;
  }
  auto client = control::Client::Connect(socket, kCallTimeoutMs, &error);
  if (!client) {
    Fail(failure, kExitUnreachable, error);
    return nullptr;
  }
  control::Message reply;
  const auto status =
      client->Call("list", json::object(), &reply, kCallTimeoutMs, &error);
  if (status != control::Client::Status::kOk || !reply.ok) {
    Fail(failure,
         status == control::Client::Status::kOk
             ? ExitForError(reply.error_code)
         : status == control::Client::Status::kTimeout ? kExitBusy
                                                       : kExitUnreachable,
         "list: " + (status == control::Client::Status::kOk
                         ? reply.error_message
                         : error));
    return nullptr;
  }
  std::string canonical_profile;
  if (!profile.empty()) {
    char* real = realpath(profile.c_str(), nullptr);
    if (real == nullptr) {
      Fail(failure, kExitUsage,
           "--profile " + profile + ": " + std::strerror(errno));
      return nullptr;
    }
    canonical_profile = real;
    free(real);
  }
  std::vector<std::string> found;
  std::vector<const bundle::WebOrigin*> found_origin;
  for (const json& db : reply.result.value("databases", json::array())) {
    const std::string path = db.value("path", "");
    for (const bundle::WebOrigin& o : candidates) {
      if (bundle::IsOriginCacheDatabase(path, o, canonical_profile)) {
        found.push_back(path);
        found_origin.push_back(&o);
      }
    }
  }
  const bundle::WebOrigin& origin = candidates.front();
  if (candidates.size() > 1) {
    std::set<std::string> open;
    for (const bundle::WebOrigin* o : found_origin) open.insert(o->origin);
    if (open.size() > 1) {
      std::string all;
      for (const std::string& o : open) all += (all.empty() ? "" : " or ") + o;
      Fail(failure, kExitUsage,
           "the browser has both " + all + " open: write --origin " +
               *open.begin());
      return nullptr;
    }
    if (open.empty()) {
      Fail(failure, kExitRefused,
           "the browser has neither " + candidates[0].origin + " nor " +
               candidates[1].origin +
               " open; open a page of it first, and write the origin with "
               "its scheme (--origin " + candidates[0].origin + ")");
      return nullptr;
    }
  }
  if (found.empty()) {
    // Open, but since before quiesce attached: say that, not "not open".
    for (const json& u : reply.result.value("untracked", json::array())) {
      const std::string path = u.value("path", "");
      if (bundle::IsOriginCacheDatabase(path, origin, canonical_profile)) {
        Fail(failure, kExitRefused,
             path + ": " + u.value("reason", std::string("untracked")));
        return nullptr;
      }
    }
    Fail(failure, kExitRefused,
         "the browser does not have " + origin.origin +
             " open; open a page of it first (looked for .../storage/"
             "default/" + origin.directory + "/cache/caches.sqlite" +
             (canonical_profile.empty() ? "" : " in " + canonical_profile) +
             ")");
    return nullptr;
  }
  if (found.size() > 1) {
    std::string all;
    for (const std::string& p : found) all += "\n  " + p;
    Fail(failure, kExitUsage,
         "the host has " + origin.origin +
             " open in several profiles; choose one with --profile:" + all);
    return nullptr;
  }
  std::filesystem::path scratch;
  if (!MakeScratchDir(&scratch, failure)) return nullptr;
  return std::unique_ptr<LiveOrigin>(
      new LiveOrigin(std::move(client), *found_origin.front(), found.front(),
                     std::move(scratch)));
}

std::unique_ptr<Image> LiveOrigin::Snapshot(
    const std::function<void(uint64_t, uint64_t)>& progress,
    Failure* failure) {
  const std::filesystem::path path =
      scratch_ / ("snapshot-" + std::to_string(++snapshots_) + ".sqlite");
  json result;
  if (!SnapshotToFile(*client_, db_path_, path.string(), false, progress,
                      &result, failure)) {
    return nullptr;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    Fail(failure, kExitFailure,
         "cannot open the snapshot " + path.string() + ": " +
             (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    std::error_code ec;
    std::filesystem::remove(path, ec);
    return nullptr;
  }
  return std::make_unique<Image>(db, path,
                                 result.value("generation", uint64_t{0}));
}

}  // namespace quiesce::ctl
