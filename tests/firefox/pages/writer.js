// The writing page of the real-browser test (entries.js says what it
// puts). Query: ?cache=NAME.
//
// Puts entries /entry/<i> into the cache one after the other, reads each
// back with caches.match and compares body and headers, deletes every third
// entry again right after the next put (a page that deletes while the
// harness packs: the pack must not lose a body to it), and records every
// storage error (a rejected promise, a miss, a wrong body or header, a
// delete that found nothing). Every few puts it POSTs its progress to
// /report; the harness's reply says when to stop. It then counts the cache's keys, reports "done" and closes the
// window, which quits Firefox cleanly.
"use strict";

const REPORT_EVERY = 10;
const cacheName = new URLSearchParams(location.search).get("cache") || "quiesce";
const state = { puts: 0, matches: 0, deletes: 0, errors: [] };

function recordError(where, error) {
  const text = error && error.name ? `${error.name}: ${error.message}` : String(error);
  state.errors.push(`${where}: ${text}`);
}

window.addEventListener("error", (e) => recordError("window", e.message));
window.addEventListener("unhandledrejection", (e) => recordError("promise", e.reason));

// Sends the state; returns the harness's command ({stop: bool}).
async function report(phase, extra = {}) {
  const body = JSON.stringify({ phase, cache: cacheName, ...state, ...extra });
  const reply = await fetch("/report", { method: "POST", body });
  return reply.json();
}

async function putAndCheck(cache, i) {
  const url = entryUrl(i);
  const body = bodyOf(i);
  const response = new Response(body, { headers: entryHeaders(i) });
  try {
    await cache.put(new Request(url), response);
    state.puts++;
  } catch (e) {
    recordError(`put ${i}`, e);
    return;
  }
  try {
    const found = await caches.match(url, { cacheName });
    if (!found) {
      recordError(`match ${i}`, "no entry");
    } else if ((await found.text()) !== body) {
      recordError(`match ${i}`, "wrong body");
    } else if (found.headers.get("X-Quiesce-Entry") !== String(i)) {
      recordError(`match ${i}`, "wrong header");
    } else {
      state.matches++;
    }
  } catch (e) {
    recordError(`match ${i}`, e);
  }
}

async function deleteAndCheck(cache, i) {
  try {
    if (!(await cache.delete(new Request(entryUrl(i))))) {
      recordError(`delete ${i}`, "no entry");
      return;
    }
    state.deletes++;
    if (await caches.match(entryUrl(i), { cacheName })) {
      recordError(`delete ${i}`, "still matched");
    }
  } catch (e) {
    recordError(`delete ${i}`, e);
  }
}

// Writes until told to stop; returns the number of keys in the cache.
async function run() {
  const cache = await caches.open(cacheName);
  let command = await report("started");
  for (let i = 0; !command.stop; i++) {
    await putAndCheck(cache, i);
    if (i % 3 === 2) await deleteAndCheck(cache, i - 1);
    if (i % REPORT_EVERY === REPORT_EVERY - 1) command = await report("progress");
  }
  return (await cache.keys()).length;
}

async function main() {
  let keys = -1;
  try {
    keys = await run();
  } catch (e) {
    recordError("run", e);
  }
  try {
    await report("done", { keys });
  } finally {
    window.close();
  }
}

main();
