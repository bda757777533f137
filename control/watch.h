// Moves commit events from the databases' event rings into the output of
// the sessions that watch them.
//
// The ring is the backlog: a watch takes events only while its session's
// unsent output is under ServerLimits::watch_low_water, so a slow reader
// costs the host nothing but falls behind in the ring; once its next event
// has been overwritten there, the session gets {"event":"dropped"} and is
// closed. The host's commit path never waits for a client.
#ifndef QUIESCE_CONTROL_WATCH_H_
#define QUIESCE_CONTROL_WATCH_H_

#include "access.h"
#include "context.h"
#include "server_limits.h"
#include "session.h"

namespace quiesce::control {

// Appends due events of every watch of `session`. A watch of all
// databases takes up those opened since (that `policy` lets the session's
// peer read) from their first event; a database the host closed ends with
// a "closed" event once its last events are out. Returns false, with the
// reason already queued as a "dropped" event, when the session fell behind
// and must be closed.
bool PumpWatches(Context* context, const AccessPolicy& policy,
                 const ServerLimits& limits, Session* session);

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_WATCH_H_
