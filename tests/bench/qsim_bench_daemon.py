"""Shared by the agent benchmarks: run `qsimd all` on a temporary database and
talk to it over HTTP (stdlib only). Every process started is stopped by PID."""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(BENCH_DIR))


def find_qsimd():
    for cand in (os.environ.get("QSIMD"),
                 os.path.join(SOURCE_ROOT, "build", "src", "daemon", "qsimd")):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise SystemExit("qsimd not found: build it or set QSIMD=/path/to/qsimd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`qsimd all` with its own database, RUN_DIR and port."""

    def __init__(self, max_vms=2, agents=2, extra=None):
        self.dir = tempfile.mkdtemp(prefix="qbench-")
        self.port = free_port()
        self.db = os.path.join(self.dir, "db.sqlite")
        env = dict(os.environ)
        env.update({
            "QSIM_DB_PATH": self.db,
            "QSIM_RUN_DIR": os.path.join(self.dir, "run"),
            "QSIM_VM_IMAGES_DIR": os.path.join(SOURCE_ROOT, "vm_images"),
            "QSIM_VM_CONFIG_DIR": os.path.join(SOURCE_ROOT, "vm_configs"),
            "QSIM_API_PORT": str(self.port),
            "QSIM_INSECURE_NO_AUTH": "true",
            "QSIM_AGENT_COUNT": str(agents),
            "QSIM_MAX_CONCURRENT_VMS": str(max_vms),
            "QSIM_MAX_TIMEOUT": "3600",
            "QSIM_LOG_LEVEL": "WARNING",
            "XDG_CONFIG_HOME": self.dir,
        })
        env.update(extra or {})
        self.log = open(os.path.join(self.dir, "qsimd.log"), "w")
        self.proc = subprocess.Popen([find_qsimd(), "all"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.get("/health")
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise SystemExit("qsimd all did not come up")
        self.ticks = os.sysconf("SC_CLK_TCK")

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def get(self, path):
        return self.request("GET", path)

    def submit(self, commands, timeout=600, vm="tiny"):
        return self.request("POST", "/requests",
                            {"vm_name": vm, "commands": commands, "timeout": timeout})["uuid"]

    def db_conn(self):
        conn = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
        return conn

    def cpu_seconds(self):
        """qsimd's own user+system CPU time (its QEMU children are not included)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def rss_kib(self):
        """(current RSS, peak RSS) of qsimd alone, in KiB."""
        cur = peak = 0
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
        return cur, peak

    def wait_final(self, uuids, timeout=3600):
        deadline = time.time() + timeout
        pending = set(uuids)
        final = {}
        while pending and time.time() < deadline:
            for u in list(pending):
                r = self.get("/requests/" + u)
                if r["status"] in ("done", "failed", "cancelled"):
                    final[u] = r
                    pending.discard(u)
            time.sleep(0.2)
        if pending:
            raise SystemExit("%d requests did not finish" % len(pending))
        return final

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
