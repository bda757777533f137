#include "watch.h"

#include <algorithm>

#include "codec.h"
#include "describe.h"

namespace quiesce::control {
namespace {

// Events fetched from a ring at a time.
constexpr size_t kBatch = 64;

enum class Pumped { kOk, kLost };

// Moves events of one cursor into the session's output while it holds
// less than `room` bytes. The lap check runs first and whatever the
// output holds: a client that reads nothing is still dropped once its
// next event is overwritten in the ring.
Pumped PumpCursor(size_t room, int64_t request_id, WatchCursor& cursor,
                  Session* session) {
  bool lost = false;
  cursor.db->EventsAfter(cursor.seq, 0, &lost);
  if (lost) return Pumped::kLost;
  while (session->out.size() < room) {
    const auto events = cursor.db->EventsAfter(cursor.seq, kBatch, &lost);
    if (lost) return Pumped::kLost;
    if (events.empty()) break;
    for (const CommitEvent& e : events) {
      session->out.Append(EncodeEvent(request_id, "commit",
                                      DescribeEvent(cursor.db->id(), e)));
      cursor.seq = e.seq;
    }
  }
  return Pumped::kOk;
}

bool IsOpen(const std::vector<std::shared_ptr<Database>>& databases,
            const Database* db) {
  return std::any_of(databases.begin(), databases.end(),
                     [db](const auto& open) { return open.get() == db; });
}

}  // namespace

bool PumpWatches(Context* context, const AccessPolicy& policy,
                 const ServerLimits& limits, Session* session) {
  // Taken after the watches were set up, so a watched database missing
  // here was closed (the registry never takes a database back).
  const auto databases = context->Databases();
  for (auto watch = session->watches.begin();
       watch != session->watches.end();) {
    if (!watch->db) {
      for (const auto& db : databases) {
        if (!watch->cursors.contains(db->id()) &&
            CapabilitiesFor(policy, session->peer(), db->path()).read) {
          watch->cursors[db->id()] = {db, 0};  // opened since: from its start
        }
      }
    }
    for (auto it = watch->cursors.begin(); it != watch->cursors.end();) {
      WatchCursor& cursor = it->second;
      const bool open = IsOpen(databases, cursor.db.get());
      // A closed database's last events go out now, up to the output cap,
      // so that its cursor (and the Database it keeps) does not wait for a
      // client that may never read again.
      const size_t room = open ? limits.watch_low_water : limits.max_output;
      const Pumped pumped =
          PumpCursor(room, watch->request_id, cursor, session);
      const bool behind =
          !open && cursor.seq != cursor.db->last_event_seq();
      if (pumped == Pumped::kLost || behind) {
        // The reason goes right after what the socket already took.
        session->out.DropUnsentLines();
        session->out.Append(EncodeEvent(
            watch->request_id, "dropped",
            json{{"db", it->first},
                 {"reason",
                  pumped == Pumped::kLost
                      ? "fell behind: events of database " +
                            std::to_string(it->first) +
                            " were overwritten before this client read them"
                      : "fell behind: database " + std::to_string(it->first) +
                            " was closed with more unread events than the "
                            "host buffers for a client"}}));
        session->watches.clear();
        return false;
      }
      // A database the host closed ends its part of the stream once its
      // last events are out.
      if (!open) {
        session->out.Append(EncodeEvent(watch->request_id, "closed",
                                        json{{"db", it->first}}));
        it = watch->cursors.erase(it);
      } else {
        ++it;
      }
    }
    // A one-database watch ends with its database.
    if (watch->db && watch->cursors.empty()) {
      watch = session->watches.erase(watch);
    } else {
      ++watch;
    }
  }
  return true;
}

}  // namespace quiesce::control
