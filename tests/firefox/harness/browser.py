"""One headless Firefox: started in a session of its own, its processes
tracked while it runs, quit cleanly by its page or killed as a fallback."""

import os
import signal
import subprocess
import time


def _stat(pid):
    """(ppid, starttime) of a live process, or None (a zombie is dead: in
    a container nobody may ever reap it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after it.
    fields = data[data.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class Browser:
    """Firefox running `url` on `profile` with extra environment `env`."""

    def __init__(self, firefox, profile, url, env, log_path):
        full_env = dict(os.environ)
        full_env.update(env)
        # No crash-reporter dialog and no "safe mode?" question after an
        # unclean exit: the test must never wait on a prompt.
        full_env["MOZ_CRASHREPORTER_DISABLE"] = "1"
        full_env["MOZ_DISABLE_AUTO_SAFE_MODE"] = "1"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [firefox, "--headless", "--no-remote", "--profile", profile, url],
            env=full_env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        # pid -> starttime of every process seen in the tree: a child that
        # outlives the parent is reparented, so it is found by this record.
        self._seen = {}
        self.track()

    def track(self):
        """Records the processes now in the browser's tree, and the crash
        helper, which detaches itself at once (its own session, reparented
        to init) and names the parent's pid as its first argument. Returns
        the tree's pids, the parent first."""
        children = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            st = _stat(pid)
            if st is None:
                continue
            children.setdefault(st[0], []).append((pid, st[1]))
            args = _cmdline(pid)
            if (len(args) > 1 and args[1] == str(self.pid).encode()
                    and os.path.basename(args[0]) == b"crashhelper"):
                self._seen[pid] = st[1]
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            for child, start in children.get(pid, []):
                self._seen[child] = start
                todo.append(child)
        return tree

    def role(self, pid):
        """"parent", "content" (-contentproc, the fork server included) or
        the program's name."""
        if pid == self.pid:
            return "parent"
        args = _cmdline(pid)
        if b"-contentproc" in args:
            return "content"
        return os.path.basename(args[0]).decode() if args else "gone"

    def maps(self, pid):
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_exit(self, timeout):
        """The parent's exit status, or None if it still runs after
        `timeout` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def leftovers(self):
        """Processes of this browser still alive, by pid (same starttime:
        a reused pid is not ours)."""
        return [pid for pid, start in self._seen.items()
                if (_stat(pid) or (None, None))[1] == start]

    def kill(self):
        """Kills the parent (if it runs) and every process it left."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.1)
        self._log.close()

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""
