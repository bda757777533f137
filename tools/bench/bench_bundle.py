#!/usr/bin/env python3
"""Bundles at scale, side by side with zip and unzip, in one run.

A Gecko-like host (hostsim --gecko, two origins, no busy handler) fills
origin 0's cache with --entries bodies of --body-size bytes (2,000 x 150 KB
= 300 MB by default), then both origins keep putting (--rate a second)
while this script, in turn and --reps times each:

  idle     does nothing for --idle seconds (the baseline);
  pack     quiescectl bundle pack of origin 0's cache (quiesce format, or
           --format flap with a throwaway key and chain);
  zip      zip -0 -r of the same morgue/ directory;
  inject   quiescectl bundle inject of the pack into origin 1 (renamed);
  unzip    unzip -o of the pack into a scratch directory.

Before each step the script syncs and lets the disk settle for a second,
outside every step's window (--no-settle leaves that out): without it the
writeback of one step's few hundred MB (an inject, an unzip) lands in
whichever step comes next and its put latency outliers with it, so that
they wander from run to run between pack, zip and unzip.

It prints, per step: wall time (median), the ratio to its reference
(pack/zip, inject/unzip), the host's put latency p50/p99/max over the
operations that ended during the step (from hostsim's --log), the shim's
host-wait counters (quiescectl status: gate and own-lock waits, max),
the pack's or inject's own held_ms, and quiescectl's peak RSS (wait4).
docs/benchmarks.md shows a run and the command.

Usage: tools/bench/bench_bundle.py [--build DIR] [--entries N]
         [--body-size BYTES] [--rate N] [--reps N] [--idle S]
         [--format quiesce|flap] [--no-settle] [--json]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run_measured(argv, **kw):
    """Runs argv; returns (seconds, stdout). Exits on failure."""
    start = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    elapsed = time.monotonic() - start
    if r.returncode != 0:
        sys.exit("bench_bundle: %s failed (%d):\n%s%s" %
                 (" ".join(argv), r.returncode, r.stdout, r.stderr))
    return elapsed, r.stdout


def run_rss(argv):
    """Runs argv, returns (seconds, peak RSS KiB of that process, stdout)."""
    start = time.monotonic()
    out_file = tempfile.TemporaryFile(mode="w+")
    err_file = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(argv, stdout=out_file, stderr=err_file)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_file.seek(0)
    err_file.seek(0)
    out, err = out_file.read(), err_file.read()
    if proc.returncode != 0:
        sys.exit("bench_bundle: %s failed (%d):\n%s%s" %
                 (" ".join(argv), proc.returncode, out, err))
    return elapsed, usage.ru_maxrss, out


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--entries", type=int, default=2000)
    ap.add_argument("--body-size", type=int, default=150000)
    ap.add_argument("--rate", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--format", choices=["quiesce", "flap"],
                    default="quiesce")
    ap.add_argument("--no-settle", action="store_true",
                    help="no sync and pause before each step")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    for tool in ("zip", "unzip"):
        if shutil.which(tool) is None:
            sys.exit("bench_bundle: needs %s (apt-get install %s)" %
                     (tool, tool))
    hostsim = os.path.join(args.build, "tools", "hostsim")
    ctl = os.path.join(args.build, "tools", "quiescectl", "quiescectl")
    work = tempfile.mkdtemp(prefix="bench-bundle-")
    profile = os.path.join(work, "profile")
    sock = os.path.join(work, "s")
    log = os.path.join(work, "ops.jsonl")
    # An upper bound: hostsim is stopped (SIGTERM) when the steps are done,
    # and writes its log then.
    seconds = 3600
    host = subprocess.Popen(
        [hostsim, "--gecko", "--dir", profile, "--socket", sock,
         "--writable", "--origins", "2", "--rate", str(args.rate),
         "--urls", "0", "--delete-every", "0", "--body-size",
         str(args.body_size), "--fill", str(args.entries), "--seconds",
         str(seconds), "--log", log],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    origins = ["http://127.0.0.1:8000", "https://app1.example"]
    ctl_base = [ctl, "--socket", sock, "--json"]

    def entries(origin):
        r = subprocess.run(ctl_base + ["bundle", "ls", "--origin", origin],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return -1
        caches = json.loads(r.stdout).get("caches", [])
        return max((c.get("entries", 0) for c in caches), default=0)

    def waits():
        r = subprocess.run(ctl_base + ["list"], capture_output=True,
                           text=True, check=True)
        total = {"gate_count": 0, "gate_max_us": 0, "own_count": 0,
                 "own_max_us": 0, "max_stall_reached": 0}
        for db in json.loads(r.stdout)["databases"]:
            s = subprocess.run(ctl_base + ["status", str(db["db"])],
                               capture_output=True, text=True, check=True)
            w = json.loads(s.stdout)["host_waits"]
            total["gate_count"] += w["gate"]["count"]
            total["gate_max_us"] = max(total["gate_max_us"],
                                       w["gate"]["max_us"])
            total["own_count"] += w["own_lock"]["count"]
            total["own_max_us"] = max(total["own_max_us"],
                                      w["own_lock"]["max_us"])
            total["max_stall_reached"] += w["max_stall_reached"]
        return total

    print("bench_bundle: filling %d entries of %d bytes..." %
          (args.entries, args.body_size), file=sys.stderr)
    started = time.time()
    while entries(origins[0]) < args.entries:
        if host.poll() is not None:
            sys.exit("bench_bundle: hostsim ended:\n" + host.stderr.read())
        time.sleep(0.5)
    print("bench_bundle: filled in %.0f s" % (time.time() - started),
          file=sys.stderr)

    cache_dir = os.path.join(profile, "storage", "default",
                             "http+++127.0.0.1+8000", "cache")
    flap_args = []
    if args.format == "flap":
        keys = os.path.join(work, "keys")
        subprocess.run([sys.executable,
                        os.path.join(os.path.dirname(__file__), "..", "..",
                                     "tests", "flap", "flaptool.py"),
                        "ca", keys], check=True, capture_output=True)
        flap_args = ["--format", "flap", "--key",
                     os.path.join(keys, "device_key.pem"), "--chain",
                     os.path.join(keys, "chain.pem")]

    steps = {name: [] for name in ("idle", "pack", "zip", "inject", "unzip")}
    windows = {name: [] for name in steps}
    extra = {"pack_held_ms": [], "inject_held_ms": [], "pack_rss_kib": [],
             "inject_rss_kib": [], "bundle_bytes": 0, "entries": 0}
    # The shim's host-wait counters, added up over each step's runs.
    step_waits = {name: {"gate_count": 0, "own_count": 0,
                         "max_stall_reached": 0} for name in steps}
    last = waits()

    def count_waits(name):
        nonlocal last
        now = waits()
        for key in step_waits[name]:
            step_waits[name][key] += now[key] - last[key]
        last = now

    def settle():
        if not args.no_settle:
            os.sync()
            time.sleep(1.0)

    for rep in range(args.reps):
        settle()
        t0 = time.time()
        time.sleep(args.idle)
        windows["idle"].append((t0, time.time()))
        steps["idle"].append(time.time() - t0)
        count_waits("idle")

        bundle = os.path.join(work, "b%d.%s" % (rep, "flap" if flap_args
                                                 else "zip"))
        settle()
        t0 = time.time()
        secs, rss, out = run_rss(ctl_base + ["bundle", "pack", "--origin",
                                             origins[0], "--cache",
                                             "hostsim-v1", "-o", bundle] +
                                 flap_args)
        windows["pack"].append((t0, time.time()))
        steps["pack"].append(secs)
        packed = json.loads(out)
        extra["pack_held_ms"].append(packed["point"]["held_ms"])
        extra["pack_rss_kib"].append(rss)
        extra["bundle_bytes"] = os.path.getsize(bundle)
        extra["entries"] = packed["entries"]
        count_waits("pack")

        zipped = os.path.join(work, "z%d.zip" % rep)
        settle()
        t0 = time.time()
        secs, _ = run_measured(["zip", "-0", "-r", "-q", zipped, "morgue"],
                               cwd=cache_dir)
        windows["zip"].append((t0, time.time()))
        steps["zip"].append(secs)
        os.unlink(zipped)
        count_waits("zip")

        settle()
        t0 = time.time()
        inject = ctl_base + ["bundle", "inject", bundle, "--origin",
                             origins[1], "--rename", "bench-%d" % rep]
        if flap_args:
            inject += ["--trust", os.path.join(work, "keys", "root.pem")]
        secs, rss, out = run_rss(inject)
        windows["inject"].append((t0, time.time()))
        steps["inject"].append(secs)
        extra["inject_held_ms"].append(json.loads(out)["held_ms"])
        extra["inject_rss_kib"].append(rss)
        count_waits("inject")

        target = os.path.join(work, "u%d" % rep)
        settle()
        t0 = time.time()
        secs, _ = run_measured(["unzip", "-o", "-q", bundle, "-d", target])
        windows["unzip"].append((t0, time.time()))
        steps["unzip"].append(secs)
        shutil.rmtree(target)
        os.unlink(bundle)
        count_waits("unzip")

    final = waits()
    host.terminate()  # hostsim ends its load and writes the log
    _, host_err = host.communicate()
    if host.returncode != 0:
        sys.exit("bench_bundle: the host had errors:\n" + host_err)
    ops = [json.loads(line) for line in open(log)]
    shutil.rmtree(work)

    def latencies(name):
        us = []
        for start, end in windows[name]:
            lo, hi = start * 1e6, end * 1e6
            us += [o["transaction_us"] for o in ops
                   if lo <= o["end_unix_us"] <= hi]
        return us

    reference = {"pack": "zip", "inject": "unzip"}
    rows = []
    for name in steps:
        us = latencies(name)
        row = {"step": name, "seconds": statistics.median(steps[name]),
               "host_ops": len(us),
               "put_p50_ms": percentile(us, 0.50) / 1000,
               "put_p99_ms": percentile(us, 0.99) / 1000,
               "put_max_ms": max(us, default=0) / 1000,
               "host_waits": step_waits[name]}
        if name in reference:
            row["ratio"] = row["seconds"] / statistics.median(
                steps[reference[name]])
        rows.append(row)
    result = {
        "entries": extra["entries"], "bundle_bytes": extra["bundle_bytes"],
        "format": args.format, "reps": args.reps, "rate": args.rate,
        "settle": not args.no_settle,
        "steps": rows,
        "pack_held_ms": extra["pack_held_ms"],
        "inject_held_ms": extra["inject_held_ms"],
        "quiescectl_peak_rss_kib": {
            "pack": max(extra["pack_rss_kib"]),
            "inject": max(extra["inject_rss_kib"])},
        "host_wait_max_us": {"gate": final["gate_max_us"],
                             "own_lock": final["own_max_us"]},
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print("%d entries, %.0f MB bundle (%s format), %d reps, host puts at "
          "%d/s per origin%s" % (result["entries"],
                                 result["bundle_bytes"] / 1e6, args.format,
                                 args.reps, args.rate,
                                 "" if args.no_settle else
                                 ", sync before each step"))
    print("%-7s %9s %7s %8s %10s %10s %10s %10s" %
          ("step", "median s", "ratio", "host ops", "put p50 ms",
           "put p99 ms", "put max ms", "host waits"))
    for r in rows:
        w = r["host_waits"]
        print("%-7s %9.2f %7s %8d %10.2f %10.2f %10.2f %10s" %
              (r["step"], r["seconds"],
               "%.2fx" % r["ratio"] if "ratio" in r else "",
               r["host_ops"], r["put_p50_ms"], r["put_p99_ms"],
               r["put_max_ms"],
               "%d+%d%s" % (w["gate_count"], w["own_count"],
                            " STALL" if w["max_stall_reached"] else "")))
    print("pack held_ms: %s" % ", ".join("%.1f" % v
                                         for v in extra["pack_held_ms"]))
    print("inject held_ms: %s" % ", ".join("%.1f" % v
                                           for v in extra["inject_held_ms"]))
    print("quiescectl peak RSS: pack %.1f MiB, inject %.1f MiB" %
          (result["quiescectl_peak_rss_kib"]["pack"] / 1024,
           result["quiescectl_peak_rss_kib"]["inject"] / 1024))
    print("host waits: gate+own-lock waits the shim counted during each "
          "step; the longest of the run: gate %.1f ms, own lock %.1f ms" %
          (final["gate_max_us"] / 1000, final["own_max_us"] / 1000))


if __name__ == "__main__":
    main()
