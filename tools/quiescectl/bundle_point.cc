#include "bundle_point.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
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

// Hard links to the .final bodies of `cache_dir`/morgue in `pins`, made in
// two scans: all of them before the hold (the bulk), then inside it only
// what the page wrote since. At the point every body a committed row
// references exists, since Gecko writes a body before the row that names
// it commits and deletes it only after the row's removal commits; a body
// deleted between the scans is skipped: no row references it at the point.
class MorguePins {
 public:
  MorguePins(const fs::path& cache_dir, fs::path pins)
      : morgue_(cache_dir / "morgue"), pins_(std::move(pins)) {}

  void PinAll() {
    first_scan_ = std::chrono::system_clock::now();
    Scan(false);
  }
  // Rescans only the subdirectories whose mtime moved since PinAll, or
  // that had been modified within kTick before it (a change in the same
  // tick of the kernel's coarse clock leaves the mtime as it was), or whose
  // filesystem keeps whole seconds only. Should a change still be missed,
  // the pack pins the body after the release while it exists, or tries
  // again: never a wrong bundle.
  void PinChanged() { Scan(true); }

  bool Pinned(const std::string& rel) const { return pinned_.count(rel); }
  void Add(const std::string& rel) { pinned_.insert(rel); }

 private:
  static std::optional<std::chrono::system_clock::time_point> Mtime(
      const fs::path& dir) {
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) return std::nullopt;
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) +
            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  }

  void Scan(bool changed_only) {
    std::error_code ec;
    for (fs::directory_iterator d(morgue_, ec), end; !ec && d != end;
         d.increment(ec)) {
      const std::string sub = d->path().filename().string();
      const auto mtime = Mtime(d->path());  // before reading it
      if (changed_only && mtime) {
        const auto seen = mtimes_.find(sub);
        if (seen != mtimes_.end() && seen->second == *mtime &&
            mtime->time_since_epoch() % std::chrono::seconds(1) !=
                std::chrono::system_clock::duration::zero() &&
            *mtime < first_scan_ - kTick) {
          continue;
        }
      }
      if (!changed_only && mtime) mtimes_[sub] = *mtime;
      PinDirectory(d->path(), sub);
    }
  }

  void PinDirectory(const fs::path& dir, const std::string& sub) {
    std::error_code ec;
    bool made = false;
    for (fs::directory_iterator f(dir, ec), end; !ec && f != end;
         f.increment(ec)) {
      const std::string name = f->path().filename().string();
      if (!name.ends_with(".final")) continue;
      std::string rel = "morgue/" + sub + "/" + name;
      if (pinned_.count(rel)) continue;
      if (!made) {
        std::error_code ignored;
        fs::create_directories(pins_ / "morgue" / sub, ignored);
        made = true;
      }
      if (link(f->path().c_str(), (pins_ / rel).c_str()) == 0) {
        pinned_.insert(std::move(rel));
      }
    }
  }

  // Far more than a jiffy at HZ=100, the coarsest kernel clock for mtimes.
  static constexpr std::chrono::milliseconds kTick{100};

  fs::path morgue_;
  fs::path pins_;
  std::set<std::string> pinned_;
  std::map<std::string, std::chrono::system_clock::time_point> mtimes_;
  std::chrono::system_clock::time_point first_scan_;
};

// Reads messages until the reply to request `id` (into *reply; *ended set)
// or, when `until_started`, until its first progress event: the snapshot
// stands at its point from then on. False with *failure when the host went
// away or took too long.
bool AwaitSnapshot(Client& client, int64_t id, bool until_started,
                   Message* reply, bool* ended, Failure* failure) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(
                                           kCallTimeoutMs);
  for (;;) {
    const int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                              Clock::now())
            .count());
    Message m;
    std::string error;
    const Client::Status s = client.Read(&m, std::max(left, 0), &error);
    if (s == Client::Status::kTimeout) {
      return Fail(failure, kExitBusy, "snapshot: no reply in time");
    }
    if (s != Client::Status::kOk) {
      return Fail(failure, kExitUnreachable,
                  "snapshot: the host went away (" + error + ")");
    }
    if (m.id != id) continue;  // another request's event (a revoked hold)
    if (!m.is_event) {
      *reply = std::move(m);
      *ended = true;
      return true;
    }
    if (until_started && m.event == "progress") return true;
  }
}

// The image written to `fd` at `path` is what the host hashed, and stands
// at `generation`.
bool CheckImage(const Message& snap, uint64_t generation, int fd,
                const fs::path& path, Failure* failure) {
  if (!snap.ok) {
    return Fail(failure, ExitForError(snap.error_code),
                "snapshot: " + snap.error_message + " (" + snap.error_code +
                    ")");
  }
  const uint64_t at = snap.result.value("generation", uint64_t{0});
  if (at != generation) {
    return Fail(failure, kExitBusy,
                "the snapshot stands at generation " + std::to_string(at) +
                    ", the hold at " + std::to_string(generation) +
                    " (the lease ended before the snapshot was taken)");
  }
  std::string sha;
  if (fsync(fd) != 0 || !FileSha256(path, &sha) ||
      sha != snap.result.value("sha256", "")) {
    return Fail(failure, kExitFailure,
                "the snapshot written to " + path.string() +
                    " does not match the host's SHA-256");
  }
  return true;
}

std::unique_ptr<Image> OpenImage(const fs::path& path, uint64_t generation,
                                 Failure* failure) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    Fail(failure, kExitFailure,
         "cannot open the snapshot " + path.string() + ": " +
             (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return nullptr;
  }
  return std::make_unique<Image>(db, path, generation);
}

// Links the body `rel` (morgue/<n>/<uuid>.final) of `cache_dir` into
// `pins`; false with errno set otherwise.
bool PinBody(const fs::path& cache_dir, const fs::path& pins,
             const std::string& rel) {
  const fs::path dst = pins / rel;
  const fs::path src = cache_dir / rel;
  if (link(src.c_str(), dst.c_str()) == 0) return true;
  if (errno != ENOENT) return false;
  std::error_code ignored;
  fs::create_directories(dst.parent_path(), ignored);
  return link(src.c_str(), dst.c_str()) == 0;
}

}  // namespace

// With a hold: hold; snapshot until its first pages are out (it stands at
// the point from then on, and needs no gate); pin what the page wrote
// since the pins before the hold; release; then the rest of the snapshot
// and the check that every body the rows reference was pinned. The page
// waits for the drain, the snapshot's start, one scan of morgue/ and two
// round trips, not for the copy of caches.sqlite.
//
// Without one (read access only): a plain snapshot, then a pin for every
// body its rows reference; a body the page deleted in between makes the
// attempt fail as busy, and it is tried again.
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
    MorguePins pinned(live.cache_dir(), point->pins_);
    pinned.PinAll();
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
      point->holds_ = false;
    }
    const auto held = Clock::now();
    Failure inner;
    // 2. The rows: a snapshot into a scratch file, standing at the point.
    int64_t snap_id = 0;
    std::string error;
    const Client::Status sent = client.Send(
        "snapshot", {{"db", live.db_path()}, {"progress", true}},
        {image_fd.get()}, &snap_id, kCallTimeoutMs, &error);
    if (sent != Client::Status::kOk) {
      Fail(failure, kExitUnreachable,
           "snapshot: the host went away (" + error + ")");
      return nullptr;
    }
    Message snap;
    bool ended = false;
    if (!AwaitSnapshot(client, snap_id, point->holds_, &snap, &ended,
                       failure)) {
      return nullptr;
    }
    const auto snapped = Clock::now();
    // 3. The bodies: pinned while nothing can delete them.
    if (point->holds_) pinned.PinChanged();
    const auto pinned_at = Clock::now();
    // 4. Release: the host's transactions go on.
    Message released;
    released.result["intact"] = true;
    if (point->holds_ && !Call(client, "release",
                               {{"hold", hold.id.value_or(0)}}, &released,
                               failure)) {
      return nullptr;
    }
    const auto end = Clock::now();
    if (!ended && !AwaitSnapshot(client, snap_id, false, &snap, &ended,
                                 failure)) {
      return nullptr;
    }
    const uint64_t generation =
        point->holds_ ? hold.result.value("generation", uint64_t{0})
                      : snap.result.value("generation", uint64_t{0});
    bool ok = CheckImage(snap, generation, image_fd.get(), image_path, &inner);
    if (ok && !released.result.value("intact", false)) {
      ok = Fail(&inner, kExitBusy,
                "the host ended the hold before the pins were made (its "
                "lease cap is shorter than the snapshot's start and the "
                "pins took: " +
                    std::to_string(static_cast<int>(Ms(end - start))) +
                    " ms)");
    }
    std::unique_ptr<Image> image;
    if (ok) {
      image = OpenImage(image_path, generation, &inner);
      ok = image != nullptr;
    }
    std::vector<std::string> ids;
    if (ok) ok = BodyIds(image->db(), &ids, &inner);
    for (size_t i = 0; ok && i < ids.size(); ++i) {
      const auto rel = bundle::MorguePathOfBodyId(ids[i]);
      // A bad id is not pinned: the packer says what is wrong with it.
      if (!rel || pinned.Pinned(*rel)) continue;
      const fs::path src = live.cache_dir() / *rel;
      // Held: every referenced body was in morgue/ while the point was
      // held, so a scan cannot have missed it; should one have (a clock
      // step back defeating the mtime check), a link now is as good while
      // the file exists: a body's bytes never change.
      if (PinBody(live.cache_dir(), point->pins_, *rel)) {
        pinned.Add(*rel);
        continue;
      }
      const int err = errno;
      if (err == ENOENT && point->holds_) {
        ok = Fail(&inner, kExitBusy,
                  "the body file " + src.string() +
                      " is referenced at generation " +
                      std::to_string(generation) +
                      " but was not in morgue/ while the point was held "
                      "(the origin's storage is damaged)");
      } else if (err == ENOENT) {
        ok = Fail(&inner, kExitBusy,
                  "the body file " + src.string() + " was gone after each " +
                      "of " + std::to_string(kAttempts) +
                      " snapshots (the host grants no hold, so pins are "
                      "made after each snapshot, and the page deleted a "
                      "body before its pin, or the body is missing for "
                      "good); with write access (QUIESCE_WRITABLE) pack "
                      "takes its rows and bodies at one quiescent point "
                      "instead");
      } else {
        ok = Fail(&inner, kExitFailure,
                  "cannot pin " + src.string() + " in " +
                      point->pins_.string() + ": " + std::strerror(err) +
                      (err == EXDEV ? " (the pin directory must be on the "
                                      "profile's filesystem)"
                                    : ""));
      }
    }
    if (!ok) {
      *failure = inner;
      if (inner.exit_code != kExitBusy) return nullptr;
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
