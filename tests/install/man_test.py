#!/usr/bin/env python3
"""The man pages the build installs say what `quiescectl --help` says.

usage: man_test.py QUIESCECTL QUIESCECTL_1 QUIESCE_7
Every command of --help has a section in quiescectl(1), every option and
exit code of --help is in it, quiesce(7) lists the shim's environment, and
both pages render without warnings where man(1) is installed.
"""
import re
import shutil
import subprocess
import sys


def main():
    quiescectl, page1, page7 = sys.argv[1:4]
    help_text = subprocess.run([quiescectl, "--help"], check=True,
                               capture_output=True, text=True).stdout
    man1 = open(page1, encoding="utf-8").read()
    man7 = open(page7, encoding="utf-8").read()
    errors = []

    def section(text, start):
        block = text.split(start + ":\n", 1)[1]
        return block.split("\n\n", 1)[0].splitlines()

    commands = [line.split()[0] for line in section(help_text, "commands")]
    if len(commands) < 7:
        errors.append(f"--help lists only {commands}")
    sections = re.findall(r"^\.SS (\S+)$", man1, re.M)
    for c in commands:
        if c not in sections:
            errors.append(f"quiescectl(1) has no section for command {c}")
    for c in sections:
        if c not in commands:
            errors.append(f"quiescectl(1) documents {c}, --help does not")
    roff = lambda s: s.replace("-", "\\-")
    for line in section(help_text, "options"):
        m = re.match(r"  (-\S+(?: [A-Z]+)?)  ", line)
        if m and f".B {roff(m.group(1))}\n" not in man1:
            errors.append(f"quiescectl(1) lacks option {m.group(1)}")
    for line in section(help_text, "exit codes"):
        code, meaning = line.split(None, 1)
        if f".B {code}\n{meaning}\n" not in man1:
            errors.append(f"quiescectl(1) lacks exit code {code} ({meaning})")
    for line in section(help_text, "environment"):
        if line.startswith("  ") and not line.startswith("   "):
            var = line.split()[0]
            if f".B {roff(var)}\n" not in man1:
                errors.append(f"quiescectl(1) lacks variable {var}")
    for var in ["QUIESCE_SOCKET", "QUIESCE_WRITABLE", "QUIESCE_MAX_STALL_MS"]:
        if f".B {var}\n" not in man7:
            errors.append(f"quiesce(7) lacks {var}")

    if shutil.which("man"):
        for page in (page1, page7):
            r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", page],
                               capture_output=True, text=True,
                               env={"MANWIDTH": "80", "LC_ALL": "C.UTF-8",
                                    "PATH": "/usr/bin:/bin"})
            if r.returncode != 0 or r.stderr.strip():
                errors.append(f"man -l {page}: {r.stderr.strip()}")
    for e in errors:
        print("man_test:", e)
    if errors:
        sys.exit(1)
    print(f"man_test: {len(commands)} commands, all documented")


if __name__ == "__main__":
    main()
