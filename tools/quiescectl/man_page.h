// quiescectl(1) and quiesce(7) as roff, written from the same tables that
// `quiescectl --help` prints and from the shim's one table of environment
// variables (vfs/config.h), so the man pages cannot drift from either.
// `quiescectl help --man 1|7` prints them; the build installs the output.
#ifndef QUIESCE_TOOLS_QUIESCECTL_MAN_PAGE_H_
#define QUIESCE_TOOLS_QUIESCECTL_MAN_PAGE_H_

#include <cstdio>
#include <span>

namespace quiesce::ctl {

// One of quiescectl's commands: its synopsis (after "quiescectl") and its
// help text (paragraphs; lines indented by two spaces are examples).
struct ManCommand {
  const char* name;
  const char* synopsis;
  const char* help;
};

// A global option, an exit code or an environment variable: a label and
// its meaning (lines broken with '\n' for --help; joined in a man page).
struct ManItem {
  const char* label;
  const char* text;
};

struct QuiescectlManual {
  const char* version;
  const char* summary;  // one line: what quiescectl is
  std::span<const ManCommand> commands;
  std::span<const ManItem> options;
  std::span<const ManItem> exit_codes;
  std::span<const ManItem> environment;
};

void PrintQuiescectlMan(const QuiescectlManual& manual, FILE* out);

// quiesce(7): loading the shim, PRAGMA quiesce_status, and every variable
// of the shim's environment table.
void PrintShimMan(const char* version, FILE* out);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_MAN_PAGE_H_
