-- A database as schema version 1 left it (hand-written from docs/store.md), with rows in
-- every interesting state. tests/store/test-store.c opens it to prove that a released
-- schema keeps opening and reading after later migrations are added.
BEGIN;
CREATE TABLE requests (
  uuid TEXT PRIMARY KEY NOT NULL CHECK (length(uuid) = 36),
  id INTEGER NOT NULL,
  vm_name TEXT NOT NULL CHECK (vm_name <> ''),
  commands TEXT NOT NULL CHECK (commands <> ''),
  timeout INTEGER NOT NULL CHECK (timeout > 0),
  status TEXT NOT NULL CHECK (status IN ('pending', 'acknowledged', 'running', 'done',
                                         'failed', 'cancelled', 'hold')),
  held_from TEXT CHECK (held_from IN ('pending', 'running')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  exit_code INTEGER,
  error TEXT,
  agent_id TEXT,
  lease_expires_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0)
);
CREATE UNIQUE INDEX requests_by_id ON requests (id);
CREATE INDEX requests_by_status ON requests (status, id);
CREATE INDEX requests_by_vm_name ON requests (vm_name, id);
CREATE INDEX requests_by_created_at ON requests (created_at);
CREATE INDEX requests_by_lease ON requests (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX requests_by_finished_at ON requests (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE request_logs (
  request_uuid TEXT NOT NULL REFERENCES requests (uuid) ON DELETE CASCADE,
  seq INTEGER NOT NULL CHECK (seq > 0),
  timestamp_ms INTEGER NOT NULL,
  log_type TEXT NOT NULL CHECK (log_type IN ('boot', 'command', 'stdout', 'stderr', 'system')),
  output BLOB NOT NULL,
  PRIMARY KEY (request_uuid, seq)
);
INSERT INTO requests VALUES ('0a1b2c3d-0000-4000-8000-000000000001', 1, 'tiny', 'echo hi', 300,
  'done', NULL, 1764000000000, 1764000009000, 1764000004000, 1764000009000, 0, NULL, 'host-a:1',
  NULL, 1);
INSERT INTO requests VALUES ('0a1b2c3d-0000-4000-8000-000000000002', 2, 'tiny', 'sleep 100', 300,
  'hold', 'running', 1764000001000, 1764000020000, 1764000010000, NULL, NULL, NULL, 'host-a:1',
  1764000050000, 1);
INSERT INTO requests VALUES ('0a1b2c3d-0000-4000-8000-000000000003', 3, 'other', 'false', 60,
  'pending', NULL, 1764000002000, 1764000002000, NULL, NULL, NULL, NULL, NULL, NULL, 0);
INSERT INTO request_logs VALUES ('0a1b2c3d-0000-4000-8000-000000000001', 1, 1764000004000,
  'command', CAST('echo hi' AS BLOB));
INSERT INTO request_logs VALUES ('0a1b2c3d-0000-4000-8000-000000000001', 2, 1764000005000,
  'stdout', X'68690A00FF');
PRAGMA user_version = 1;
COMMIT;
