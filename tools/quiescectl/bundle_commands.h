// quiescectl bundle ls|pack|inject: Gecko Cache API caches of a live
// browser, packed into and injected from cache bundles (docs/bundles.md).
#ifndef QUIESCE_TOOLS_QUIESCECTL_BUNDLE_COMMANDS_H_
#define QUIESCE_TOOLS_QUIESCECTL_BUNDLE_COMMANDS_H_

#include <string>
#include <vector>

namespace quiesce::ctl {

extern const char kBundleSynopsis[];
extern const char kBundleHelp[];  // what it does, then examples

// Runs `quiescectl bundle ARGS...`. `socket` and `json` are quiescectl's
// global options as given before "bundle" (ARGS may give them too).
// Returns quiescectl's exit code.
int RunBundle(const std::string& socket, bool json,
              const std::vector<std::string>& args);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_BUNDLE_COMMANDS_H_
