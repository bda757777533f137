#include "sqlite_objects.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>

namespace quiesce::preload {
namespace {

// The address range spanned by one loaded object's segments.
struct ObjectRange {
  uintptr_t lo = 0;
  uintptr_t hi = 0;            // one past the end; 0: no object
  const char* name = nullptr;  // dlpi_name: "" for the main program
  bool Contains(uintptr_t addr) const { return addr >= lo && addr < hi; }
};

struct ObjectSearch {
  uintptr_t addr;
  ObjectRange found;
};

int FindObject(dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<ObjectSearch*>(data);
  ObjectRange range{UINTPTR_MAX, 0, info->dlpi_name};
  bool contains = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    const uintptr_t end = start + ph.p_memsz;
    range.lo = std::min(range.lo, start);
    range.hi = std::max(range.hi, end);
    if (search->addr >= start && search->addr < end) contains = true;
  }
  if (!contains) return 0;
  search->found = range;
  return 1;  // stops the iteration
}

ObjectRange ObjectContaining(const void* addr) {
  ObjectSearch search{reinterpret_cast<uintptr_t>(addr), {}};
  dl_iterate_phdr(FindObject, &search);
  return search.found;
}

// A library's handle, keeping it loaded for good: a cached range must never
// outlive its object and then match another object mapped at its place.
void* Pin(const char* name) {
  if (name == nullptr || *name == '\0') return nullptr;
  return dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
}

// The host SQLite, found once it is loaded. Racing first calls compute the
// same values; atomics instead of a function-local static, whose guard a
// fork in the middle of its initialization would leave locked in the child.
struct Host {
  std::atomic<bool> ready{false};
  std::atomic<InitializeFn> initialize{nullptr};
  std::atomic<uintptr_t> lo{0}, hi{0};
  std::atomic<void*> handle{nullptr};  // null: search after the preload
};
Host g_host;

// Whether a host SQLite is known. None yet (a program whose only SQLite
// was loaded with RTLD_LOCAL) is looked for again on the next call.
bool FindHost() {
  if (g_host.ready.load(std::memory_order_acquire)) return true;
  auto initialize = reinterpret_cast<InitializeFn>(
      dlsym(RTLD_NEXT, "sqlite3_initialize"));
  if (initialize == nullptr) return false;
  const ObjectRange range =
      ObjectContaining(reinterpret_cast<const void*>(initialize));
  g_host.lo.store(range.lo, std::memory_order_relaxed);
  g_host.hi.store(range.hi, std::memory_order_relaxed);
  g_host.handle.store(Pin(range.name), std::memory_order_relaxed);
  g_host.initialize.store(initialize, std::memory_order_relaxed);
  g_host.ready.store(true, std::memory_order_release);
  return true;
}

// Callers whose own lookup finds a SQLite other than the host's, with that
// SQLite's sqlite3_initialize. Append-only; a slot is read once its `ready`
// is set.
struct Elsewhere {
  std::atomic<bool> ready{false};
  std::atomic<uintptr_t> lo{0}, hi{0};
  std::atomic<InitializeFn> initialize{nullptr};
};
constexpr unsigned kMaxElsewhere = 8;
std::array<Elsewhere, kMaxElsewhere> g_elsewhere;
std::atomic<unsigned> g_elsewhere_used{0};

InitializeFn CachedElsewhere(uintptr_t addr) {
  const unsigned used = std::min(
      g_elsewhere_used.load(std::memory_order_acquire), kMaxElsewhere);
  for (unsigned i = 0; i < used; ++i) {
    const Elsewhere& e = g_elsewhere[i];
    if (!e.ready.load(std::memory_order_acquire)) continue;
    if (addr >= e.lo.load(std::memory_order_relaxed) &&
        addr < e.hi.load(std::memory_order_relaxed)) {
      return e.initialize.load(std::memory_order_relaxed);
    }
  }
  return nullptr;
}

void RememberElsewhere(const ObjectRange& range, InitializeFn initialize) {
  const unsigned i = g_elsewhere_used.fetch_add(1, std::memory_order_acq_rel);
  if (i >= kMaxElsewhere) return;  // not cached: looked up on each call
  Elsewhere& e = g_elsewhere[i];
  e.lo.store(range.lo, std::memory_order_relaxed);
  e.hi.store(range.hi, std::memory_order_relaxed);
  e.initialize.store(initialize, std::memory_order_relaxed);
  e.ready.store(true, std::memory_order_release);
}

// What the caller's object and its dependencies define, when that is not
// the host's; else null. A handle's lookup covers exactly the object and
// its dependencies, never the preload.
InitializeFn CallersOwnLookup(const void* caller) {
  const ObjectRange range = ObjectContaining(caller);
  void* handle = Pin(range.name);
  if (handle == nullptr) return nullptr;
  auto found =
      reinterpret_cast<InitializeFn>(dlsym(handle, "sqlite3_initialize"));
  if (found == nullptr ||
      found == g_host.initialize.load(std::memory_order_relaxed)) {
    dlclose(handle);  // the global lookup is right: nothing to keep
    return nullptr;
  }
  RememberElsewhere(range, found);  // the pin keeps the range valid
  return found;
}

}  // namespace

InitializeTarget TargetFor(const void* caller) {
  const auto addr = reinterpret_cast<uintptr_t>(caller);
  const bool have_host = FindHost();
  // The hot path: the host SQLite calling itself, at the top of most of
  // its API functions.
  if (have_host && addr >= g_host.lo.load(std::memory_order_relaxed) &&
      addr < g_host.hi.load(std::memory_order_relaxed)) {
    return {g_host.initialize.load(std::memory_order_relaxed), true};
  }
  if (InitializeFn found = CachedElsewhere(addr)) return {found, false};
  if (InitializeFn found = CallersOwnLookup(caller)) return {found, false};
  if (!have_host) return {};
  return {g_host.initialize.load(std::memory_order_relaxed), true};
}

void* HostSymbol(void*, const char* symbol) {
  if (!FindHost()) return nullptr;
  if (void* handle = g_host.handle.load(std::memory_order_relaxed)) {
    return dlsym(handle, symbol);
  }
  return dlsym(RTLD_NEXT, symbol);
}

}  // namespace quiesce::preload
