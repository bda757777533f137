// Gecko's Cache API database (dom/cache/DBSchema.cpp): the settings it
// gives an origin's caches.sqlite connection, and the schema that Firefox
// ESR 153 creates (user_version 31), as read from a profile it made
// (../shared/fixtures/firefox-esr-153).
#ifndef QUIESCE_TOOLS_HOSTSIM_CACHE_SCHEMA_H_
#define QUIESCE_TOOLS_HOSTSIM_CACHE_SCHEMA_H_

#include <string>

struct sqlite3;

namespace quiesce::hostsim {

inline constexpr int kCacheSchemaVersion = 31;

// page_size 4096, auto_vacuum INCREMENTAL, foreign_keys ON, a 32 KiB growth
// increment, a persistent WAL, wal_autocheckpoint 128, journal_mode WAL,
// synchronous NORMAL (desktop) and Gecko's compile-time journal_size_limit,
// in Gecko's order
// (page size and auto-vacuum must precede the first table). No busy
// handler: Gecko sets none.
bool ConfigureCacheConnection(sqlite3* db, std::string* error);

// Creates the schema in an empty database, in one BEGIN IMMEDIATE
// transaction; accepts a database that already has version 31.
bool CreateOrCheckCacheSchema(sqlite3* db, std::string* error);

}  // namespace quiesce::hostsim

#endif  // QUIESCE_TOOLS_HOSTSIM_CACHE_SCHEMA_H_
