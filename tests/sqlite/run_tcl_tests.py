#!/usr/bin/env python3
"""Runs SQLite's TCL tests under a testfixture that has the quiesce shim
linked in (tools/sqlite_programs/testfixture_init.cc), each test file in a
fresh directory of its own, and reports the result of each.

  run_tcl_tests.py --testfixture TF --test-dir DIR [--known FILE]
                   [--compare] [--markdown] [--except GLOB]... TEST-OR-GLOB...

A test file passes when testfixture reports "N errors out of M tests" with
M > 0 and every failing case is listed for that file in the --known file
(lines "name.test case,case reason": cases that fail on this machine with or
without the shim; "-" instead of the cases: the file is not run). --compare
runs every file that fails, or has known failures, once more on the bare
"unix" VFS (QUIESCE_TESTFIXTURE_BARE=1), to tell the shim's failures from
SQLite's or the machine's. Exits 1 when any file fails.
"""
import argparse
import concurrent.futures
import fnmatch
import os
import re
import subprocess
import sys
import tempfile
import time

SUMMARY = re.compile(r"^(\d+) errors out of (\d+) tests", re.M)
FAILURES = re.compile(r"^!?Failures on these tests: (.*)$", re.M)


def run_one(testfixture, path, bare, timeout, known):
    env = dict(os.environ)
    env.pop("QUIESCE_TESTFIXTURE_BARE", None)
    if bare:
        env["QUIESCE_TESTFIXTURE_BARE"] = "1"
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tcl.") as work:
        try:
            proc = subprocess.run([testfixture, path], cwd=work, env=env,
                                  stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True,
                                  errors="replace", timeout=timeout)
            output, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            partial = e.stdout or b""
            output = (partial.decode(errors="replace")
                      if isinstance(partial, bytes) else partial)
            output += f"\n*** timed out after {timeout} s\n"
            code = None
    seconds = time.monotonic() - start
    summary = SUMMARY.findall(output)
    errors, total = ((int(summary[-1][0]), int(summary[-1][1]))
                     if summary else (None, 0))
    failures = FAILURES.findall(output)
    failed = set(failures[-1].split()) if failures else set()
    ok = code is not None and errors is not None and total > 0 and (
        (errors == 0 and code == 0)
        or (len(failed) == errors and failed <= known))
    return {"ok": ok, "errors": errors, "total": total, "code": code,
            "seconds": seconds, "failed": failed, "output": output}


def read_known(path):
    """{file: (cases, or None for "not run"; reason)} from the --known file."""
    known = {}
    if path:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    name, cases, reason = line.split(None, 2)
                    known[name] = (None if cases == "-" else
                                   frozenset(cases.split(",")), reason)
    return known


def expand(test_dir, patterns):
    names = sorted(os.listdir(test_dir))
    chosen = []
    for pattern in patterns:
        matched = [n for n in names if fnmatch.fnmatch(n, pattern)]
        if not matched:
            sys.exit(f"run_tcl_tests: no test matches {pattern}")
        chosen += [n for n in matched if n not in chosen]
    return chosen


def describe(r):
    if r["ok"] and r["failed"]:
        return (f"pass ({r['total']} cases; known failures: "
                f"{' '.join(sorted(r['failed']))})")
    if r["ok"]:
        return f"pass ({r['total']} cases)"
    if r["code"] is None:
        return "timeout"
    if r["errors"] is None:
        return f"no summary (exit {r['code']})"
    if r["errors"] == 0:
        return f"exit {r['code']} after {r['total']} cases"
    return (f"{r['errors']} of {r['total']} failed: "
            f"{' '.join(sorted(r['failed']))}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testfixture", required=True)
    parser.add_argument("--test-dir", required=True)
    parser.add_argument("--known",
                        help="file of 'name.test cases reason' lines")
    parser.add_argument("--compare", action="store_true",
                        help="rerun failing files on the bare VFS")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds per test file")
    parser.add_argument("--markdown", action="store_true",
                        help="print a Markdown table of every file")
    parser.add_argument("--except", dest="leave_out", action="append",
                        default=[], metavar="GLOB",
                        help="leave out the files matching GLOB")
    parser.add_argument("tests", nargs="+")
    args = parser.parse_args()

    # Each file runs in a directory of its own: the paths must not be relative.
    args.testfixture = os.path.abspath(args.testfixture)
    args.test_dir = os.path.abspath(args.test_dir)
    known = read_known(args.known)
    tests = [t for t in expand(args.test_dir, args.tests)
             if not any(fnmatch.fnmatch(t, g) for g in args.leave_out)]
    not_run = {t: known[t][1] for t in tests
               if t in known and known[t][0] is None}
    to_run = [t for t in tests if t not in not_run]

    def run(name, bare):
        cases = known[name][0] if name in known else frozenset()
        return run_one(args.testfixture, os.path.join(args.test_dir, name),
                       bare, args.timeout, cases)

    shim = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run, t, False): t for t in to_run}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            shim[name] = future.result()
            print(f"{name}: shim {describe(shim[name])}, "
                  f"{shim[name]['seconds']:.1f} s", flush=True)

    bare = {}
    if args.compare:
        for name in to_run:
            if not shim[name]["ok"] or shim[name]["failed"]:
                bare[name] = run(name, True)
                print(f"{name}: bare {describe(bare[name])}", flush=True)

    failing = [n for n in to_run if not shim[n]["ok"]]
    for name in failing:
        print(f"==== {name} through the shim: last lines ====")
        print("\n".join(shim[name]["output"].splitlines()[-40:]))

    if args.markdown:
        print("\n| test | through the shim | bare unix | seconds |")
        print("|---|---|---|---|")
        for name in tests:
            if name in not_run:
                print(f"| {name} | not run: {not_run[name]} | | |")
                continue
            b = describe(bare[name]) if name in bare else ""
            print(f"| {name} | {describe(shim[name])} | {b} | "
                  f"{shim[name]['seconds']:.1f} |")

    cases = sum(shim[n]["total"] for n in to_run)
    print(f"\nrun_tcl_tests: {len(to_run)} files run ({cases} cases), "
          f"{len(to_run) - len(failing)} passed, {len(failing)} failed, "
          f"{len(not_run)} not run; failed: {' '.join(failing) or 'none'}")
    sys.exit(1 if failing else 0)


if __name__ == "__main__":
    main()
