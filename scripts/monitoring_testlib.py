"""Helpers shared by the monitoring test scripts (standard library + PyYAML)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Checks:
    """Counts named checks; prints one line per check."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
            print("ok   %s: %s" % (self.prefix, name))
        else:
            self.failed += 1
            print("FAIL %s: %s %s" % (self.prefix, name, detail))
        return ok

    def finish(self):
        print("%s: %d passed, %d failed" % (self.prefix, self.passed, self.failed))
        return 0 if self.failed == 0 and self.passed > 0 else 1


def find_binary(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    sys.exit("none of %s found in PATH" % ", ".join(names))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method, url, body=None, timeout=10):
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, raw
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def get_json(url, timeout=30):
    status, raw = http("GET", url, timeout=timeout)
    if status != 200:
        raise RuntimeError("GET %s -> %s: %s" % (url, status, raw[:500]))
    return json.loads(raw)


def wait_ready(url, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited with %s before %s was ready" % (proc.returncode, url))
        try:
            status, _ = http("GET", url, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("%s not ready after %ss" % (url, timeout))


def start(cmd, log_path):
    log = open(log_path, "wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode(errors="replace")
    except OSError:
        return ""
