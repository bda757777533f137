// The first page of a session after the browser was killed in the middle
// of `quiescectl bundle inject` (issue #14: the Cache API then failed with
// NS_ERROR_FILE_NO_DEVICE_SPACE and IndexedDB never opened). Query:
// ?cache=NAME, the cache the injection was writing.
//
// At once: puts and matches an entry of its own, counts the keys of NAME
// (0 if absent: all or none), and opens an IndexedDB database, writes and
// reads a record. Each part has 30 s; reports {keys, idb, errors} as
// "done" and closes the window.
"use strict";

const cacheName = new URLSearchParams(location.search).get("cache") || "quiesce";
const state = { keys: -1, own: false, idb: false, errors: [] };

function recordError(where, error) {
  const text = error && error.name ? `${error.name}: ${error.message}` : String(error);
  state.errors.push(`${where}: ${text}`);
}

function within(ms, what, promise) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms)),
  ]);
}

async function cacheWork() {
  const own = await caches.open("after-crash-own");
  await own.put("/after-crash", new Response("after"));
  const found = await caches.match("/after-crash", { cacheName: "after-crash-own" });
  state.own = !!found && (await found.text()) === "after";
  state.keys = (await caches.has(cacheName))
    ? (await (await caches.open(cacheName)).keys()).length : 0;
}

function idbWork() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("quiesce-after-crash", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("s");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction("s", "readwrite");
      tx.objectStore("s").put("value", "key");
      tx.oncomplete = () => {
        const get = db.transaction("s").objectStore("s").get("key");
        get.onsuccess = () => { state.idb = get.result === "value"; db.close(); resolve(); };
        get.onerror = () => reject(get.error);
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

async function main() {
  await Promise.all([
    within(30000, "Cache API", cacheWork()).catch((e) => recordError("cache", e)),
    within(30000, "IndexedDB", idbWork()).catch((e) => recordError("indexedDB", e)),
  ]);
  try {
    await fetch("/report", { method: "POST", body: JSON.stringify({ phase: "done", reads: 0, ...state }) });
  } finally {
    window.close();
  }
}

main();
