#!/usr/bin/env python3
"""The shim's overhead on SQLite's speedtest1, shim vs. the bare base VFS.

With --attached, a third variant: the shim attached in place
(QUIESCE_PROGRAM_ATTACH=1: quiesce_attach wraps the live "unix"), beside
the registered one.

For each journal mode (WAL and rollback DELETE), in one run:
  - wall time: --reps runs of each variant, interleaved (bare, shim, bare,
    shim, ...) so that load on the shared machine hits both alike; the
    ratio of the medians;
  - instructions: one run of each under valgrind --tool=callgrind with a
    small --size; the ratio of the total Ir, and the shim's own share
    (functions in namespace quiesce, or called through its methods).
Prints a Markdown table (for docs/benchmarks.md).

The shim variant sets QUIESCE_VFS_NAME=unix QUIESCE_DEFAULT=1 (the shim takes
over "unix" as the default VFS, see program_hook.cc); the bare variant sets
nothing. speedtest1 runs with --nosync, so that fsync time does not hide the
CPU the shim adds.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SHIM_ENV = {"QUIESCE_VFS_NAME": "unix", "QUIESCE_DEFAULT": "1"}
ATTACH_ENV = {"QUIESCE_PROGRAM_ATTACH": "1"}
MODES = ["wal", "delete"]


def env_for(shim):
    """shim: False (bare), True or "registered", or "attached"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIESCE_")}
    if shim == "attached":
        env.update(ATTACH_ENV)
    elif shim:
        env.update(SHIM_ENV)
    return env


def speedtest_args(binary, mode, size, db):
    return [binary, "--nosync", "--journal", mode, "--size", str(size), db]


def fresh_db(workdir):
    for name in os.listdir(workdir):
        os.unlink(os.path.join(workdir, name))
    return os.path.join(workdir, "speedtest1.db")


def run_wall(binary, mode, size, workdir, shim):
    db = fresh_db(workdir)
    start = time.monotonic()
    subprocess.run(speedtest_args(binary, mode, size, db), env=env_for(shim),
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def run_callgrind(binary, mode, size, workdir, shim, out_file):
    db = fresh_db(workdir)
    subprocess.run(["valgrind", "--tool=callgrind", "--quiet",
                    "--callgrind-out-file=" + out_file]
                   + speedtest_args(binary, mode, size, db),
                   env=env_for(shim), check=True, stdout=subprocess.DEVNULL)
    with open(out_file) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + out_file)


def shim_functions(out_file, top):
    """The quiesce functions by self cost (inlined code counted with the
    function it was inlined into), from callgrind_annotate."""
    text = subprocess.run(["callgrind_annotate", "--auto=no",
                           "--threshold=100", out_file],
                          check=True, capture_output=True, text=True).stdout
    cost = {}
    for line in text.splitlines():
        # "  1,234 ( 0.01%)  /path/file.cc:ns::Function(args) [/path/obj]"
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+[^:\s]*:(.*?)(?: \[.*\])?$",
                     line)
        if m and "quiesce" in m.group(2):
            name = m.group(2).strip()
            cost[name] = cost.get(name, 0) + int(m.group(1).replace(",", ""))
    return sorted(((ir, name) for name, ir in cost.items()), reverse=True)[:top]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speedtest1", required=True)
    parser.add_argument("--size", type=int, default=50,
                        help="speedtest1 --size for the wall-time runs")
    parser.add_argument("--reps", type=int, default=7,
                        help="wall-time runs of each variant per mode")
    parser.add_argument("--callgrind-size", type=int, default=5,
                        help="speedtest1 --size under callgrind (0: skip)")
    parser.add_argument("--top", type=int, default=8,
                        help="shim functions to list by self cost")
    parser.add_argument("--attached", action="store_true",
                        help="also the shim attached in place "
                             "(quiesce_attach), beside the registered one")
    args = parser.parse_args()
    if args.attached:
        return compare_attached(args)
    if args.callgrind_size and shutil.which("valgrind") is None:
        sys.exit("bench_speedtest: valgrind not found (or --callgrind-size 0)")

    rows, hot = [], {}
    with tempfile.TemporaryDirectory(prefix="speedtest1.") as tmp:
        workdir = os.path.join(tmp, "db")
        os.mkdir(workdir)
        for mode in MODES:
            times = {False: [], True: []}
            for _ in range(args.reps):
                for shim in (False, True):
                    times[shim].append(
                        run_wall(args.speedtest1, mode, args.size, workdir, shim))
            bare_t = statistics.median(times[False])
            shim_t = statistics.median(times[True])
            row = [mode, f"{bare_t:.3f}", f"{shim_t:.3f}",
                   f"{shim_t / bare_t:.4f}"]
            if args.callgrind_size:
                ir = {}
                for shim in (False, True):
                    out = os.path.join(tmp, f"callgrind.{mode}.{int(shim)}")
                    ir[shim] = run_callgrind(args.speedtest1, mode,
                                             args.callgrind_size, workdir,
                                             shim, out)
                hot[mode] = shim_functions(out, args.top)
                row += [f"{ir[False]:,}", f"{ir[True]:,}",
                        f"{ir[True] / ir[False]:.4f}"]
            rows.append(row)
            print(f"bench_speedtest: {mode} done", file=sys.stderr)

    header = ["journal", "bare s (median)", "shim s (median)", "wall ratio"]
    if args.callgrind_size:
        header += ["bare Ir", "shim Ir", "Ir ratio"]
    print(f"speedtest1 --nosync --size {args.size}, {args.reps} interleaved "
          f"runs each; callgrind at --size {args.callgrind_size}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for mode, functions in hot.items():
        print(f"\nShim functions by self Ir ({mode}, shim run):\n")
        for ir, name in functions:
            print(f"- {ir:,} Ir: `{name}`")


def compare_attached(args):
    """bare, registered and attached side by side, wall time and Ir."""
    variants = [False, "registered", "attached"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="speedtest1.") as tmp:
        workdir = os.path.join(tmp, "db")
        os.mkdir(workdir)
        for mode in MODES:
            times = {v: [] for v in variants}
            for _ in range(args.reps):
                for v in variants:
                    times[v].append(
                        run_wall(args.speedtest1, mode, args.size, workdir, v))
            med = {v: statistics.median(times[v]) for v in variants}
            ir = {}
            if args.callgrind_size:
                for v in variants:
                    out = os.path.join(tmp, f"callgrind.{mode}.{v}")
                    ir[v] = run_callgrind(args.speedtest1, mode,
                                          args.callgrind_size, workdir, v, out)
            row = [mode] + [f"{med[v]:.3f}" for v in variants]
            if ir:
                row += [f"{ir[v]:,}" for v in variants]
                row += [f"{ir['registered'] / ir[False]:.4f}",
                        f"{ir['attached'] / ir[False]:.4f}",
                        f"{ir['attached'] / ir['registered']:.4f}"]
            rows.append(row)
            print(f"bench_speedtest: {mode} done", file=sys.stderr)
    header = ["journal", "bare s", "registered s", "attached s"]
    if args.callgrind_size:
        header += ["bare Ir", "registered Ir", "attached Ir",
                   "registered/bare", "attached/bare", "attached/registered"]
    print(f"speedtest1 --nosync --size {args.size}, {args.reps} interleaved "
          f"runs each (medians); callgrind at --size {args.callgrind_size}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
