#include "bundle_point.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <vector>

#include "exit_codes.h"
#include "gecko_names.h"
#include "unique_fd.h"

namespace quiesce::ctl {
namespace {

namespace fs = std::filesystem;
using control::Client;
using control::Message;
using Clock = std::chrono::steady_clock;

constexpr int kCallTimeoutMs = 15000;
constexpr int kAttempts = 3;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

bool Fail(Failure* f, int code, std::string message) {
  f->exit_code = code;
  f->message = std::move(message);
  return false;
}

// A call whose transport failure means the host went away (exit 3).
bool Call(Client& client, const std::string& op, const json& args,
          Message* reply, Failure* failure, const std::vector<int>& fds = {}) {
  std::string error;
  const Client::Status s =
      client.Call(op, args, reply, kCallTimeoutMs, &error, fds);
  if (s == Client::Status::kTimeout) {
    return Fail(failure, kExitBusy, op + ": no reply in time");
  }
  if (s != Client::Status::kOk) {
    return Fail(failure, kExitUnreachable,
                op + ": the host went away (" + error + ")");
  }
  if (!reply->ok) {
    return Fail(failure, ExitForError(reply->error_code),
                op + ": " + reply->error_message + " (" + reply->error_code +
                    ")");
  }
  return true;
}

// Every body id the image's entries reference, of every cache: a superset
// of the packed cache's, read in one query (cheap while the point is held).
bool BodyIds(sqlite3* image, std::vector<std::string>* ids,
             Failure* failure) {
  static const char kSql[] =
      "SELECT request_body_id FROM entries WHERE request_body_id IS NOT NULL "
      "UNION SELECT response_body_id FROM entries "
      "WHERE response_body_id IS NOT NULL";
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(image, kSql, -1, &st, nullptr) != SQLITE_OK) {
    // Not a Cache API database (no entries table): nothing to pin; the
    // packer says what is wrong with it.
    sqlite3_finalize(st);
    return true;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    if (t) ids->emplace_back(reinterpret_cast<const char*>(t));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    return Fail(failure, kExitFailure,
                std::string("reading the body ids of the snapshot: ") +
                    sqlite3_errmsg(image));
  }
  return true;
}

}  // namespace

fs::path StagingRoot(const fs::path& cache_dir) {
  const fs::path origin = cache_dir.parent_path();
  const fs::path type = origin.parent_path();
  const fs::path storage = type.parent_path();
  if (cache_dir.filename() == "cache" && storage.filename() == "storage") {
    return storage.parent_path() / "quiesce-staging";
  }
  return type / "quiesce-staging";
}

void RemoveStaleDirs(const fs::path& root, const std::string& prefix) {
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid <= 0 || pid == getpid()) continue;
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);
  }
}

bool MakePrivateDir(const fs::path& root, const std::string& prefix,
                    fs::path* dir, Failure* failure) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) {
    return Fail(failure, kExitFailure,
                "cannot create " + root.string() + ": " + ec.message());
  }
  std::string pattern =
      (root / (prefix + std::to_string(getpid()) + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return Fail(failure, kExitFailure,
                "cannot create a directory in " + root.string() + ": " +
                    std::strerror(errno));
  }
  *dir = pattern;
  return true;
}

PackPoint::~PackPoint() {
  image_.reset();
  if (!pins_.empty()) {
    std::error_code ec;
    fs::remove_all(pins_, ec);
  }
}

namespace {

// Links every .final body now in `cache_dir`/morgue into `pins` (before the
// hold, so that inside it only bodies written since need a link). A body
// deleted meanwhile is skipped: if a row still references it at the point,
// it cannot have been deleted.
void PrePin(const fs::path& cache_dir, const fs::path& pins,
            std::set<std::string>* pinned) {
  std::error_code ec;
  for (fs::directory_iterator d(cache_dir / "morgue", ec), end;
       !ec && d != end; d.increment(ec)) {
    const std::string sub = d->path().filename().string();
    std::error_code ec2;
    bool made = false;
    for (fs::directory_iterator f(d->path(), ec2); !ec2 && f != end;
         f.increment(ec2)) {
      const std::string name = f->path().filename().string();
      if (!name.ends_with(".final")) continue;
      const std::string rel = "morgue/" + sub + "/" + name;
      if (!made) {
        std::error_code ignored;
        fs::create_directories(pins / "morgue" / sub, ignored);
        made = true;
      }
      if (link(f->path().c_str(), (pins / rel).c_str()) == 0) {
        pinned->insert(rel);
      }
    }
  }
}

}  // namespace

std::unique_ptr<PackPoint> PackPoint::Take(LiveOrigin& live,
                                           Failure* failure) {
  const fs::path root = StagingRoot(live.cache_dir());
  RemoveStaleDirs(root, "pack-");
  std::unique_ptr<PackPoint> point(new PackPoint);
  Client& client = live.client();
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    point->attempts_ = attempt;
    point->image_.reset();
    if (!point->pins_.empty()) {
      std::error_code ec;
      fs::remove_all(point->pins_, ec);
      point->pins_.clear();
    }
    if (!MakePrivateDir(root, "pack-", &point->pins_, failure)) return nullptr;
    std::set<std::string> pinned;
    PrePin(live.cache_dir(), point->pins_, &pinned);
    const fs::path image_path = live.Scratch(
        "point-" + std::to_string(attempt) + ".sqlite");
    control::UniqueFd image_fd(open(image_path.c_str(),
                                    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
                                    0600));
    if (!image_fd) {
      Fail(failure, kExitFailure,
           "cannot write " + image_path.string() + ": " + std::strerror(errno));
      return nullptr;
    }

    // 1. The point.
    const auto start = Clock::now();
    Message hold;
    if (point->holds_ &&
        !Call(client, "hold", {{"db", live.db_path()}}, &hold, failure)) {
      if (hold.error_code != "forbidden") return nullptr;
      // A host that grants reads only: no point to hold. Pins made
      // around a plain snapshot lose a body only when the page deletes
      // it in the milliseconds between the snapshot and its pin: try
      // again then.
      point->holds_ = false;
    }
    const auto held = Clock::now();
    const int64_t hold_id = hold.id.value_or(0);
    Failure inner;
    // 2. The rows: a snapshot beside the hold (it needs no gate), into a
    // scratch file; checked after the release.
    Message snap;
    bool ok = Call(client, "snapshot", {{"db", live.db_path()}}, &snap,
                   &inner, {image_fd.get()});
    const auto snapped = Clock::now();
    sqlite3* db = nullptr;
    const uint64_t generation =
        point->holds_ ? hold.result.value("generation", uint64_t{0})
                      : snap.result.value("generation", uint64_t{0});
    if (ok && snap.result.value("generation", uint64_t{0}) != generation) {
      ok = Fail(&inner, kExitBusy,
                "the snapshot stands at generation " +
                    std::to_string(snap.result.value("generation", 0ull)) +
                    ", the hold at " + std::to_string(generation) +
                    " (the lease ended before the snapshot was taken)");
    }
    if (ok && sqlite3_open_v2(image_path.c_str(), &db, SQLITE_OPEN_READONLY,
                              nullptr) != SQLITE_OK) {
      ok = Fail(&inner, kExitFailure,
                "cannot open the snapshot " + image_path.string() + ": " +
                    (db ? sqlite3_errmsg(db) : "out of memory"));
    }
    auto image = std::make_unique<Image>(db, image_path, generation);
    // 3. The bodies: pinned while nothing can delete them.
    std::vector<std::string> ids;
    if (ok) ok = BodyIds(db, &ids, &inner);
    for (size_t i = 0; ok && i < ids.size(); ++i) {
      const auto rel = bundle::MorguePathOfBodyId(ids[i]);
      if (!rel) continue;  // not a body id: the packer refuses the entry
      if (pinned.count(*rel)) continue;
      const fs::path dst = point->pins_ / *rel;
      const fs::path src = live.cache_dir() / *rel;
      if (link(src.c_str(), dst.c_str()) == 0) {
        pinned.insert(*rel);
        continue;
      }
      if (errno == ENOENT) {
        std::error_code ignored;
        fs::create_directories(dst.parent_path(), ignored);
        if (link(src.c_str(), dst.c_str()) == 0) {
          pinned.insert(*rel);
          continue;
        }
      }
      const int err = errno;
      std::error_code ec;
      if (err == ENOENT && !fs::exists(src, ec)) {
        ok = point->holds_
                 // Referenced by a row at the point, yet absent: the
                 // origin's storage is damaged (not a race: nothing
                 // commits meanwhile).
                 ? Fail(&inner, kExitFailure,
                        "the body file " + src.string() +
                            " is referenced at generation " +
                            std::to_string(generation) +
                            " but does not exist")
                 : Fail(&inner, kExitBusy,
                        "the body file " + src.string() + " was gone " +
                            "after each of " + std::to_string(kAttempts) +
                            " snapshots (the host grants no hold, so pins "
                            "are made after each snapshot, and the page "
                            "deleted a body before its pin, or the body is "
                            "missing for good); with write access "
                            "(QUIESCE_WRITABLE) pack takes its rows and "
                            "bodies at one quiescent point instead");
        break;
      }
      ok = Fail(&inner, kExitFailure,
                "cannot pin " + src.string() + " as " + dst.string() + ": " +
                    std::strerror(err) +
                    (err == EXDEV ? " (the pin directory must be on the "
                                    "profile's filesystem)"
                                  : ""));
    }
    const auto pinned_at = Clock::now();
    // 4. Release: the host's transactions go on.
    Message released;
    released.result["intact"] = true;
    const bool released_ok =
        !point->holds_ ||
        Call(client, "release", {{"hold", hold_id}}, &released, failure);
    const auto end = Clock::now();
    if (!released_ok) return nullptr;
    if (ok) {
      std::string sha;
      if (fsync(image_fd.get()) != 0 || !FileSha256(image_path, &sha) ||
          sha != snap.result.value("sha256", "")) {
        ok = Fail(&inner, kExitFailure,
                  "the snapshot written to " + image_path.string() +
                      " does not match the host's SHA-256");
      }
    }
    if (!ok) {
      *failure = inner;
      if (inner.exit_code != kExitBusy) return nullptr;
      continue;
    }
    if (!released.result.value("intact", false)) {
      Fail(failure, kExitBusy,
           "the host ended the hold before the pins were made (its lease "
           "cap is shorter than snapshot and pins took: " +
               std::to_string(static_cast<int>(Ms(end - start))) + " ms)");
      continue;
    }
    point->image_ = std::move(image);
    point->bodies_ = static_cast<int64_t>(ids.size());
    point->drain_ms_ = Ms(held - start);
    point->snapshot_ms_ = Ms(snapped - held);
    point->pin_ms_ = Ms(pinned_at - snapped);
    point->held_ms_ = point->holds_ ? Ms(end - start) : 0;
    return point;
  }
  return nullptr;
}

control::json PackPoint::Describe() const {
  return {{"held", held()},
          {"held_ms", held_ms()},
          {"drain_ms", drain_ms()},
          {"snapshot_ms", snapshot_ms()},
          {"pin_ms", pin_ms()},
          {"bodies_pinned", bodies_pinned()},
          {"attempts", attempts()}};
}

}  // namespace quiesce::ctl
