#!/usr/bin/env python3
"""Two hosts on one PostgreSQL database, and their failures (issue 14). TAP output.

Each "host" is a network namespace made here, with its own HOST_ID, RUN_DIR,
STATE_DIR and `qsimd agents` (started with `ip netns exec NS`, argv only). A
bridge in the root namespace joins them through veth pairs on a private /24;
PostgreSQL (Debian's postgresql-15, started here as the `postgres` user in a
temporary directory) listens on the bridge's address with password
authentication (DATABASE_PASSWORD_FILE), and `qsimd api` runs in the root
namespace. 50 requests (`echo TOKEN-i; sleep 1`) run across both hosts while:

  1. host A is cut off (`ip link set VETH down`): its QEMUs must stop before
     its lease can end (it cannot hear of the recovery: it fences itself), and
     host B recovers its requests once the leases expire; then A comes back;
  2. PostgreSQL restarts: every process reconnects and work goes on;
  3. host B's agents get SIGKILL: host A recovers B's requests after the lease.

Then every request is final; a request that was running on a host at the
moment of its fault may have failed ("agent lost" / "lease lost": its
commands may have started, so it is never run again), every other one is
done. Each done request's stdout holds its own token exactly once and no
other; every request has at most one `command` log entry (the agent writes
it before it sends the commands: a second run would write a second one), and
the done ones exactly one.

Root is needed (namespaces): without it the test is skipped with the reason.
Usage: test-multihost.py QSIMD SOURCE_ROOT
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PG_BIN = "/usr/lib/postgresql/15/bin"
N_REQUESTS = 50
# short, so the faults resolve quickly, yet several renewals (one a second) long: a host
# whose main loop is starved by a loaded machine must not lose leases it still holds
LEASE_SECONDS = 10
MAX_VMS_PER_HOST = 2

qsimd, src = sys.argv[1], sys.argv[2]
tap_n = 0
failed = 0


t_start = time.time()


def ok(desc):
    global tap_n
    tap_n += 1
    print(f"ok {tap_n} - {desc} [{time.time() - t_start:.0f} s]", flush=True)


def not_ok(desc, *lines):
    global tap_n, failed
    tap_n += 1
    failed += 1
    print(f"not ok {tap_n} - {desc}", flush=True)
    for line in lines:
        for part in str(line).splitlines():
            print(f"# {part}", flush=True)


def check(cond, desc, *lines):
    if cond:
        ok(desc)
    else:
        not_ok(desc, *lines)
    return cond


def skip_all(reason):
    print(f"1..0 # SKIP {reason}", flush=True)
    sys.exit(0)


def bail(reason):
    print(f"Bail out! {reason}", flush=True)
    raise SystemExit(1)


def run(argv, check_rc=True, **kw):
    """A command as argv (never a shell string); output captured."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stdout.strip()}")
    return p


# ---- preconditions ------------------------------------------------------------------------

if os.geteuid() != 0:
    skip_all("needs root to create network namespaces (run the integration suite as root)")
if shutil.which("ip") is None:
    skip_all("the ip command (iproute2) is missing")
if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
    skip_all(f"{PG_BIN}/initdb missing: install postgresql (data/install-deps.sh)")
if not os.path.exists(os.path.join(src, "vm_images", "tiny.qcow2")):
    if os.environ.get("QSIM_REQUIRE_VM"):
        bail("vm_images/tiny.qcow2 is missing (meson compile -C build guest-image)")
    skip_all("tiny guest image not built")

# ---- what this test made, so that everything goes whatever happens --------------------------

tag = f"{os.getpid() % 100000}"
ns_a, ns_b = f"qsim-mh{tag}-a", f"qsim-mh{tag}-b"
veth_a, veth_b, bridge = f"qma{tag}", f"qmb{tag}", f"qmbr{tag}"
tmp = tempfile.mkdtemp(prefix="qsim-mh-")
os.chmod(tmp, 0o755)  # the postgres user walks through it to its data directory
pgdir = os.path.join(tmp, "pg")
procs = {}  # name -> Popen: every process started here, stopped by PID
made_ns = []
made_links = []
pg_started = False


def ns_pids(ns):
    p = run(["ip", "netns", "pids", ns], check_rc=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def qemu_pids(ns):
    out = []
    for pid in ns_pids(ns):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().startswith("qemu"):
                    out.append(pid)
        except OSError:
            pass
    return out


def as_postgres(argv):
    return ["runuser", "-u", "postgres", "--"] + argv


def cleanup():
    for name, p in list(procs.items()):
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    # QEMUs the agents left (a SIGKILLed agent's children): every process in our namespaces
    # was started by this test, so they are stopped by PID
    for ns in made_ns:
        for pid in ns_pids(ns):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if pg_started:
        run(as_postgres([f"{PG_BIN}/pg_ctl", "-D", os.path.join(pgdir, "data"), "-m",
                         "immediate", "-w", "stop"]), check_rc=False)
    for ns in made_ns:
        run(["ip", "netns", "del", ns], check_rc=False)
    for link in made_links:
        run(["ip", "link", "del", link], check_rc=False)
    shutil.rmtree(tmp, ignore_errors=True)


def on_signal(signum, frame):
    cleanup()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def free_subnet():
    """A private /24 no interface of this machine uses."""
    used = run(["ip", "-4", "-o", "addr"]).stdout
    for _ in range(100):
        net = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if f" {net}." not in used:
            return net
    bail("no free private /24 found")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- topology --------------------------------------------------------------------------------

def make_topology(net):
    made_links.append(bridge)
    run(["ip", "link", "add", bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{net}.1/24", "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])
    for ns, veth, ip in ((ns_a, veth_a, f"{net}.2"), (ns_b, veth_b, f"{net}.3")):
        made_ns.append(ns)
        run(["ip", "netns", "add", ns])
        made_links.append(veth)
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", veth, "master", bridge])
        run(["ip", "link", "set", veth, "up"])
        # lo: QEMU's forwarded SSH port listens on 127.0.0.1 inside the namespace
        run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        run(["ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0"])
        run(["ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"])


def start_pg(net, port, password_file):
    global pg_started
    os.makedirs(pgdir)
    shutil.chown(pgdir, "postgres", "postgres")
    os.chmod(pgdir, 0o700)
    data = os.path.join(pgdir, "data")
    pwfile = os.path.join(pgdir, "initpw")
    with open(pwfile, "w") as f:
        f.write(open(password_file).read().strip() + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    run(as_postgres([f"{PG_BIN}/initdb", "-D", data, "-U", "qsim", "--pwfile", pwfile,
                     "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]))
    with open(os.path.join(data, "pg_hba.conf"), "w") as f:
        f.write("local all qsim scram-sha-256\n"
                "host all qsim 127.0.0.1/32 scram-sha-256\n"
                f"host all qsim {net}.0/24 scram-sha-256\n")
    # fsync off: a test database need not survive a power cut
    opts = (f"-F -p {port} -k {pgdir} -c listen_addresses=127.0.0.1,{net}.1"
            " -c max_connections=100")
    pg_started = True
    run(as_postgres([f"{PG_BIN}/pg_ctl", "-D", data, "-l", os.path.join(pgdir, "server.log"),
                     "-w", "-t", "60", "-o", opts, "start"]))
    env = dict(os.environ, PGPASSWORD=open(password_file).read().strip())
    run([f"{PG_BIN}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "qsim", "qsim"],
        env=env)
    return opts


def pg_restart(opts):
    data = os.path.join(pgdir, "data")
    run(as_postgres([f"{PG_BIN}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]))
    time.sleep(2)  # long enough for every process to notice the server is gone
    run(as_postgres([f"{PG_BIN}/pg_ctl", "-D", data, "-l", os.path.join(pgdir, "server.log"),
                     "-w", "-t", "60", "-o", opts, "start"]))


def psql_from(ns, url, password_file, sql):
    env = dict(os.environ, PGPASSWORD=open(password_file).read().strip())
    return run(["ip", "netns", "exec", ns, f"{PG_BIN}/psql", url, "-tAqc", sql],
               check_rc=False, env=env)


# ---- qsimd --------------------------------------------------------------------------------

def qsimd_supports_postgresql():
    p = run([qsimd, "config"], check_rc=False,
            env=dict(os.environ, XDG_CONFIG_HOME=tmp))
    return "DATABASE_URL" in p.stdout


def base_env(url, password_file):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QSIM_") and not k.startswith("SQLITE_SIM_")}
    env.update({
        "QSIM_DATABASE_URL": url,
        "QSIM_DATABASE_PASSWORD_FILE": password_file,
        "QSIM_VM_IMAGES_DIR": os.path.join(src, "vm_images"),
        "QSIM_VM_CONFIG_DIR": os.path.join(src, "vm_configs"),
        "QSIM_LEASE_SECONDS": str(LEASE_SECONDS),
        "QSIM_AGENT_POLL_INTERVAL": "0.5",
        "QSIM_MAX_CONCURRENT_VMS": str(2 * MAX_VMS_PER_HOST),
        "QSIM_MAX_VMS_PER_HOST": str(MAX_VMS_PER_HOST),
        "QSIM_LOG_LEVEL": "INFO",
        "XDG_CONFIG_HOME": tmp,
    })
    return env


def start_agents(name, ns, url, password_file):
    env = base_env(url, password_file)
    env.update({
        "QSIM_HOST_ID": f"host-{name}",
        "QSIM_RUN_DIR": os.path.join(tmp, name, "run"),
        "QSIM_STATE_DIR": os.path.join(tmp, name, "state"),
        "QSIM_AGENT_COUNT": str(MAX_VMS_PER_HOST),
    })
    log = open(os.path.join(tmp, f"agents-{name}.log"), "a")
    procs[f"agents-{name}"] = subprocess.Popen(
        ["ip", "netns", "exec", ns, qsimd, "agents"], env=env, stdout=log,
        stderr=subprocess.STDOUT)


class Api:
    def __init__(self, url, password_file):
        self.port = free_port()
        env = base_env(url, password_file)
        env.update({
            "QSIM_HOST_ID": "api",
            "QSIM_API_HOST": "127.0.0.1",
            "QSIM_API_PORT": str(self.port),
            "QSIM_INSECURE_NO_AUTH": "true",
            "QSIM_RUN_DIR": os.path.join(tmp, "api", "run"),
        })
        log = open(os.path.join(tmp, "api.log"), "a")
        procs["api"] = subprocess.Popen([qsimd, "api"], env=env, stdout=log,
                                        stderr=subprocess.STDOUT)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def get(self, path):
        # 503 while the API's own connection comes back after the database restarted
        deadline = time.time() + 60
        while True:
            try:
                return self.call("GET", path)
            except urllib.error.HTTPError as e:
                if e.code != 503 or time.time() > deadline:
                    raise
            except urllib.error.URLError:
                if time.time() > deadline:
                    raise
            time.sleep(0.3)

    def wait_up(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.get("/health")
                return True
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        return False


def tail(name, n=15):
    try:
        with open(os.path.join(tmp, name)) as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def wait_for(pred, timeout, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def main():
    net = free_subnet()
    password_file = os.path.join(tmp, "db-password")
    with open(password_file, "w") as f:
        f.write(f"pw-{random.getrandbits(64):x}\n")
    os.chmod(password_file, 0o600)
    port = free_port()
    url = f"postgresql://qsim@{net}.1:{port}/qsim"

    make_topology(net)
    ok(f"namespaces {ns_a}, {ns_b} on bridge {bridge} ({net}.0/24)")
    opts = start_pg(net, port, password_file)
    ok(f"PostgreSQL on {net}.1:{port} with password authentication")
    for ns in (ns_a, ns_b):
        p = psql_from(ns, url, password_file, "SELECT 40 + 2")
        check(p.stdout.strip() == "42", f"psql from {ns} reaches the server over TCP", p.stdout)
    p = run(["ip", "netns", "exec", ns_a, f"{PG_BIN}/psql", url, "-tAqc", "SELECT 1"],
            check_rc=False, env=dict(os.environ, PGPASSWORD="wrong"))
    check(p.returncode != 0 and "password authentication failed" in p.stdout,
          "a wrong password is refused", p.stdout)

    # the fault the test injects: a cut host cannot reach the server, and can again after
    run(["ip", "link", "set", veth_a, "down"])
    p = psql_from(ns_a, url + "?connect_timeout=2", password_file, "SELECT 1")
    check(p.returncode != 0, "with its veth down host A cannot reach the server", p.stdout)
    run(["ip", "link", "set", veth_a, "up"])
    p = wait_for(lambda: (lambda q: q if q.returncode == 0 else None)(
        psql_from(ns_a, url, password_file, "SELECT 1")), 10)
    check(p is not None, "with its veth up again host A reaches it")

    if not qsimd_supports_postgresql():
        print("# SKIP the rest: this qsimd has no PostgreSQL backend (DATABASE_URL)", flush=True)
        return

    api = Api(url, password_file)
    if not api.wait_up(60):
        bail(f"qsimd api did not come up: {tail('api.log')}")
    start_agents("a", ns_a, url, password_file)
    start_agents("b", ns_b, url, password_file)
    def published():
        try:
            vm = api.get("/vms/tiny")
        except urllib.error.HTTPError:
            return False
        return {h["host"] for h in vm["hosts"] if not h["stale"]} >= {"host-a", "host-b"}

    hosts = wait_for(published, 60)
    check(hosts, "both hosts published themselves", tail("agents-a.log"), tail("agents-b.log"))

    uuids = []
    for i in range(N_REQUESTS):
        r = api.call("POST", "/requests", {"vm_name": "tiny", "timeout": 120,
                                           "commands": f"echo TOKEN-{i}; sleep 1"})
        uuids.append(r["uuid"])
    ok(f"{N_REQUESTS} requests submitted")

    wanted = set(uuids)

    def rows():
        # one listing, not 50 GETs: the poll must not load the 2 cores the VMs need
        return {r["uuid"]: r for r in api.get(f"/requests?limit={2 * N_REQUESTS}")
                if r["uuid"] in wanted}

    def active_on(host, snapshot):
        return [u for u, r in snapshot.items()
                if r["status"] in ("acknowledged", "running")
                and (r.get("agent_id") or "").startswith(host + ":")]

    # both hosts work
    both = wait_for(lambda: {(r.get("agent_id") or "").split(":")[0]
                             for r in rows().values() if r.get("agent_id")}
                    >= {"host-a", "host-b"}, 90, 1)
    check(both, "requests are claimed by both hosts")
    faulted = set()  # requests active on a host at the moment of its fault

    # 1. cut host A off while it runs something
    snap = wait_for(lambda: (lambda s: s if active_on("host-a", s) else None)(rows()), 60, 0.3)
    held_by_a = active_on("host-a", snap or rows())
    faulted.update(held_by_a)
    run(["ip", "link", "set", veth_a, "down"])
    t_cut = time.time()
    ok(f"host A cut off holding {len(held_by_a)} requests")
    gone = wait_for(lambda: not qemu_pids(ns_a), LEASE_SECONDS + 10)
    check(gone and time.time() - t_cut <= LEASE_SECONDS + 10,
          "host A stopped its QEMUs on its own once its lease could not be renewed",
          f"still running: {qemu_pids(ns_a)}", tail("agents-a.log"))

    def recovered():
        s = rows()
        return all(s[u]["status"] in ("done", "failed", "cancelled")
                   or not (s[u].get("agent_id") or "").startswith("host-a:")
                   for u in held_by_a)

    check(wait_for(recovered, 3 * LEASE_SECONDS + 30, 1),
          "host B recovered host A's requests after the lease",
          json.dumps({u: rows()[u]["status"] for u in held_by_a}))
    run(["ip", "link", "set", veth_a, "up"])
    ok("host A reconnected to the network")

    # 2. restart PostgreSQL
    n_final_before = sum(r["status"] in ("done", "failed") for r in rows().values())
    pg_restart(opts)
    ok("PostgreSQL restarted")
    t_restart_ms = int(time.time() * 1000)

    def claimed_after_restart():
        hs = set()
        for r in rows().values():
            aid = r.get("agent_id") or ""
            if aid and r.get("updated_at") and parse_ms(r["updated_at"]) >= t_restart_ms:
                hs.add(aid.split(":")[0])
        return hs >= {"host-a", "host-b"}

    check(wait_for(claimed_after_restart, 90, 1),
          "both hosts work again after the restart (they reconnected)",
          tail("agents-a.log"), tail("agents-b.log"))
    check(wait_for(lambda: api.get("/health").get("status") == "ok", 30),
          "/health says ok again", json.dumps(api.get("/health")))
    check(wait_for(lambda: sum(r["status"] in ("done", "failed") for r in rows().values())
                   > n_final_before, 60, 1),
          "requests keep finishing after the restart")

    # 3. kill -9 host B's agents while they run something
    snap = wait_for(lambda: (lambda s: s if active_on("host-b", s) else None)(rows()), 60, 0.3)
    held_by_b = active_on("host-b", snap or rows())
    faulted.update(held_by_b)
    procs["agents-b"].kill()
    procs["agents-b"].wait()
    ok(f"host B's agents killed with SIGKILL holding {len(held_by_b)} requests")

    def recovered_from_b():
        s = rows()
        return all(not (s[u].get("agent_id") or "").startswith("host-b:")
                   or s[u]["status"] in ("done", "failed", "cancelled") for u in held_by_b)

    check(wait_for(recovered_from_b, 3 * LEASE_SECONDS + 30, 1),
          "host A recovered host B's requests after the lease",
          json.dumps({u: rows()[u]["status"] for u in held_by_b}))
    # B comes back (systemd's Restart=always): its QEMUs orphaned by the SIGKILL must go
    orphans = qemu_pids(ns_b)
    start_agents("b", ns_b, url, password_file)
    check(wait_for(lambda: not (set(qemu_pids(ns_b)) & set(orphans)), 30),
          f"no QEMU of host B's killed agents is left once they are back ({len(orphans)} were)",
          f"still there: {set(qemu_pids(ns_b)) & set(orphans)}", tail("agents-b.log"))

    # the end: every request final
    def all_final():
        s = rows()
        return s if all(r["status"] in ("done", "failed", "cancelled") for r in s.values()) \
            else None

    # a hang guard, not a timing assertion: 50 TCG boots on a loaded 2-core machine
    final = wait_for(all_final, 480, 1)
    snap = final or rows()
    check(final is not None, "every request reached a final status",
          json.dumps({u: r["status"] for u, r in snap.items()
                      if r["status"] not in ("done", "failed")}))
    done = [u for u, r in snap.items() if r["status"] == "done"]
    failed_rows = {u: r for u, r in snap.items() if r["status"] != "done"}
    check(set(failed_rows) <= faulted,
          f"{len(done)} done; only requests caught by a fault failed ({len(failed_rows)})",
          json.dumps({u: [r["status"], r.get("error")] for u, r in failed_rows.items()
                      if u not in faulted}))
    check(all((r.get("error") or "") in ("agent lost", "lease lost")
              for r in failed_rows.values()),
          "each failed one says its agent or lease was lost",
          json.dumps({u: r.get("error") for u, r in failed_rows.items()}))

    bad_tokens, bad_commands = [], []
    for i, u in enumerate(uuids):
        logs = api.get(f"/requests/{u}/logs?limit=10000")
        stdout = "".join(e["output"] for e in logs if e["log_type"] == "stdout")
        commands = sum(e["log_type"] == "command" for e in logs)
        tokens = [w for w in stdout.split() if w.startswith("TOKEN-")]
        if snap[u]["status"] == "done":
            if tokens != [f"TOKEN-{i}"]:
                bad_tokens.append((i, tokens))
            if commands != 1:
                bad_commands.append((i, commands))
        else:
            if tokens not in ([], [f"TOKEN-{i}"]) or commands > 1:
                bad_tokens.append((i, tokens, commands))
    check(not bad_tokens, "each done request's stdout holds its own token exactly once",
          repr(bad_tokens))
    check(not bad_commands and all(snap[u]["attempts"] <= 2 for u in uuids),
          "each command ran once: one `command` entry per done request, none twice",
          repr(bad_commands))
    check(procs["agents-a"].poll() is None and procs["agents-b"].poll() is None,
          "both hosts' agents are still up", tail("agents-a.log"), tail("agents-b.log"))


def parse_ms(ts):
    # "2026-12-03T11:00:00.123Z"
    from datetime import datetime, timezone
    t = datetime.strptime(ts.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return int(t.replace(tzinfo=timezone.utc).timestamp() * 1000)


try:
    main()
except SystemExit:
    raise
except Exception as e:  # noqa: BLE001: any failure is a TAP failure, then cleanup
    not_ok(f"the test stopped: {e!r}", tail("api.log"), tail("agents-a.log"),
           tail("agents-b.log"))
finally:
    if failed and os.environ.get("QSIM_KEEP_MULTIHOST"):
        print(f"# logs kept in {tmp} (QSIM_KEEP_MULTIHOST)", flush=True)
        saved = tmp + "-logs"
        shutil.copytree(tmp, saved, ignore=shutil.ignore_patterns("pg", "run", "state"),
                        dirs_exist_ok=True)
    cleanup()
print(f"1..{tap_n}", flush=True)
sys.exit(1 if failed else 0)
