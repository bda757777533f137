#!/usr/bin/env python3
"""Runs SQLite's TCL tests under a testfixture that has the quiesce shim
linked in (tools/sqlite_programs/testfixture_init.cc), each test file in a
fresh directory of its own, and reports the result of each.

  run_tcl_tests.py --testfixture TF --test-dir DIR [--known FILE]...
                   [--gate] [--gate-seed N] [--compare] [--markdown]
                   [--except GLOB]... TEST-OR-GLOB...

A test file passes when testfixture reports "N errors out of M tests" with
M > 0 and every failing case is listed for that file in a --known file
(lines "name.test case,case reason": cases that fail on this machine with or
without the shim; "-" instead of the cases: the file is not run). --compare
runs every file that fails, or has known failures, once more on the bare
"unix" VFS (QUIESCE_TESTFIXTURE_BARE=1), to tell the shim's failures from
SQLite's or the machine's. Exits 1 when any file fails.

--gate runs every file in the gate-cycling mode
(QUIESCE_TESTFIXTURE_GATE=cycle, tools/sqlite_programs/testfixture_gate.h):
the shim's gate is closed and reopened around random statements and at
random times. Each testfixture process (a test's child testfixtures too)
appends its gate counts to a report file. A file then passes only if,
besides its tests: the top testfixture reported; no gate request failed
unexpectedly; the gate closed at least once (unless the file ran no
statement on a database of the shim); and no host lock request waited as
long as max_stall (stall_timeouts: a fault by DESIGN.md). The run as a whole
fails when the gate made no host lock request wait. Every file uses the same
seed (--gate-seed, $QUIESCE_TESTFIXTURE_GATE_SEED, or a random one,
printed), so a failure can be rerun with the same choices, though not the
same interleaving (the cycler is a thread). --compare then reruns failing
files with the gate off, and on the bare VFS.
"""
import argparse
import concurrent.futures
import fnmatch
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

SUMMARY = re.compile(r"^(\d+) errors out of (\d+) tests", re.M)
FAILURES = re.compile(r"^!?Failures on these tests: (.*)$", re.M)
GATE_LINE = re.compile(r"^(quiesce-gate(?:-start|-error)?) (.*)$", re.M)
# The counts of a gate report line that are summed over a file's processes.
GATE_COUNTS = ("attempts", "closes", "drain_timeouts", "errors", "lapsed",
               "write_gates", "kicks", "kicks_closed", "steps", "waits",
               "stall_timeouts", "revocations")

def read_gate_report(path, top_pid):
    """The gate counts of one file's run: summed over its processes, plus
    max_wait_us (the longest), processes (started), reported (that wrote
    their final line), top (the top testfixture did) and error messages."""
    gate = dict.fromkeys(GATE_COUNTS, 0)
    gate.update(max_wait_us=0, processes=0, reported=0, top=False,
                messages=[], seed=None)
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return gate
    # Complete lines only: a late child may be writing its line now.
    complete = text[:text.rfind("\n") + 1]
    for kind, rest in GATE_LINE.findall(complete):
        if kind == "quiesce-gate-error":
            gate["messages"].append(rest)
            continue
        fields = dict(f.split("=", 1) for f in rest.split() if "=" in f)
        if not all(v.isdigit() for v in fields.values()):
            continue  # not a line of ours
        if kind == "quiesce-gate-start":
            gate["processes"] += 1
            continue
        gate["reported"] += 1
        if int(fields.get("pid", -1)) == top_pid:
            gate["top"] = True
            gate["seed"] = fields.get("seed")
        for key in GATE_COUNTS:
            gate[key] += int(fields.get(key, 0))
        gate["max_wait_us"] = max(gate["max_wait_us"],
                                  int(fields.get("max_wait_us", 0)))
    return gate


def gate_problem(gate):
    """Why a gate-mode run of a file does not count, or None."""
    if not gate["top"]:
        return "no gate report from the testfixture"
    if gate["stall_timeouts"]:
        return (f"{gate['stall_timeouts']} host lock requests waited "
                f"max_stall at a closed gate")
    if gate["errors"]:
        return ("unexpected gate errors: "
                + "; ".join(gate["messages"][:3]))
    # A file that ran no statement on a database of the shim (one that
    # skips its body on this build) gives the gate nothing to stand in
    # front of; any other file must see it closed.
    if gate["closes"] == 0 and gate["kicks"] > 0:
        return "statements ran, but the gate never closed"
    return None


# How long a file's late child processes get to write their gate reports.
CHILD_GRACE_SECONDS = 2.0


def remove_tree(path):
    """Removes a test's directory; a straggling child process of the test
    may still create files in it: a few tries, then whatever is left stays
    (in TMPDIR)."""
    for _ in range(10):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    shutil.rmtree(path, ignore_errors=True)


def run_one(testfixture, path, mode, timeout, known, seed=None):
    """Runs one test file through the shim ("shim"), with the gate cycling
    ("gate") or on the bare unix VFS ("bare")."""
    env = dict(os.environ)
    for name in ("QUIESCE_TESTFIXTURE_BARE", "QUIESCE_TESTFIXTURE_GATE",
                 "QUIESCE_TESTFIXTURE_GATE_SEED",
                 "QUIESCE_TESTFIXTURE_GATE_REPORT",
                 "QUIESCE_TESTFIXTURE_GATE_CHILD"):
        env.pop(name, None)
    if mode == "bare":
        env["QUIESCE_TESTFIXTURE_BARE"] = "1"
    start = time.monotonic()
    gate = None
    # The report lives beside, not in, the test's directory: tests delete
    # files there.
    scratch = tempfile.mkdtemp(prefix="tcl.")
    try:
        work = os.path.join(scratch, "work")
        os.mkdir(work)
        report = os.path.join(scratch, "gate.report")
        if mode == "gate":
            env["QUIESCE_TESTFIXTURE_GATE"] = "cycle"
            env["QUIESCE_TESTFIXTURE_GATE_SEED"] = str(seed)
            env["QUIESCE_TESTFIXTURE_GATE_REPORT"] = report
        proc = subprocess.Popen([testfixture, path], cwd=work, env=env,
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                text=True, errors="replace")
        try:
            output, _ = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            output = (output or "") + f"\n*** timed out after {timeout} s\n"
            code = None
        if mode == "gate":
            gate = read_gate_report(report, proc.pid)
            # A child that outlives the testfixture (one that no longer
            # holds its output) reports late: a little grace for it.
            grace = time.monotonic() + CHILD_GRACE_SECONDS
            while (gate["reported"] < gate["processes"]
                   and time.monotonic() < grace):
                time.sleep(0.05)
                gate = read_gate_report(report, proc.pid)
    finally:
        remove_tree(scratch)
    seconds = time.monotonic() - start
    summary = SUMMARY.findall(output)
    errors, total = ((int(summary[-1][0]), int(summary[-1][1]))
                     if summary else (None, 0))
    failures = FAILURES.findall(output)
    failed = set(failures[-1].split()) if failures else set()
    ok = code is not None and errors is not None and total > 0 and (
        (errors == 0 and code == 0)
        or (len(failed) == errors and failed <= known))
    problem = gate_problem(gate) if gate is not None else None
    return {"ok": ok and problem is None, "tests_ok": ok, "gate": gate,
            "gate_problem": problem, "errors": errors, "total": total,
            "code": code, "seconds": seconds, "failed": failed,
            "output": output}


def read_known(paths):
    """{file: (cases, or None for "not run"; reason)} from the --known files
    (a file named in several: the union of its cases)."""
    known = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                name, cases, reason = line.split(None, 2)
                if cases == "-":
                    known[name] = (None, reason)
                    continue
                prior = known.get(name, (frozenset(), None))
                if prior[0] is None:
                    continue
                known[name] = (prior[0] | frozenset(cases.split(",")),
                               prior[1] + "; " + reason if prior[1]
                               else reason)
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


def describe_gate(g):
    return (f"{g['closes']} closes ({g['write_gates']} write gates), "
            f"{g['drain_timeouts']} drain timeouts, "
            f"{g['waits']} waits (longest {g['max_wait_us'] / 1000:.1f} ms), "
            f"{g['stall_timeouts']} stalls, {g['kicks']} statement kicks, "
            f"{g['lapsed']} lapsed, {g['reported']}/{g['processes']} "
            f"processes reported")


def describe(r):
    if r["tests_ok"] and r["gate_problem"]:
        return (f"failed the gate check: {r['gate_problem']} "
                f"({r['total']} cases passed)")
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
    parser.add_argument("--known", action="append", default=[],
                        help="file of 'name.test cases reason' lines")
    parser.add_argument("--gate", action="store_true",
                        help="run in the gate-cycling mode")
    parser.add_argument("--gate-seed", type=int,
                        default=os.environ.get("QUIESCE_TESTFIXTURE_GATE_SEED"),
                        help="the gate mode's seed (default: "
                        "$QUIESCE_TESTFIXTURE_GATE_SEED, else random)")
    parser.add_argument("--compare", action="store_true",
                        help="rerun failing files with the gate off (in "
                        "--gate mode) and on the bare VFS")
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

    mode = "gate" if args.gate else "shim"
    seed = args.gate_seed
    if args.gate and seed is None:
        seed = random.SystemRandom().randrange(1, 2**63)
    if args.gate:
        print(f"run_tcl_tests: gate mode, seed {seed}", flush=True)

    def run(name, how):
        cases = known[name][0] if name in known else frozenset()
        return run_one(args.testfixture, os.path.join(args.test_dir, name),
                       how, args.timeout, cases, seed)

    main_run = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run, t, mode): t for t in to_run}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            r = main_run[name] = future.result()
            counts = f"; {describe_gate(r['gate'])}" if r["gate"] else ""
            print(f"{name}: {mode} {describe(r)}, {r['seconds']:.1f} s"
                  f"{counts}", flush=True)

    # --compare: the same file with the gate off, then on the bare VFS.
    others = {}
    if args.compare:
        for name in to_run:
            if main_run[name]["ok"] and not main_run[name]["failed"]:
                continue
            for how in ("shim", "bare") if args.gate else ("bare",):
                r = others.setdefault(name, {})[how] = run(name, how)
                print(f"{name}: {how} {describe(r)}", flush=True)
                if r["ok"] and not r["failed"]:
                    break

    failing = [n for n in to_run if not main_run[n]["ok"]]
    for name in failing:
        print(f"==== {name} ({mode}): last lines ====")
        print("\n".join(main_run[name]["output"].splitlines()[-40:]))
        if args.gate:
            print(f"replay: QUIESCE_TESTFIXTURE_GATE=cycle "
                  f"QUIESCE_TESTFIXTURE_GATE_SEED={seed} "
                  f"QUIESCE_TESTFIXTURE_GATE_REPORT=gate.report "
                  f"{args.testfixture} {os.path.join(args.test_dir, name)}")

    if args.markdown:
        title = "with the gate cycling" if args.gate else "through the shim"
        compared = "gate off / bare unix" if args.gate else "bare unix"
        gate_column = " gate counts |" if args.gate else ""
        print(f"\n| test | {title} | {compared} | seconds |{gate_column}")
        print("|---|---|---|---|" + ("---|" if args.gate else ""))
        for name in tests:
            if name in not_run:
                print(f"| {name} | not run: {not_run[name]} | | |"
                      + (" |" if args.gate else ""))
                continue
            r = main_run[name]
            o = "; ".join((f"{how}: " if args.gate else "") + describe(x)
                          for how, x in others.get(name, {}).items())
            g = f" {describe_gate(r['gate'])} |" if r["gate"] else ""
            print(f"| {name} | {describe(r)} | {o} | {r['seconds']:.1f} |{g}")

    cases = sum(main_run[n]["total"] for n in to_run)
    print(f"\nrun_tcl_tests: {len(to_run)} files run ({cases} cases), "
          f"{len(to_run) - len(failing)} passed, {len(failing)} failed, "
          f"{len(not_run)} not run; failed: {' '.join(failing) or 'none'}")
    vacuous = False
    if args.gate:
        total = dict.fromkeys(GATE_COUNTS, 0)
        longest = 0
        for n in to_run:
            g = main_run[n]["gate"]
            for key in GATE_COUNTS:
                total[key] += g[key]
            longest = max(longest, g["max_wait_us"])
        print(f"run_tcl_tests: gate (seed {seed}): {total['attempts']} "
              f"closes tried, {total['closes']} closed, "
              f"{total['drain_timeouts']} drain timeouts, "
              f"{total['write_gates']} of them exclusive-locking write "
              f"gates, {total['lapsed']} leases lapsed "
              f"({total['revocations']} revoked), {total['waits']} host "
              f"waits (longest {longest / 1000:.1f} ms), "
              f"{total['stall_timeouts']} stall timeouts, "
              f"{total['kicks']} statement kicks "
              f"({total['kicks_closed']} saw the gate closing), "
              f"{total['steps']} steps")
        if to_run and (total["closes"] == 0 or total["waits"] == 0):
            print("run_tcl_tests: FAIL: the gate mode made no host lock "
                  "request wait: the run proves nothing")
            vacuous = True
    sys.exit(1 if failing or vacuous else 0)


if __name__ == "__main__":
    main()
