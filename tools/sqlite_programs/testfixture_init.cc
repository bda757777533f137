// SQLITE_EXTRA_INIT for SQLite's testfixture: registers the quiesce shim as
// the default VFS under the name "unix", wrapping the real "unix", so that
// SQLite's own TCL tests run through it (the way Verneuil and LiteFS run the
// suite through themselves).
//
// SQLite is compiled into testfixture, so the shim's function table is
// filled from the linked functions themselves, not by dlsym (testfixture
// exports nothing). QUIESCE_TESTFIXTURE_BARE=1 leaves the shim out, so that
// one binary runs the suite both ways and failures can be compared.
#include <cstdlib>
#include <cstring>

#include "quiesce/quiesce.h"
#include "sqlite_api.h"

namespace {

struct Symbol {
  const char* name;
  void* address;
};

#define QUIESCE_TESTFIXTURE_SYMBOL(name) \
  {"sqlite3_" #name, reinterpret_cast<void*>(&::sqlite3_##name)},
const Symbol kSymbols[] = {QUIESCE_SQLITE_FUNCTIONS(QUIESCE_TESTFIXTURE_SYMBOL)};
#undef QUIESCE_TESTFIXTURE_SYMBOL

void* Resolve(void*, const char* symbol) {
  for (const Symbol& s : kSymbols) {
    if (std::strcmp(s.name, symbol) == 0) return s.address;
  }
  return nullptr;
}

// The shim, once registered. sqlite3_shutdown() + sqlite3_initialize() (many
// tests do that) re-runs the unix VFS's own init, which registers the real
// "unix" as the default again, in front of the shim: it must be put back at
// the head, the way any host that restarts SQLite has to.
sqlite3_vfs* g_shim = nullptr;

}  // namespace

extern "C" int quiesce_testfixture_init(const char*) {
  const char* bare = std::getenv("QUIESCE_TESTFIXTURE_BARE");
  if (bare != nullptr && std::strcmp(bare, "1") == 0) return SQLITE_OK;
  if (g_shim != nullptr) {
    return sqlite3_vfs_find(nullptr) == g_shim ? SQLITE_OK
                                               : sqlite3_vfs_register(g_shim, 1);
  }
  quiesce_config config{};
  config.size = sizeof config;
  config.base_vfs = "unix";
  config.vfs_name = "unix";
  config.make_default = 1;
  config.resolve = Resolve;
  const int rc = quiesce_register(&config);
  if (rc == SQLITE_OK) g_shim = sqlite3_vfs_find(nullptr);
  return rc;
}
