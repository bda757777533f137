// The host simulator's operation log (hostsim --gecko --log): one JSON
// line per committed put or delete, in commit order per origin.
#ifndef QUIESCE_TESTS_HOSTSIM_OP_LOG_H_
#define QUIESCE_TESTS_HOSTSIM_OP_LOG_H_

#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace quiesce::testing {

using nlohmann::json;

// Every line of the log; an empty list when it cannot be read.
std::vector<json> ReadOpLog(const std::string& path);

// The operations of one database (the log's "db"), in commit order.
std::vector<json> OpsOf(const std::vector<json>& log, const std::string& db);

// What the cache must hold after `ops`: URL -> the put that wrote it last,
// for every URL whose last operation was a put.
std::map<std::string, json> FinalEntries(const std::vector<json>& ops);

}  // namespace quiesce::testing

#endif  // QUIESCE_TESTS_HOSTSIM_OP_LOG_H_
