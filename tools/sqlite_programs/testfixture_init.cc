// SQLITE_EXTRA_INIT for SQLite's testfixture: registers the quiesce shim as
// the default VFS under the name "unix", wrapping the real "unix", so that
// SQLite's own TCL tests run through it (the way Verneuil and LiteFS run the
// suite through themselves).
//
// SQLite is compiled into testfixture, so the shim's function table is
// filled from the linked functions themselves, not by dlsym (testfixture
// exports nothing). QUIESCE_TESTFIXTURE_BARE=1 leaves the shim out, so that
// one binary runs the suite both ways and failures can be compared.
// QUIESCE_MAX_STALL_MS and QUIESCE_LEASE_MS apply as in any host.
//
// QUIESCE_TESTFIXTURE_GATE=cycle also closes and reopens the shim's gate
// under the tests (testfixture_gate.h). For it, the test code's calls to
// sqlite3_step are linked to __wrap_sqlite3_step below (-Wl,--wrap, in
// testfixture.mk); SQLite's own internal calls are not.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "config.h"
#include "quiesce/quiesce.h"
#include "sqlite_api.h"
#include "testfixture_gate.h"

// The real sqlite3_step, under the name the linker's --wrap gives it.
extern "C" int __real_sqlite3_step(sqlite3_stmt*);

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
  // &::sqlite3_step is the wrapper here: the shim gets the real one.
  if (std::strcmp(symbol, "sqlite3_step") == 0) {
    return reinterpret_cast<void*>(&__real_sqlite3_step);
  }
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

bool IsSet(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

}  // namespace

extern "C" int __wrap_sqlite3_step(sqlite3_stmt* stmt) {
  quiesce_testfixture::BeforeStep(stmt);
  return __real_sqlite3_step(stmt);
}

extern "C" int quiesce_testfixture_init(const char*) {
  if (IsSet("QUIESCE_TESTFIXTURE_BARE", "1")) {
    const char* gate = std::getenv("QUIESCE_TESTFIXTURE_GATE");
    if (gate != nullptr && *gate != '\0' && std::strcmp(gate, "off") != 0) {
      std::fprintf(stderr, "quiesce testfixture: the gate mode needs the shim "
                           "(QUIESCE_TESTFIXTURE_BARE=1 is set)\n");
      return SQLITE_ERROR;
    }
    return SQLITE_OK;
  }
  if (g_shim != nullptr) {
    return sqlite3_vfs_find(nullptr) == g_shim ? SQLITE_OK
                                               : sqlite3_vfs_register(g_shim, 1);
  }
  auto from_env = quiesce::ConfigFromEnv(std::getenv);
  if (!from_env.ok()) {
    std::fprintf(stderr, "quiesce testfixture: %s\n",
                 from_env.error().message.c_str());
    return SQLITE_ERROR;
  }
  const quiesce::Config& env = from_env.value();
  quiesce_config config{};
  config.size = sizeof config;
  config.base_vfs = "unix";
  config.vfs_name = "unix";
  config.make_default = 1;
  config.max_stall_ms = env.max_stall_ms;
  config.lease_ms = env.lease_ms;
  config.resolve = Resolve;
  const int rc = quiesce_register(&config);
  if (rc != SQLITE_OK) return rc;
  g_shim = sqlite3_vfs_find(nullptr);
  return quiesce_testfixture::StartGateModeFromEnv() ? SQLITE_OK : SQLITE_ERROR;
}
