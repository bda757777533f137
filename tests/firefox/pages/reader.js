// The reading page of the real-browser test's second profile. Query:
// ?cache=NAME, the cache the harness injects from a bundle while this page
// runs. The harness's replies carry {expect: N}, the bundle's entry count.
//
// Puts one entry into a cache of its own (so the origin's caches.sqlite is
// open and written), then keeps reading: its own entry, and the keys of
// NAME once it exists. It must never see NAME partly filled: the injection
// is one transaction, so the count goes from 0 straight to N. When it sees
// N keys it matches every one with caches.match and compares body and
// headers with what entries.js says the writer put. Every storage error is
// recorded. Then it reports "done" and closes the window.
"use strict";

const cacheName = new URLSearchParams(location.search).get("cache") || "quiesce";
const OWN_CACHE = "reader-own";
const state = { reads: 0, keys: 0, verified: 0, errors: [] };

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

// One round of reading; returns the number of keys NAME has (0 if absent).
async function readRound(expect) {
  state.reads++;
  const own = await caches.match("/own", { cacheName: OWN_CACHE });
  if (!own || (await own.text()) !== "own") recordError("own entry", "missing or wrong");
  if (!(await caches.has(cacheName))) return 0;
  const keys = (await (await caches.open(cacheName)).keys()).length;
  if (keys !== expect) recordError(`keys of ${cacheName}`, `saw ${keys} of ${expect}`);
  return keys;
}

// Matches every key of the injected cache against entries.js.
async function verifyAll() {
  const cache = await caches.open(cacheName);
  const seen = new Set();
  for (const request of await cache.keys()) {
    const i = entryIndex(new URL(request.url).pathname + new URL(request.url).search);
    if (i < 0 || seen.has(i)) {
      recordError("key", `unexpected ${request.url}`);
      continue;
    }
    seen.add(i);
    const found = await caches.match(entryUrl(i), { cacheName });
    if (!found) {
      recordError(`match ${i}`, "no entry");
      continue;
    }
    const headers = entryHeaders(i);
    const wrong = Object.keys(headers).filter((h) => found.headers.get(h) !== headers[h]);
    if (wrong.length) recordError(`match ${i}`, `wrong headers ${wrong}`);
    else if ((await found.text()) !== bodyOf(i)) recordError(`match ${i}`, "wrong body");
    else state.verified++;
  }
}

async function run() {
  const own = await caches.open(OWN_CACHE);
  await own.put("/own", new Response("own"));
  let command = await report("reading");
  while (!command.stop) {
    state.keys = await readRound(command.expect);
    if (state.keys > 0 && state.keys === command.expect) break;
    if (state.reads % 5 === 0) command = await report("reading");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if (state.keys > 0) await verifyAll();
}

async function main() {
  try {
    await run();
  } catch (e) {
    recordError("run", e);
  }
  try {
    await report("done");
  } finally {
    window.close();
  }
}

main();
