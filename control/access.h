// Who may connect, and what a connected peer may do with each database.
// Pure decisions over credentials given to them, so that tests can inject
// any peer; the socket code reads the real ones with SO_PEERCRED.
#ifndef QUIESCE_CONTROL_ACCESS_H_
#define QUIESCE_CONTROL_ACCESS_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace quiesce::control {

struct PeerCreds {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct AccessPolicy {
  uid_t host_uid = 0;             // the host's effective uid
  std::vector<uid_t> allow_uids;  // empty: the host's uid alone
  std::string writable;           // "": none; "1": all; else an fnmatch glob
};

// Operations a peer may run on one database.
struct Capabilities {
  bool read = false;   // hello, list, status, watch, snapshot
  bool write = false;  // hold, inject
};

// Whether a peer may connect at all.
bool PeerAllowed(const AccessPolicy& policy, const PeerCreds& peer);

// What an allowed peer may do with the database at `db_path` (its
// canonical path); nothing for a peer that is not allowed.
Capabilities CapabilitiesFor(const AccessPolicy& policy, const PeerCreds& peer,
                             std::string_view db_path);

// "none", "all" or the glob: how write access is granted, for hello.
std::string WritableSummary(const AccessPolicy& policy);

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_ACCESS_H_
