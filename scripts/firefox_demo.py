#!/usr/bin/env python3
"""The main job on a real browser (scripts/demo, when firefox-esr is
installed): a headless Firefox with the quiesce preload shows a local page
that keeps writing Cache API entries; from outside, quiescectl lists the
browser's databases, watches a few commits, snapshots caches.sqlite, packs
the page's cache as a bundle; a second profile's page then has the bundle
injected while it reads, and reads every entry back.

It drives tests/firefox/browser_test.py (the real-browser test) with the
demo's steps while the page writes, so there is one harness, not two.

usage: firefox_demo.py --preload SO --quiescectl EXE [--firefox EXE]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "firefox"))

import browser_test  # noqa: E402


def show(run, args, timeout=60):
    """Runs quiescectl with its human output, shown as the user would see
    it; returns its exit code."""
    print(f"$ quiescectl {' '.join(args)}", flush=True)
    out = subprocess.run([run.quiescectl, "--socket", run.socket_path] + args,
                         capture_output=True, text=True, timeout=timeout)
    for line in (out.stdout + out.stderr).rstrip("\n").splitlines():
        print("  " + line)
    print(flush=True)
    return out.returncode


def step_list(run):
    run.check(show(run, ["list"]) == 0,
              "quiescectl list: the browser's databases, caches.sqlite among them")


def step_watch(run):
    run.check(show(run, ["watch", run.db_path, "--count", "5",
                         "--timeout", "30"]) == 0,
              "quiescectl watch: five commits of the page, as they happen")


def step_status(run):
    run.check(show(run, ["status", run.db_path]) == 0,
              "quiescectl status: where caches.sqlite stands")


def step_snapshot(run):
    copy = os.path.join(run.workdir, "caches-snapshot.sqlite")
    code = show(run, ["snapshot", run.db_path, "-o", copy, "--verify"])
    entries = "?"
    if code == 0:
        entries = subprocess.run(
            ["sqlite3", copy, "SELECT count(*) FROM entries"],
            capture_output=True, text=True).stdout.strip()
    run.check(code == 0, f"quiescectl snapshot --verify of the live "
                         f"caches.sqlite: {entries} Cache API entries in it")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--firefox", default="/usr/bin/firefox-esr")
    parser.add_argument("--preload", required=True)
    parser.add_argument("--quiescectl", required=True)
    parser.add_argument("--puts", type=int, default=200)
    demo = parser.parse_args()
    args = argparse.Namespace(
        firefox=demo.firefox, preload=demo.preload, without_preload=False,
        mode="desktop", puts=demo.puts, start_timeout=90, write_timeout=120,
        quiescectl=[demo.quiescectl], keep=False)
    browser_test.WHILE_WRITING = [
        browser_test.step_preload_mapped, step_list, step_status, step_watch,
        step_snapshot, browser_test.step_bundle_ls,
        browser_test.step_bundle_pack]
    workdir = tempfile.mkdtemp(prefix="quiesce-firefox-demo-")
    try:
        print("== the writing page (profile 1): the steps run while it writes",
              flush=True)
        runs = browser_test.run_all(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    failures = [f for run in runs for f in run.failures]
    if len(runs) < 2:
        print("the reading profile did not run: no bundle was packed")
    print(f"firefox demo: {len(failures)} step(s) failed")
    return 1 if failures or len(runs) < 2 else 0


if __name__ == "__main__":
    sys.exit(main())
