"""Reference for tests/bench/api: the seed's stack (FastAPI + uvicorn, SQLite in WAL
mode) reduced to the two benchmarked endpoints.

QSIM_REF_MODE=per-request opens a connection per request, as a typical FastAPI app
(and the seed) does; QSIM_REF_MODE=shared keeps one connection for the process.
QSIM_REF_DB is the database file; QSIM_REF_SEED rows are inserted at start-up.
"""
import os
import sqlite3
import threading
import uuid as uuidlib
from datetime import datetime, timezone

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

DB = os.environ["QSIM_REF_DB"]
MODE = os.environ.get("QSIM_REF_MODE", "per-request")
SEED = int(os.environ.get("QSIM_REF_SEED", "10000"))

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    uuid TEXT PRIMARY KEY,
    vm_name TEXT NOT NULL,
    commands TEXT NOT NULL,
    timeout INTEGER DEFAULT 300,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    status TEXT DEFAULT 'pending'
)"""


def connect():
    conn = sqlite3.connect(DB, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.row_factory = sqlite3.Row
    return conn


def seed():
    conn = connect()
    conn.execute(SCHEMA)
    have = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    rows = [(str(uuidlib.uuid4()), "tiny", "echo hi", 300) for _ in range(max(0, SEED - have))]
    conn.executemany("INSERT INTO requests (uuid, vm_name, commands, timeout) VALUES (?,?,?,?)", rows)
    conn.commit()
    first = conn.execute("SELECT uuid FROM requests LIMIT 1").fetchone()[0]
    with open(DB + ".uuid", "w") as f:
        f.write(first)
    conn.close()


seed()
shared = connect() if MODE == "shared" else None
# FastAPI runs sync endpoints in a thread pool; one sqlite3 connection must not be
# used by two threads at once, so the shared variant serialises on a lock.
shared_lock = threading.Lock()
app = FastAPI()


class NewRequest(BaseModel):
    vm_name: str
    commands: str
    timeout: int = 300


def get_conn():
    if shared is None:
        return connect()
    shared_lock.acquire()
    return shared


def release(conn):
    if conn is shared:
        shared_lock.release()
    else:
        conn.close()


@app.post("/requests", status_code=201)
def create(req: NewRequest):
    if req.timeout < 1 or req.timeout > 3600:
        raise HTTPException(status_code=422, detail="timeout")
    conn = get_conn()
    try:
        new = str(uuidlib.uuid4())
        now = datetime.now(timezone.utc).isoformat()
        conn.execute(
            "INSERT INTO requests (uuid, vm_name, commands, timeout, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?)",
            (new, req.vm_name, req.commands, req.timeout, now, now),
        )
        conn.commit()
    finally:
        release(conn)
    return {"uuid": new, "status": "pending", "message": "Request created successfully"}


@app.get("/requests/{uuid}")
def get(uuid: str):
    conn = get_conn()
    try:
        row = conn.execute("SELECT * FROM requests WHERE uuid = ?", (uuid,)).fetchone()
    finally:
        release(conn)
    if row is None:
        raise HTTPException(status_code=404, detail="not found")
    return dict(row)
