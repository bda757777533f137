// quiescectl's human output: tables and lines for what the host replies.
#ifndef QUIESCE_TOOLS_QUIESCECTL_TABLES_H_
#define QUIESCE_TOOLS_QUIESCECTL_TABLES_H_

#include <cstdio>

#include "codec.h"

namespace quiesce::ctl {

using control::json;

// list's result as a table, one database per row.
void PrintList(const json& result, FILE* out);
// status's result: fields, counters, then one row per handle.
void PrintStatus(const json& result, FILE* out);
// One watch event as one line.
void PrintEvent(const json& event, FILE* out);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_TABLES_H_
