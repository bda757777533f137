#!/usr/bin/env python3
"""The attach test: quiesce attached to a Firefox that is already running
with pages open, as a GeckoView app attaches without a rebuild.

A headless Debian firefox-esr runs with the preload in late mode
(QUIESCE_PRELOAD_ATTACH_FIFO: nothing is registered at SQLite's start; a
line written to the FIFO calls quiesce_attach). Origin A (127.0.0.1:<a>)
opens its caches and keeps writing before the attach. Then:

  1. attach; A keeps writing with no error;
  2. `quiescectl list` shows A's caches.sqlite as untracked; a snapshot of
     it and a bundle pack of its origin are refused (exit 4) with the
     clear error "opened before quiesce attached ...";
  3. the tab goes to origin B (127.0.0.1:<b>), loaded after the attach: its
     caches.sqlite is tracked (listed, generation > 0), a snapshot of it is
     a sound image, `bundle pack` packs it;
  4. A, left idle, has its connection closed by Gecko (dom/cache: the
     origin's Manager lets its Context close once no Cache object of the
     origin is left; the bfcache is off so leaving the page drops them);
  5. the tab goes back to A: its cache is reopened through the shim,
     tracked, and `bundle pack` packs it;
  6. the tab goes to a reading page on B; `bundle inject --rename` puts
     B's bundle in while it reads; the page finds every entry;
  7. Firefox quits cleanly, with zero storage errors in every page.

Exit status 0 when every check passed, 1 otherwise, 77 when firefox-esr
is not installed. Python stdlib only. Runs Firefox under nice.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import bundle_cli, cache_db, live  # noqa: E402
from harness.browser import Browser  # noqa: E402
from harness.page_server import ClosedPort, PageServer  # noqa: E402
from harness.profile import make_profile  # noqa: E402

PAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pages")
REFUSAL = "opened before quiesce attached"


class Checks:
    def __init__(self):
        self.failures = []
        self.errors = []  # storage errors reported by the pages

    def check(self, ok, what):
        print(("ok      " if ok else "FAILED  ") + what, flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def page_errors(self, report, where):
        if report is not None:
            self.errors += [f"{where}: {e}" for e in report.get("errors", [])]


def wait_until(predicate, timeout, step=0.1):
    """Polls predicate() until it holds or `timeout` seconds pass; returns
    its last value. A bound on a wait for the browser, not a timing."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def ctl(args, quiescectl, socket_path, *extra):
    return subprocess.run([quiescectl, "--socket", socket_path, *extra],
                          capture_output=True, text=True, timeout=120)


def listed(quiescectl, socket_path):
    """(tracked paths -> row, untracked paths -> row) from list --json."""
    out = ctl(None, quiescectl, socket_path, "list", "--json")
    if out.returncode != 0:
        return {}, {}
    result = json.loads(out.stdout)
    tracked = {d["path"]: d for d in result.get("databases", [])}
    untracked = {u["path"]: u for u in result.get("untracked", [])}
    return tracked, untracked


def navigate(from_server, to_url, timeout):
    """Tells the page of from_server to go to to_url; returns its last
    report (phase "leaving") or None."""
    from_server.reports.set_reply(go=to_url)
    left = from_server.reports.wait_for(lambda r: r["phase"] == "leaving",
                                        timeout)
    from_server.reports.reset()
    return left


def writing(server, puts, timeout):
    return server.reports.wait_for(
        lambda r: r["phase"] in ("started", "progress") and r["puts"] >= puts,
        timeout)


def run(args, workdir, c):
    closed = ClosedPort()
    server_a, server_b = PageServer(PAGES), PageServer(PAGES)
    quiescectl = live.find_quiescectl(args.quiescectl)
    if not c.check(quiescectl is not None, "quiescectl is built"):
        return
    profile = make_profile(os.path.join(workdir, "profile"), closed.port)
    with open(os.path.join(profile, "user.js"), "a", encoding="utf-8") as f:
        # A page left is destroyed, not kept in the bfcache with its caches.
        f.write('user_pref("browser.sessionhistory.max_total_viewers", 0);\n')
    socket_path = os.path.join(workdir, "quiesce.sock")
    fifo = os.path.join(workdir, "attach.fifo")
    env = {"LD_PRELOAD": os.path.realpath(args.preload),
           "QUIESCE_SOCKET": socket_path,
           "QUIESCE_PRELOAD_ATTACH_FIFO": fifo,
           "QUIESCE_WRITABLE": "1"}
    a_url = server_a.url("attach.html", "cache=quiesce-a")
    b_url = server_b.url("attach.html", "cache=quiesce-b")
    a_db = os.path.realpath(os.path.join(
        cache_db.origin_cache_dir(profile, server_a.port), "caches.sqlite"))
    b_db = os.path.realpath(os.path.join(
        cache_db.origin_cache_dir(profile, server_b.port), "caches.sqlite"))
    origin_a = f"http://127.0.0.1:{server_a.port}"
    origin_b = f"http://127.0.0.1:{server_b.port}"
    print(f"        A {a_url}\n        B {b_url}", flush=True)
    browser = Browser(args.firefox, profile, a_url, env,
                      os.path.join(workdir, "firefox.log"))
    try:
        steps(args, c, browser, server_a, server_b, quiescectl, socket_path,
              fifo, a_db, b_db, origin_a, origin_b, b_url, workdir)
    finally:
        if c.failures:
            print("        firefox log (tail):\n" + browser.log_tail())
        browser.kill()
        server_a.close()
        server_b.close()
        closed.close()


def steps(args, c, browser, server_a, server_b, quiescectl, socket_path,
          fifo, a_db, b_db, origin_a, origin_b, b_url, workdir):
    # --- before the attach: A writes, nothing of quiesce runs ---------------
    first = writing(server_a, 10, args.start_timeout)
    if not c.check(first is not None, "page A opened its caches and writes"):
        return
    c.check(not os.path.exists(socket_path),
            "no control server before the attach (late mode registers nothing)")
    if not c.check(wait_until(lambda: os.path.exists(fifo), 30),
                   "the preload made its FIFO in the parent"):
        return

    # --- 1. attach -----------------------------------------------------------
    with open(fifo, "w", encoding="utf-8") as f:
        f.write("attach\n")
    done = wait_until(lambda: os.path.exists(fifo + ".done"), 30)
    result = open(fifo + ".done", encoding="utf-8").read().split() if done else []
    c.check(result[:1] == ["0"] and "unix-excl" in (result[1:2] or [""])[0],
            f"quiesce_attach succeeded in the running Firefox ({result})")
    puts = server_a.reports.latest()["puts"]
    c.check(writing(server_a, puts + 20, 60) is not None,
            "page A keeps writing across the attach")

    # --- 2. A is untracked and refused --------------------------------------
    tracked, untracked = listed(quiescectl, socket_path)
    c.check(a_db in untracked and a_db not in tracked,
            f"list shows A's caches.sqlite as untracked "
            f"({untracked.get(a_db, {}).get('files')})")
    human = ctl(None, quiescectl, socket_path, "list").stdout
    c.check("untracked" in human and a_db in human,
            "quiescectl list (human) names it under untracked")
    image = os.path.join(workdir, "a.image")
    out = ctl(None, quiescectl, socket_path, "snapshot", a_db, "-o", image)
    c.check(out.returncode == 4 and REFUSAL in out.stderr,
            f"a snapshot of A is refused with the clear error (exit "
            f"{out.returncode}: {out.stderr.strip()[:160]})")
    code, _, err = bundle_cli.run_json(
        quiescectl, socket_path,
        ["bundle", "pack", "--origin", origin_a, "--cache", "quiesce-a",
         "-o", os.path.join(workdir, "a-refused.zip")])
    c.check(code == 4 and REFUSAL in err,
            f"a bundle pack of A is refused with the clear error (exit "
            f"{code}: {err[:160]})")

    # --- 3. B, loaded after the attach, is tracked --------------------------
    c.page_errors(navigate(server_a, b_url, 60), "A before leaving")
    if not c.check(writing(server_b, 10, args.start_timeout) is not None,
                   "page B (origin B) opened its caches and writes"):
        return
    tracked, untracked = listed(quiescectl, socket_path)
    c.check(b_db in tracked and tracked[b_db].get("generation", 0) > 0
            and b_db not in untracked,
            f"B's caches.sqlite is tracked, generation "
            f"{tracked.get(b_db, {}).get('generation')}")
    image = os.path.join(workdir, "b.image")
    out = ctl(None, quiescectl, socket_path, "snapshot", b_db, "-o", image)
    ok = out.returncode == 0
    if ok:
        con = sqlite3.connect(image)
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        entries = con.execute("SELECT count(*) FROM entries").fetchone()[0]
        con.close()
        ok = integrity == "ok" and entries > 0
    c.check(ok, f"a snapshot of B while it writes is a sound image (exit "
                f"{out.returncode}{': ' + out.stderr.strip() if out.stderr else ''})")
    bundle_b = os.path.join(workdir, "b.zip")
    code, packed, err = bundle_cli.run_json(
        quiescectl, socket_path,
        ["bundle", "pack", "--origin", origin_b, "--cache", "quiesce-b",
         "-o", bundle_b])
    c.check(code == 0 and packed["entries"] >= 10,
            f"bundle pack of B while it writes (exit {code}"
            f"{': ' + err if err else ''}; "
            f"{packed['entries'] if packed else 0} entries)")

    # --- 4. Gecko closes idle A ----------------------------------------------
    started = time.monotonic()
    closed = wait_until(lambda: a_db not in listed(quiescectl, socket_path)[1],
                        args.idle_timeout, step=0.5)
    c.check(bool(closed), f"Gecko closed idle A's connection "
                          f"({time.monotonic() - started:.1f} s after leaving)")

    # --- 5. back to A: tracked and packable ----------------------------------
    c.page_errors(navigate(server_b, server_a.url("attach.html",
                                                  "cache=quiesce-a"), 60),
                  "B before leaving")
    c.check(writing(server_a, 10, args.start_timeout) is not None,
            "page A, back, writes again")
    tracked, untracked = listed(quiescectl, socket_path)
    c.check(a_db in tracked and a_db not in untracked,
            "A's caches.sqlite, reopened, is tracked")
    code, packed_a, err = bundle_cli.run_json(
        quiescectl, socket_path,
        ["bundle", "pack", "--origin", origin_a, "--cache", "quiesce-a",
         "-o", os.path.join(workdir, "a.zip")])
    c.check(code == 0 and packed_a["entries"] >= 10,
            f"bundle pack of A after its reopen (exit {code}"
            f"{': ' + err if err else ''})")

    # --- 6. inject B's bundle into a reading page ----------------------------
    if packed is None:
        return
    server_b.reports.set_reply(expect=packed["entries"])
    reader = server_b.url("reader.html", "cache=quiesce-injected")
    c.page_errors(navigate(server_a, reader, 60), "A before leaving again")
    server_b.reports.set_reply(expect=packed["entries"])
    reading = server_b.reports.wait_for(
        lambda r: r["phase"] == "done" or r.get("reads", 0) >= 5,
        args.start_timeout)
    c.check(reading is not None and reading["phase"] == "reading",
            "the reading page on B reads its caches")
    code, injected, err = bundle_cli.run_json(
        quiescectl, socket_path,
        ["bundle", "inject", bundle_b, "--rename", "quiesce-injected"])
    c.check(code == 0 and injected["entries"] == packed["entries"],
            f"bundle inject --rename while the page reads (exit {code}"
            f"{': ' + err if err else ''})")
    final = server_b.reports.wait_for(lambda r: r["phase"] == "done", 60)
    if final is None:
        server_b.reports.request_stop()
        final = server_b.reports.wait_for(lambda r: r["phase"] == "done", 30)
    c.page_errors(final, "reader")
    c.check(final is not None and final["keys"] == packed["entries"]
            and final["verified"] == packed["entries"],
            f"the reading page found every injected entry "
            f"({final and final['verified']} of {packed['entries']})")

    # --- 7. a clean quit, no storage error anywhere --------------------------
    status = browser.wait_exit(60)
    c.check(status == 0, f"Firefox quit cleanly (exit status {status})")
    c.check(not c.errors, f"no storage error in any page ({c.errors[:5]})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--firefox", default="/usr/bin/firefox-esr")
    parser.add_argument("--preload", required=True)
    parser.add_argument("--quiescectl", action="append", default=[])
    parser.add_argument("--start-timeout", type=float, default=90)
    parser.add_argument("--idle-timeout", type=float, default=120)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not os.access(args.firefox, os.X_OK):
        print(f"{args.firefox} is not installed")
        return 77
    os.nice(10)  # Firefox and everything it starts run niced
    workdir = tempfile.mkdtemp(prefix="firefox-attach-")
    c = Checks()
    try:
        run(args, workdir, c)
    finally:
        if args.keep:
            print(f"        kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"attach: {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
