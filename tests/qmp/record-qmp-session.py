#!/usr/bin/env python3
"""Record a real QMP session with QEMU into a JSON-lines transcript.

Each transcript line is one of:
  {"dir": "send", "msg": {...}}          what the client wrote
  {"dir": "recv", "raw": "<exact line>"}  what QEMU wrote, without the trailing CR LF
  {"dir": "eof"}                          QEMU closed the socket

The unit tests replay the "recv" lines (rewriting reply ids), so the fake peer speaks
exactly the bytes QEMU 7.2 produced. Usage:
  tests/qmp/record-qmp-session.py OUTPUT.jsonl [QEMU_BINARY]
"""

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time

# After each reply, keep reading this long so events QEMU emits right after it (RESUME after
# cont, SHUTDOWN after quit) land in the transcript in their real order.
SETTLE_S = 0.5


class Recorder:
    def __init__(self, sock, out):
        self.sock = sock
        self.out = out
        self.buf = b""
        self.eof = False
        self.next_id = 1

    def _log(self, obj):
        self.out.write(json.dumps(obj, sort_keys=True) + "\n")

    def _read_line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
                self._log({"dir": "eof"})
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        raw = line.decode("utf-8").rstrip("\r")
        self._log({"dir": "recv", "raw": raw})
        return json.loads(raw)

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        while self._read_line(deadline) is not None:
            pass

    def execute(self, command, arguments=None, settle=SETTLE_S):
        msg = {"execute": command, "id": "rec-%d" % self.next_id}
        self.next_id += 1
        if arguments is not None:
            msg["arguments"] = arguments
        self._log({"dir": "send", "msg": msg})
        self.sock.sendall(json.dumps(msg).encode() + b"\r\n")
        deadline = time.monotonic() + 10
        while True:
            obj = self._read_line(deadline)
            if obj is None:
                break
            if obj.get("id") == msg["id"]:
                break
        self.drain(settle)


def main():
    out_path = sys.argv[1]
    qemu = sys.argv[2] if len(sys.argv) > 2 else "qemu-system-x86_64"
    with tempfile.TemporaryDirectory(prefix="qsim-qmp-rec-") as tmp:
        path = os.path.join(tmp, "qmp.sock")
        argv = [qemu, "-machine", "q35", "-accel", "tcg", "-nodefaults", "-no-user-config",
                "-display", "none", "-m", "64", "-S",
                "-qmp", "unix:%s,server=on,wait=off" % path]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(path):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("QEMU did not create %s" % path)
                time.sleep(0.02)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            with open(out_path, "w") as out:
                rec = Recorder(sock, out)
                rec.drain(1.0)  # greeting
                rec.execute("qmp_capabilities")
                rec.execute("query-status")  # prelaunch (-S)
                rec.execute("cont")  # RESUME
                rec.execute("query-status")  # running
                rec.execute("stop")  # STOP
                rec.execute("query-status")  # paused
                rec.execute("cont")
                rec.execute("no-such-command")  # CommandNotFound
                rec.execute("human-monitor-command", {"command-line": "info status"})
                rec.execute("query-version")
                rec.execute("system_reset")  # RESET
                rec.execute("system_powerdown")  # POWERDOWN (no OS: nothing else)
                rec.execute("quit", settle=3.0)  # SHUTDOWN, then EOF
            sock.close()
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
