// One quiescent point of a live origin for `bundle pack`: the rows (a
// snapshot) and every body file they reference (pinned by hard links), both
// as of the same commit, so that a page that keeps deleting cannot take a
// body away before it is copied.
//
// How: the client hard-links every body file now in morgue/ into a private
// pin directory, takes a `hold` (the gate closes, every host transaction
// and checkpoint drains), starts a WAL snapshot beside it (a snapshot needs
// no gate: quiesce's own connection reads under a read mark) and waits only
// for its first pages (from then on it stands at the point), links the
// bodies written since the first pins, and releases. The rest of the
// snapshot is written after the release; every body its rows reference
// must be among the pins. The copy into the bundle then reads the pins at
// leisure; the pins go with this object.
//
// Why hard links rather than open descriptors: a link is one syscall, costs
// no descriptor (a 2,000-entry cache would need 2,000 open files, past
// the usual soft limit of 1,024), and the pinned file reads like any other
// file, so the packer needs no special path. A link needs the pin
// directory on the body's filesystem: it lives beside the profile's
// storage/ directory (`<profile>/quiesce-staging/pack-<pid>-XXXXXX`), never
// inside an origin's directory, where Gecko's quota client would meet a
// file it does not know. A pin directory left by a quiescectl that was
// killed is removed by the next bundle command on the same profile.
#ifndef QUIESCE_TOOLS_QUIESCECTL_BUNDLE_POINT_H_
#define QUIESCE_TOOLS_QUIESCECTL_BUNDLE_POINT_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "bundle_live.h"
#include "inject_staging.h"  // StagingRoot
#include "operations.h"

namespace quiesce::ctl {

// Removes `<root>/<prefix><pid>-*` directories of processes that are gone.
void RemoveStaleDirs(const std::filesystem::path& root,
                     const std::string& prefix);

// A private directory `<root>/<prefix><pid>-XXXXXX` (0700); false with
// *failure on error.
bool MakePrivateDir(const std::filesystem::path& root,
                    const std::string& prefix, std::filesystem::path* dir,
                    Failure* failure);

class PackPoint {
 public:
  ~PackPoint();
  PackPoint(const PackPoint&) = delete;
  PackPoint& operator=(const PackPoint&) = delete;

  // Takes the point: pins, hold, the snapshot's start, pins, release. A lease that ended
  // before the release (the host took its point back) is tried again, up
  // to 3 times; other failures are final. A host that grants no hold
  // (read access only) gets pins around plain snapshots instead, up to 3.
  static std::unique_ptr<PackPoint> Take(LiveOrigin& live, Failure* failure);

  const Image& image() const { return *image_; }
  // Laid out like the cache directory: morgue/<n>/{uuid}.final.
  const std::filesystem::path& pins() const { return pins_; }
  int64_t bodies_pinned() const { return bodies_; }
  // From sending the hold to the release's reply: an upper bound of how
  // long a host transaction waited at the gate for this point.
  double held_ms() const { return held_ms_; }
  double drain_ms() const { return drain_ms_; }   // hold sent to its reply
  // Held: the hold's reply to the snapshot's first pages; else the whole
  // snapshot.
  double snapshot_ms() const { return snapshot_ms_; }
  // Held: the scan for bodies written since the first pins; else zero.
  double pin_ms() const { return pin_ms_; }
  int attempts() const { return attempts_; }
  // False when the host grants no hold (read access only): then the pins
  // were made after a plain snapshot, and a body the page deleted in
  // between made it try again.
  bool held() const { return holds_; }
  // The figures above, as the "point" object of pack's --json.
  control::json Describe() const;

 private:
  PackPoint() = default;

  std::unique_ptr<Image> image_;
  std::filesystem::path pins_;
  int64_t bodies_ = 0;
  double held_ms_ = 0, drain_ms_ = 0, snapshot_ms_ = 0, pin_ms_ = 0;
  int attempts_ = 0;
  bool holds_ = true;
};

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_BUNDLE_POINT_H_
