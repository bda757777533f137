#include "sqlite_allocator.h"

#include <mimalloc.h>
#include <sqlite3.h>

#include <cstddef>

namespace quiesce::hostsim {

namespace {

void* Malloc(int size) { return mi_malloc(static_cast<size_t>(size)); }
void Free(void* p) { mi_free(p); }
void* Realloc(void* p, int size) {
  return mi_realloc(p, static_cast<size_t>(size));
}
int Size(void* p) { return static_cast<int>(mi_usable_size(p)); }
// What mimalloc would really hand out for `size`: SQLite uses the slack
// (lookaside, page cache) instead of wasting it.
int Roundup(int size) {
  return static_cast<int>(mi_good_size(static_cast<size_t>(size)));
}
int Init(void*) { return SQLITE_OK; }
void Shutdown(void*) {}

const sqlite3_mem_methods kMimalloc = {Malloc, Free,  Realloc,  Size,
                                       Roundup, Init, Shutdown, nullptr};

}  // namespace

bool UseMimallocForSqlite() {
  return sqlite3_config(SQLITE_CONFIG_MALLOC, &kMimalloc) == SQLITE_OK;
}

}  // namespace quiesce::hostsim
