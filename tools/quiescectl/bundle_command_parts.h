// What the bundle subcommands share: their parsed arguments and small
// helpers for output and exit codes. Internal to bundle_*_command.cc.
#ifndef QUIESCE_TOOLS_QUIESCECTL_BUNDLE_COMMAND_PARTS_H_
#define QUIESCE_TOOLS_QUIESCECTL_BUNDLE_COMMAND_PARTS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "codec.h"
#include "operations.h"

namespace quiesce::ctl {

struct BundleArgs {
  std::string socket;                 // --socket
  bool json = false;                  // --json
  std::string subcommand;             // ls, pack, inject
  std::vector<std::string> operands;  // inject's FILE
  std::string origin;                 // --origin URL
  std::string profile;                // --profile DIR
  std::string cache;                  // pack --cache NAME
  std::string output;                 // pack -o FILE
  bool keep_credentials = false;      // pack --keep-credentials
  std::optional<std::string> rename;  // inject --rename NAME
  bool overwrite = false;             // inject --overwrite
  // .flap (docs/flap.md): verify, inject and pack --format flap.
  std::string trust;           // --trust ROOT.pem
  std::string app_id;          // --app-id ID
  bool no_verify = false;      // inject --no-verify
  std::string format;          // pack --format quiesce|flap
  std::string key;             // pack --key DEVICE_KEY.pem
  std::string chain;           // pack --chain CHAIN.pem
  std::optional<int64_t> flap_version;  // pack --version N (.flap)
  std::string shown_file;      // inject: the .flap a converted FILE came from
  bool force = false;                 // pack --force: replace -o FILE
};

// Refuses (exit 2) an output that exists unless `force`.
bool OutputAllowed(const std::string& output, bool force, Failure* failure);

int BundleLs(const BundleArgs& args);
int BundlePack(const BundleArgs& args);
int BundleInject(const BundleArgs& args);
int BundleVerify(const BundleArgs& args);
// inject of a .flap: verified, converted, then BundleInject's path.
int BundleInjectFlap(const BundleArgs& args);
// pack --format flap.
int BundlePackFlap(const BundleArgs& args);
int BundleRecover(const BundleArgs& args);

// Prints "quiescectl: bundle: <message>" and returns its exit code.
int ReportFailure(const Failure& failure);
// The exit code for a library error: refusals (NotFound,
// FailedPrecondition, Unimplemented) 4, anything else 1.
int ExitForStatus(const absl::Status& status);
// Prints the status as a failure and returns ExitForStatus.
int ReportStatus(const absl::Status& status, const std::string& context);
void PrintJson(const control::json& value);
// A line on stderr while a long step runs, only on a terminal.
void Note(const std::string& line);
// Drops the calling thread (and the threads it starts later) to the
// lowest CPU priority, nice 19, for the bulk of pack and inject (reading,
// hashing and writing hundreds of MB): the host's own work, which shares
// the device's cores, comes first. Only once nothing the host waits for
// is left to this process: a hold's release, say, must not queue behind
// other work. On Linux, niceness is per thread and inherited at thread
// creation.
void YieldCpuToTheHost();
// "1.2 MB", "340 kB", "12 B".
std::string HumanBytes(int64_t bytes);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_BUNDLE_COMMAND_PARTS_H_
