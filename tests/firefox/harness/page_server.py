"""The test pages on 127.0.0.1, served from a thread, and the page's
reports: POST /report with the page's JSON state; the reply tells the page
whether to stop, and what else the harness set (Reports.set_reply)."""

import http.server
import json
import os
import socket
import threading
import time

_TYPES = {".html": "text/html; charset=utf-8",
          ".js": "text/javascript; charset=utf-8"}


class Reports:
    """What the page reported, shared between the server and the harness."""

    def __init__(self):
        self._cond = threading.Condition()
        self._latest = None
        self._stop = False
        self._reply = {}

    def add(self, report):
        """Records a report; returns the reply for the page."""
        with self._cond:
            self._latest = report
            self._cond.notify_all()
            return {"stop": self._stop, **self._reply}

    def set_reply(self, **fields):
        """Fields every later reply carries, besides "stop"."""
        with self._cond:
            self._reply.update(fields)

    def reset(self):
        """Forgets every report and reply field, for the next page."""
        with self._cond:
            self._latest = None
            self._stop = False
            self._reply = {}

    def request_stop(self):
        with self._cond:
            self._stop = True

    def latest(self):
        with self._cond:
            return self._latest

    def wait_for(self, predicate, timeout):
        """Waits until predicate(latest report) holds; returns that report,
        or None when `timeout` seconds passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or not predicate(self._latest):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._latest


class PageServer:
    """Serves `pages_dir` on 127.0.0.1:<free port> until closed."""

    def __init__(self, pages_dir):
        self.reports = Reports()
        pages = os.path.abspath(pages_dir)
        reports = self.reports

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass  # the harness prints what matters

            def _send(self, code, body, content_type):
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                name = self.path.split("?", 1)[0].lstrip("/")
                path = os.path.join(pages, name)
                ext = os.path.splitext(name)[1]
                if "/" in name or ext not in _TYPES or not os.path.isfile(path):
                    self._send(404, b"not found", "text/plain")
                    return
                with open(path, "rb") as f:
                    self._send(200, f.read(), _TYPES[ext])

            def do_POST(self):
                if self.path != "/report":
                    self._send(404, b"not found", "text/plain")
                    return
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    report = json.loads(self.rfile.read(length))
                except ValueError:
                    self._send(400, b"bad json", "text/plain")
                    return
                reply = reports.add(report)
                self._send(200, json.dumps(reply).encode(), "application/json")

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="page-server", daemon=True)
        self._thread.start()

    def url(self, page, query=""):
        return f"http://127.0.0.1:{self.port}/{page}" + (f"?{query}" if query else "")

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


class ClosedPort:
    """A loopback port bound but never listening: connections to it are
    refused at once, and nothing else can take it while this lives."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]

    def close(self):
        self._sock.close()
