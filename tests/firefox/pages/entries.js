// What the test pages put and expect: entry i lives at /entry/<i>?n=<i>
// with this body and these headers (writer.js puts them; reader.js finds
// them again after a bundle of them was injected into another profile).
"use strict";

function entryUrl(i) {
  return `/entry/${i}?n=${i}`;
}

function bodyOf(i) {
  // Sizes vary so that entries span different numbers of pages.
  return `entry ${i} ` + "q".repeat((i * 37) % 2000);
}

function entryHeaders(i) {
  return { "Content-Type": "text/plain", "X-Quiesce-Entry": String(i) };
}

// The index i of an entry URL, or -1.
function entryIndex(url) {
  const m = /\/entry\/(\d+)\?n=\1$/.exec(url);
  return m ? Number(m[1]) : -1;
}
