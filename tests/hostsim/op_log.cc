#include "op_log.h"

#include <fstream>

namespace quiesce::testing {

std::vector<json> ReadOpLog(const std::string& path) {
  std::vector<json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return {};
    lines.push_back(std::move(parsed));
  }
  return lines;
}

std::vector<json> OpsOf(const std::vector<json>& log, const std::string& db) {
  std::vector<json> ops;
  for (const json& op : log) {
    if (op.value("db", "") == db) ops.push_back(op);
  }
  return ops;
}

std::map<std::string, json> FinalEntries(const std::vector<json>& ops) {
  std::map<std::string, json> entries;
  for (const json& op : ops) {
    const std::string url = op.value("url", "");
    if (op.value("op", "") == "put") {
      entries[url] = op;
    } else {
      entries.erase(url);
    }
  }
  return entries;
}

}  // namespace quiesce::testing
