#!/usr/bin/env python3
"""The real-browser test: a headless Debian firefox-esr with the quiesce
preload, a page on 127.0.0.1 that keeps putting entries into a Cache API
cache and reading them back, and checks of what the browser did.

  --mode desktop   caches go quotavfs -> base-vfs-excl -> shim "unix-excl"
                   -> real unix-excl: no -shm file.
  --mode android   the preload's test-only switch (QUIESCE_PRELOAD_EXCL_
                   OVER_UNIX=1) puts the shim "unix-excl" over the real
                   "unix": Android's locking, with a -shm file.

Asserts: no storage error in the page; the preload mapped in the parent;
the origin's caches.sqlite where Gecko keeps it; the -shm file as the mode
says; a clean quit; then, on a copy, integrity_check ok and as many entries
as the page put. While the page writes, the steps in WHILE_WRITING run,
the control channel's among them: the socket served by the parent alone,
and the live caches.sqlite listed with a generation above 0 (through
quiescectl when built, else over the protocol), then the bundle steps:
`quiescectl bundle ls` and `bundle pack` of the page's cache from the live
browser.

Then a second profile (QUIESCE_WRITABLE=1) opens a reading page on the
same origin, which keeps reading its caches; `quiescectl bundle inject
--rename` puts the bundle in; the page must never see the cache partly
filled, must find every entry with the right body and headers through
caches.match and keys, and must record no storage error; Firefox quits
cleanly and a copy of its database holds the injected entries.

Exit status 0 when every check passed, 1 otherwise. Python stdlib only.
"""

import argparse
import os
import shutil
import signal
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
CACHE_NAME = "quiesce-test"
INJECTED_NAME = "quiesce-injected"
NO_QUIESCECTL = "quiescectl is built (the bundle steps need it)"


class Run:
    """One browser run's context, handed to every step."""

    def __init__(self, args, workdir, server, browser, profile, socket_path):
        self.args = args
        self.workdir = workdir
        self.server = server
        self.browser = browser
        self.profile = profile
        self.socket_path = socket_path
        self.cache_dir = cache_db.origin_cache_dir(profile, server.port)
        self.db_path = os.path.join(self.cache_dir, "caches.sqlite")
        self.quiescectl = live.find_quiescectl(args.quiescectl)
        self.origin = f"http://127.0.0.1:{server.port}"
        self.bundle = None  # {"path", "entries"} once packed
        self.failures = []
        self.not_run = []

    def check(self, ok, what):
        print(("ok      " if ok else "FAILED  ") + what, flush=True)
        if not ok:
            self.failures.append(what)


# --- steps while the page writes ---------------------------------------------
# Each takes the Run. The last ones list and pack the page's cache with
# quiescectl bundle; run_reader injects the bundle into a second profile.

def step_preload_mapped(run):
    if run.args.without_preload:
        return
    preload = os.path.realpath(run.args.preload)
    tree = run.browser.track()
    mapped = [p for p in tree if preload in run.browser.maps(p)]
    roles = ", ".join(f"{p}:{run.browser.role(p)}" for p in tree)
    print(f"        processes {roles}; preload mapped in {mapped}")
    run.check(run.browser.pid in mapped,
              "the preload is mapped in the parent process")


def step_database_in_place(run):
    run.check(os.path.isfile(run.db_path),
              f"caches.sqlite exists under {run.cache_dir}")


def step_shm_as_mode_says(run):
    shm = os.path.exists(run.db_path + "-shm")
    if run.args.mode == "android":
        run.check(shm, "android path: caches.sqlite-shm exists (base-vfs over unix)")
    else:
        run.check(not shm, "desktop path: no caches.sqlite-shm (unix-excl)")


def step_control_server_in_parent_only(run):
    if run.args.without_preload:
        return
    owners = live.socket_owners(run.socket_path, run.browser.track())
    run.check(owners == [run.browser.pid],
              f"the control socket is served by the parent alone ({owners})")


def step_listed_live(run):
    if run.args.without_preload:
        return
    if run.quiescectl is None:
        run.not_run.append("quiescectl list (not built): listed over the "
                           "protocol instead")
    via = "quiescectl" if run.quiescectl else "the protocol"
    try:
        db = live.check_listed_and_committing(run.quiescectl, run.socket_path,
                                              run.db_path)
        run.check(True, f"{via} lists the live caches.sqlite, generation "
                        f"{db.get('generation')}")
    except (AssertionError, ValueError, KeyError, OSError) as e:
        run.check(False, f"{via} list: {e}")


def bundle_steps_can_run(run):
    if run.args.without_preload:
        run.not_run.append("the bundle steps (no preload, no control channel)")
        return False
    if run.quiescectl is None and NO_QUIESCECTL not in run.failures:
        run.check(False, NO_QUIESCECTL)
    return run.quiescectl is not None


def step_bundle_ls(run):
    if not bundle_steps_can_run(run):
        return
    code, out, err = bundle_cli.run_json(
        run.quiescectl, run.socket_path, ["bundle", "ls", "--origin", run.origin])
    caches = {c["name"]: c for c in (out or {}).get("caches", [])}
    run.check(code == 0 and caches.get(CACHE_NAME, {}).get("entries", 0) > 0,
              f"quiescectl bundle ls lists {CACHE_NAME} with entries "
              f"(exit {code}: {caches or err})")


def step_bundle_pack(run):
    """Packs the cache three times while the page keeps putting and
    deleting: each pack takes its rows and bodies at one quiescent point (a
    hold, bodies pinned), so each must succeed at once although the page
    deletes bodies meanwhile; the last one is the bundle the reader gets."""
    if not bundle_steps_can_run(run):
        return
    for i in range(3):
        path = os.path.join(run.workdir, f"bundle{i}.zip")
        code, out, err = bundle_cli.run_json(
            run.quiescectl, run.socket_path,
            ["bundle", "pack", "--origin", run.origin, "--cache", CACHE_NAME,
             "-o", path])
        run.check(code == 0, f"quiescectl bundle pack {i + 1} of 3 while the "
                             f"page writes (exit {code}"
                             f"{': ' + err if err else ''})")
        if code != 0:
            return
        meta = bundle_cli.bundle_meta(path)
        point = out.get("point", {})
        print(f"        packed {out['entries']} entries as of generation "
              f"{out['generation']}; page held back at most "
              f"{point.get('held_ms', 0):.1f} ms (snapshot "
              f"{point.get('snapshot_ms', 0):.1f} ms, "
              f"{point.get('bodies_pinned', 0)} bodies pinned in "
              f"{point.get('pin_ms', 0):.1f} ms), schema "
              f"{out['schema_version']}")
        # Packs start once the page has put 10 entries; it deletes one
        # after every third put, so it holds at least 7 from then on.
        run.check(out["entries"] >= 7
                  and meta["number_of_entries"] == out["entries"]
                  and meta["name"] == CACHE_NAME
                  and meta["origin"] == run.origin
                  and point.get("held") is True,
                  f"bundle {i + 1} holds {meta['number_of_entries']} entries "
                  f"of {meta['name']} from {meta['origin']}, taken at one "
                  f"held point")
    run.bundle = {"path": path, "entries": out["entries"]}


WHILE_WRITING = [step_preload_mapped, step_database_in_place,
                 step_shm_as_mode_says, step_control_server_in_parent_only,
                 step_listed_live, step_bundle_ls, step_bundle_pack]


# --- the run ------------------------------------------------------------------

def drive(run):
    """Runs the page to `--puts` puts and has it quit; returns the page's
    final report, or None."""
    reports = run.server.reports
    first = reports.wait_for(lambda r: r["puts"] >= 10 or r["phase"] == "done",
                             run.args.start_timeout)
    if first is None:
        run.check(False, f"the page put 10 entries within "
                         f"{run.args.start_timeout} s")
        return None
    started = time.monotonic()
    if first["phase"] != "done":
        for step in WHILE_WRITING:
            step(run)
    reached = reports.wait_for(
        lambda r: r["puts"] >= run.args.puts or r["phase"] == "done",
        run.args.write_timeout)
    progress = reached or reports.latest()
    seconds = time.monotonic() - started
    print(f"        {progress['puts'] - first['puts']} puts in {seconds:.1f} s "
          f"({(progress['puts'] - first['puts']) / max(seconds, 1e-3):.0f}/s)")
    run.check(reached is not None,
              f"the page put {run.args.puts} entries within "
              f"{run.args.write_timeout} s (it put {progress['puts']})")
    reports.request_stop()
    done = reports.wait_for(lambda r: r["phase"] == "done", 60)
    run.check(done is not None, "the page finished and reported")
    return done


def check_final(run, done):
    errors = done["errors"]
    run.check(not errors, f"no storage error in the page ({len(errors)}: "
                          f"{errors[:5]})")
    kept = done["puts"] - done["deletes"]
    run.check(done["deletes"] > 0 and done["keys"] == kept
              and done["matches"] == done["puts"],
              f"the page's cache has every entry it put and did not delete "
              f"(puts {done['puts']}, deletes {done['deletes']}, matched "
              f"{done['matches']}, keys {done['keys']})")


def check_after_quit(run, done):
    if not os.path.isfile(run.db_path):
        return  # already reported while writing
    stats = cache_db.check_copy(run.cache_dir,
                                os.path.join(run.workdir, "copy"))
    run.check(stats["integrity"] == "ok",
              f"integrity_check of a copy: {stats['integrity']}")
    if done is not None:
        kept = done["puts"] - done["deletes"]
        run.check(stats["entries"] == kept,
                  f"the database holds {stats['entries']} entries, the page "
                  f"kept {kept} of {done['puts']} puts (user_version "
                  f"{stats['user_version']})")


def start_browser(args, workdir, name, server, closed, page, env):
    """A headless Firefox on a fresh profile `name` showing `page`; returns
    the Run for it."""
    profile = make_profile(os.path.join(workdir, name), closed.port)
    socket_path = os.path.join(workdir, name + ".sock")
    env = dict(env)
    if not args.without_preload:
        env["LD_PRELOAD"] = os.path.realpath(args.preload)
        env["QUIESCE_SOCKET"] = socket_path
    if args.mode == "android":
        env["QUIESCE_PRELOAD_EXCL_OVER_UNIX"] = "1"
    url = server.url(page)
    print(f"        {args.mode}: {url}, profile {profile}", flush=True)
    browser = Browser(args.firefox, profile, url, env,
                      os.path.join(workdir, name + ".log"))
    return Run(args, workdir, server, browser, profile, socket_path)


def quit_browser(run):
    status = run.browser.wait_exit(60)
    run.check(status == 0, f"Firefox quit cleanly (exit status {status})")
    if status is None or run.failures:
        print("        firefox log (tail):\n" + run.browser.log_tail())
    run.browser.kill()
    return status


def run_writer(args, workdir, server, closed):
    # Writable: pack takes a hold (its rows and bodies at one point).
    run = start_browser(args, workdir, "profile", server, closed,
                        f"writer.html?cache={CACHE_NAME}",
                        {"QUIESCE_WRITABLE": "1"})
    try:
        done = drive(run)
        if done is not None:
            check_final(run, done)
        status = quit_browser(run)
        check_after_quit(run, done if status is not None else None)
        return run
    finally:
        run.browser.kill()


def drive_reader(run, bundle):
    """The reading page is open: injects the bundle, then waits for the
    page's verdict; returns the page's final report, or None."""
    reports = run.server.reports
    # A few rounds of reading first, so that the injection lands while
    # the page reads.
    reading = reports.wait_for(
        lambda r: r["phase"] == "done" or r["reads"] >= 10,
        run.args.start_timeout)
    run.check(reading is not None and reading["phase"] == "reading",
              "the reading page opened its caches and reads them")
    if reading is None or reading["phase"] != "reading":
        return None
    step_shm_as_mode_says(run)
    code, out, err = bundle_cli.run_json(
        run.quiescectl, run.socket_path,
        ["bundle", "inject", bundle["path"], "--rename", INJECTED_NAME])
    before = reports.latest()["reads"]
    run.check(code == 0 and out["entries"] == bundle["entries"],
              f"quiescectl bundle inject --rename {INJECTED_NAME} while the "
              f"page reads (exit {code}{': ' + err if err else ''})")
    if code == 0:
        print(f"        injected {out['entries']} entries, generation "
              f"{out['generation']}, host held back {out['gate_closed_ms']:.2f} "
              f"ms; the page had read {before} times")
    else:
        reports.request_stop()
    done = reports.wait_for(lambda r: r["phase"] == "done", 60)
    if done is None:
        reports.request_stop()
        done = reports.wait_for(lambda r: r["phase"] == "done", 30)
    run.check(done is not None, "the reading page finished and reported")
    return done


def run_reader(args, workdir, server, closed, bundle):
    """A second profile whose page reads while the bundle goes in."""
    server.reports.reset()
    server.reports.set_reply(expect=bundle["entries"])
    run = start_browser(args, workdir, "profile-b", server, closed,
                        f"reader.html?cache={INJECTED_NAME}",
                        {"QUIESCE_WRITABLE": "1"})
    try:
        done = drive_reader(run, bundle)
        if done is not None:
            errors = done["errors"]
            run.check(not errors, f"no storage error in the reading page "
                                  f"({len(errors)}: {errors[:5]})")
            run.check(done["keys"] == bundle["entries"]
                      and done["verified"] == bundle["entries"],
                      f"the reading page found every injected entry with its "
                      f"body and headers (keys {done['keys']}, verified "
                      f"{done['verified']} of {bundle['entries']}, after "
                      f"{done['reads']} reads)")
        status = quit_browser(run)
        if status is not None and os.path.isfile(run.db_path):
            stats = cache_db.check_copy(run.cache_dir,
                                        os.path.join(workdir, "copy-b"))
            run.check(stats["integrity"] == "ok" and
                      stats["entries"] == bundle["entries"] + 1,
                      f"the second profile's database: integrity "
                      f"{stats['integrity']}, {stats['entries']} entries "
                      f"({bundle['entries']} injected + the page's own)")
        return run
    finally:
        run.browser.kill()


CRASH_NAME = "quiesce-crashed"


# Arguments every `bundle inject` of this test adds (tests/flap's wrapper
# adds --trust for its .flap bundles).
INJECT_EXTRA_ARGS = []


def morgue_path(cache_dir, body_id):
    """Gecko's file for a body id: morgue/<last byte, decimal>/<id>.final
    (vfs/gecko_body_id.h)."""
    return os.path.join(cache_dir, "morgue", str(int(body_id[35:37], 16)),
                        body_id + ".final")


def run_crash(args, workdir, server, closed, bundle, point="filling"):
    """A third profile: its page reads while `bundle inject` runs; the
    browser is killed (kill -9 of the parent) when inject has moved the
    bodies into morgue/ and filled the first part of the new cache, which
    no storage row names yet; nothing runs before the browser restarts;
    then a new session's page must use the Cache API and IndexedDB at once
    and see none of the bundle (issue #14: that session was broken,
    NS_ERROR_FILE_NO_DEVICE_SPACE and an IndexedDB open that never
    finished). The shim removes the bodies no row names before Gecko
    opens the database; Gecko's own cleanup after the unclean shutdown
    deletes the unpublished cache with its bodies, which its usage counts
    (docs/gecko.md), so nothing wraps."""
    server.reports.reset()
    server.reports.set_reply(expect=bundle["entries"])
    run = start_browser(args, workdir, "profile-c", server, closed,
                        f"reader.html?cache={CRASH_NAME}",
                        {"QUIESCE_WRITABLE": "1"})
    try:
        reading = server.reports.wait_for(
            lambda r: r["phase"] == "done" or r["reads"] >= 10,
            args.start_timeout)
        run.check(reading is not None and reading["phase"] == "reading",
                  "the third profile's page reads its caches")
        if reading is None or reading["phase"] != "reading":
            return run
        pause = os.path.join(workdir, f"paused-{point}")
        env = dict(os.environ, QUIESCECTL_TEST_PAUSE=f"{point}:{pause}")
        inject = subprocess.Popen(
            [run.quiescectl, "--socket", run.socket_path, "--json", "bundle",
             "inject", bundle["path"], "--rename", CRASH_NAME]
            + INJECT_EXTRA_ARGS,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not os.path.exists(pause) and time.monotonic() < deadline \
                and inject.poll() is None:
            time.sleep(0.05)
        reached = os.path.exists(pause)
        run.check(reached, f"bundle inject reached the point '{point}'")
        os.kill(run.browser.pid, signal.SIGKILL)  # the crash
        run.browser.kill()  # and what the parent left
        inject.kill()
        inject.wait(timeout=30)
        if not reached:
            return run
        staging = os.path.join(run.profile, "quiesce-staging")
        left = [d for d in os.listdir(staging) if d.startswith("inject-")] \
            if os.path.isdir(staging) else []
        run.check(bool(left), "the dead injection left its staging "
                  "directory (the case the shim must clean up)")
        # Its manifest: a header, the cache directory, the cache it fills,
        # then body ids (vfs/inject_staging.h).
        staged = []
        cache_dir = None
        for d in left:
            path = os.path.join(staging, d, "manifest")
            if os.path.exists(path):
                with open(path) as f:
                    lines = f.read().splitlines()
                cache_dir = lines[1].split(" ", 1)[1]
                staged += [line for line in lines[2:]
                           if line.startswith("{")]
        orphans = [b for b in staged if os.path.exists(
            morgue_path(cache_dir, b))]
        run.check(len(orphans) > 0, f"the crash left {len(orphans)} "
                  f"bodies in morgue/ that no published cache names")
        # The next session, on the same profile.
        server.reports.reset()
        env = {"QUIESCE_WRITABLE": "1"}
        if not args.without_preload:
            env["LD_PRELOAD"] = os.path.realpath(args.preload)
            env["QUIESCE_SOCKET"] = run.socket_path
        if args.mode == "android":
            env["QUIESCE_PRELOAD_EXCL_OVER_UNIX"] = "1"
        url = server.url(f"after_crash.html?cache={CRASH_NAME}")
        print(f"        {args.mode}: after the crash: {url}", flush=True)
        run.browser = Browser(args.firefox, run.profile, url, env,
                              os.path.join(workdir, "profile-c-2.log"))
        done = server.reports.wait_for(lambda r: r["phase"] == "done", 90)
        run.check(done is not None, "the page after the crash reported")
        if done is not None:
            run.check(not done["errors"] and done["own"] and done["idb"],
                      f"after the crash the page used the Cache API and "
                      f"IndexedDB at once without error (cache "
                      f"{done['own']}, indexedDB {done['idb']}, errors "
                      f"{done['errors'][:3]})")
            run.check(done["keys"] == 0,
                      f"none of the uncommitted bundle is there (keys "
                      f"{done['keys']})")
        left = [d for d in os.listdir(staging) if d.startswith("inject-")] \
            if os.path.isdir(staging) else []
        orphans = [b for b in staged if os.path.exists(
            morgue_path(cache_dir, b))]
        run.check(not orphans, f"none of the {len(staged)} staged bodies "
                  f"is left: the shim removed those no row named, Gecko "
                  f"those of the unpublished cache (left: {len(orphans)})")
        if point != "filling":
            run.check(not left, f"the shim removed the dead injection's "
                      f"staging at the session's open of caches.sqlite "
                      f"(left: {left})")
        quit_browser(run)
        if point == "filling":
            # Its directory waited for a recovery that can delete rows
            # (the shim writes none); Gecko deleted them first.
            recover = subprocess.run(
                [run.quiescectl, "--json", "bundle", "recover", "--profile",
                 run.profile], capture_output=True, text=True, timeout=60)
            left = [d for d in os.listdir(staging)
                    if d.startswith("inject-")]
            run.check(recover.returncode == 0 and not left,
                      f"bundle recover then removed the staging directory "
                      f"(exit {recover.returncode}, left: {left})")
        return run
    finally:
        run.browser.kill()


def run_all(args, workdir):
    """The writing profile, then (when a bundle was packed) the reading
    one, on the same origin; returns their Runs."""
    closed = ClosedPort()
    server = PageServer(PAGES)
    try:
        runs = [run_writer(args, workdir, server, closed)]
        if runs[0].bundle is not None:
            runs.append(run_reader(args, workdir, server, closed,
                                   runs[0].bundle))
            if args.mode == "desktop" and not args.without_preload:
                runs.append(run_crash(args, workdir, server, closed,
                                      runs[0].bundle))
        return runs
    finally:
        server.close()
        closed.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--firefox", default="/usr/bin/firefox-esr")
    parser.add_argument("--preload", required=True,
                        help="libquiesce_preload.so")
    parser.add_argument("--without-preload", action="store_true",
                        help="run Firefox as it is, for comparison")
    parser.add_argument("--mode", choices=["desktop", "android"],
                        default="desktop")
    parser.add_argument("--puts", type=int, default=300)
    parser.add_argument("--start-timeout", type=float, default=90)
    parser.add_argument("--write-timeout", type=float, default=120)
    parser.add_argument("--quiescectl", action="append", default=[],
                        help="where quiescectl may be (repeatable)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory")
    args = parser.parse_args()
    if not os.access(args.firefox, os.X_OK):
        print(f"{args.firefox} is not installed")
        return 77  # meson's "skipped"
    workdir = tempfile.mkdtemp(prefix=f"firefox-{args.mode}-")
    try:
        runs = run_all(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"        kept {workdir}")
    failures = [f for run in runs for f in run.failures]
    for what in sorted({w for run in runs for w in run.not_run}):
        print(f"not run {what}")
    print(f"{args.mode}: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
