// The page of the attach test (tests/firefox/attach_test.py). Query:
// ?cache=NAME.
//
// Puts entries /entry/<i> into the cache and reads each back, recording
// every storage error, and POSTs its progress to /report every few puts.
// The harness's reply says what next: {go: URL} reports "leaving" (with
// the errors so far) and navigates there, replacing this page, so the
// origin's Cache objects go away with it; {stop: true} reports "done" and
// closes the window.
"use strict";

const REPORT_EVERY = 10;
const cacheName = new URLSearchParams(location.search).get("cache") || "quiesce";
const state = { puts: 0, matches: 0, errors: [], origin: location.origin };

function recordError(where, error) {
  const text = error && error.name ? `${error.name}: ${error.message}` : String(error);
  state.errors.push(`${where}: ${text}`);
}

window.addEventListener("error", (e) => recordError("window", e.message));
window.addEventListener("unhandledrejection", (e) => recordError("promise", e.reason));

async function report(phase, extra = {}) {
  const body = JSON.stringify({ phase, cache: cacheName, ...state, ...extra });
  const reply = await fetch("/report", { method: "POST", body });
  return reply.json();
}

async function putAndCheck(cache, i) {
  const url = entryUrl(i);
  const body = bodyOf(i);
  try {
    await cache.put(new Request(url), new Response(body, { headers: entryHeaders(i) }));
    state.puts++;
  } catch (e) {
    recordError(`put ${i}`, e);
    return;
  }
  try {
    const found = await caches.match(url, { cacheName });
    if (!found) recordError(`match ${i}`, "no entry");
    else if ((await found.text()) !== body) recordError(`match ${i}`, "wrong body");
    else if (found.headers.get("X-Quiesce-Entry") !== String(i)) recordError(`match ${i}`, "wrong header");
    else state.matches++;
  } catch (e) {
    recordError(`match ${i}`, e);
  }
}

async function main() {
  let command = {};
  try {
    const cache = await caches.open(cacheName);
    command = await report("started");
    for (let i = 0; !command.stop && !command.go; i++) {
      await putAndCheck(cache, i);
      if (i % REPORT_EVERY === REPORT_EVERY - 1) command = await report("progress");
    }
    state.keys = (await cache.keys()).length;
  } catch (e) {
    recordError("run", e);
  }
  if (command.go) {
    await report("leaving");
    location.replace(command.go);
  } else {
    try {
      await report("done");
    } finally {
      window.close();
    }
  }
}

main();
