#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-sqlite-schema.h"
#include "store/qsim-sqlite-transaction.h"
#include "store/qsim-sqlite-util.h"

/*
 * migrations[i] takes the schema from version i to i + 1 and sets
 * user_version itself, so the version moves in the same transaction as the
 * change. Never edit a released step: append a new one.
 *
 * v1: requests + request_logs.
 *   - `id` is the submission order (newest-first listing, FIFO claims, the
 *     `before` cursor); uuid stays the primary key the API speaks.
 *   - a non-NULL lease_expires_at means an agent holds a VM for the request:
 *     live leases are the VM slots counted against MAX_CONCURRENT_VMS.
 *   - times are unix ms; statuses and log types are their names, CHECKed.
 * v2: fast start.
 *   - requests.start_mode: NULL until the VM started, then how (cold, snapshot,
 *     warm), for the log, the API and the stats.
 *   - templates: one row per (vm_name, host): the files live on one host, and
 *     later many hosts share one database. State, the inputs the template was
 *     made from, the last build, and a prepare request (requested_at, force)
 *     that the agents on that host pick up and claim, so one process builds.
 * v3: accel_verdicts, the KVM probe verdict cached per host.
 * v4: request_counts, so /stats and `qsimd status` answer without scanning
 *   requests (GROUP BY over a million rows took 600 ms on the main loop).
 *   - one row per (dimension, value): ('status', a status) and ('start_mode',
 *     a mode or 'none'), all seeded, so the triggers only ever UPDATE.
 *   - triggers keep it in the transaction that inserts, updates or deletes the
 *     request: counts can never drift from the rows, whatever connection or
 *     process wrote them, and a rolled-back change rolls its count back too.
 *   - the WHEN clauses matter: the store's one UPDATE sets status and
 *     start_mode on every change, even to the same value.
 *   - initialised from the existing rows in the same step.
 * v5: requests.output_truncated: 1 once OUTPUT_LIMIT cut the stored output.
 * v6: metrics (issue 15).
 *   - requests.end_reason: the class of how a request ended
 *     (qsim_end_reason_classify()), written with its final status.
 *   - request_totals: monotonic counters for Prometheus, one row per
 *     (event, label1, label2): submitted, finished (status, reason), started
 *     (start mode), template_build (result) and output_bytes (log type). Kept
 *     by triggers in the writing transaction like request_counts, so every
 *     process reads the same totals in O(1); unlike request_counts nothing
 *     ever decrements them (deleting or purging a request is not an event),
 *     and rows are created on first use (upserts), so a new reason needs no
 *     migration.
 *   - a final status is counted once, on the change into it: final statuses
 *     are never left (qsim-status.c's table).
 *   - initialised from the existing rows, except output_bytes, which starts
 *     at 0: summing every stored log would read the whole file at upgrade.
 * v7: one source of truth for what lives on hosts (issue 13).
 *   - hosts: one row per HOST_ID, written by its agents with every heartbeat;
 *     readers call a host stale once heartbeat_at + stale_after_ms passed.
 *   - host_agents: the agent ids of each host, each with its own heartbeat, so
 *     a dead process drops out while its host's other processes keep it alive.
 *   - host_vms: each host's VM catalogue (what `GET /vms` shows and
 *     `POST /requests` checks) with its warm pool counts.
 *   - vm_slots: one row per QEMU qsim runs or is about to start (a request's,
 *     a warm VM's, a build's), inserted in the transaction that decides to
 *     start it: MAX_CONCURRENT_VMS and MAX_VMS_PER_HOST count these rows. A
 *     request's slot lives as long as its lease; requests leased at upgrade
 *     time get theirs here.
 * v8: request_events, the journal behind GET /events (issue 17).
 *   - one row per request created, status changed or deleted; `id` is the
 *     SSE event id a client resumes from (AUTOINCREMENT: an id is never
 *     reused, even after the oldest rows are trimmed, so a resume point
 *     never points at a different event).
 *   - filled by triggers, so every writer (an agent in another process, a
 *     purge, a future backend's own code path) journals alike, in the
 *     transaction that made the change.
 *   - bounded: each insert trims rows more than 100000 ids old (a range
 *     delete on the primary key); a client further behind lists the
 *     requests again instead.
 *   - starts empty: the requests already stored are what a list shows.
 *   - requests_fts: a trigram index of commands (FTS5, external content: the
 *     text is not stored twice), for GET /requests?q=: a substring search
 *     that reads no more than the index at 1 M requests, where a scan takes 100+ ms of the
 *     main loop. Kept by triggers on insert and delete (commands never
 *     change); built from the existing rows in this step (seconds per
 *     million requests, once).
 */
static const gchar *const migrations[] = {
    "CREATE TABLE requests ("
    "  uuid TEXT PRIMARY KEY NOT NULL CHECK (length(uuid) = 36),"
    "  id INTEGER NOT NULL,"
    "  vm_name TEXT NOT NULL CHECK (vm_name <> ''),"
    "  commands TEXT NOT NULL CHECK (commands <> ''),"
    "  timeout INTEGER NOT NULL CHECK (timeout > 0),"
    "  status TEXT NOT NULL CHECK (status IN ('pending', 'acknowledged', 'running', 'done',"
    "                                         'failed', 'cancelled', 'hold')),"
    "  held_from TEXT CHECK (held_from IN ('pending', 'running')),"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  finished_at INTEGER,"
    "  exit_code INTEGER,"
    "  error TEXT,"
    "  agent_id TEXT,"
    "  lease_expires_at INTEGER,"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0)"
    ");"
    /* listing newest first, the before cursor, and submission order */
    "CREATE UNIQUE INDEX requests_by_id ON requests (id);"
    /* listing by status, the claim (oldest pending) and counts by status */
    "CREATE INDEX requests_by_status ON requests (status, id);"
    "CREATE INDEX requests_by_vm_name ON requests (vm_name, id);"
    "CREATE INDEX requests_by_created_at ON requests (created_at);"
    /* live leases (VM slots) and expired leases (recovery) */
    "CREATE INDEX requests_by_lease ON requests (lease_expires_at)"
    "  WHERE lease_expires_at IS NOT NULL;"
    /* stats over the most recently finished requests */
    "CREATE INDEX requests_by_finished_at ON requests (finished_at)"
    "  WHERE finished_at IS NOT NULL;"
    "CREATE TABLE request_logs ("
    "  request_uuid TEXT NOT NULL REFERENCES requests (uuid) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL CHECK (seq > 0),"
    "  timestamp_ms INTEGER NOT NULL,"
    "  log_type TEXT NOT NULL CHECK (log_type IN ('boot', 'command', 'stdout', 'stderr',"
    "                                             'system')),"
    "  output BLOB NOT NULL,"
    "  PRIMARY KEY (request_uuid, seq)"
    ");"
    "PRAGMA user_version = 1;",

    "ALTER TABLE requests ADD COLUMN start_mode TEXT"
    "  CHECK (start_mode IN ('cold', 'snapshot', 'warm'));"
    "CREATE TABLE templates ("
    "  vm_name TEXT NOT NULL CHECK (vm_name <> ''),"
    "  host TEXT NOT NULL CHECK (host <> ''),"
    "  state TEXT NOT NULL CHECK (state IN ('none', 'building', 'ready', 'stale', 'failed')),"
    "  dir TEXT,"
    "  size_bytes INTEGER,"
    "  image_sha256 TEXT,"
    "  image_size INTEGER,"
    "  image_mtime_us INTEGER,"
    "  config_hash TEXT,"
    "  qemu_version TEXT,"
    "  machine TEXT,"
    "  build_started_at INTEGER,"
    "  build_finished_at INTEGER,"
    "  build_ms INTEGER CHECK (build_ms >= 0),"
    "  reason TEXT,"
    "  prepare_requested_at INTEGER,"
    "  prepare_force INTEGER NOT NULL DEFAULT 0 CHECK (prepare_force IN (0, 1)),"
    "  updated_at INTEGER NOT NULL,"
    "  builder TEXT,"
    "  PRIMARY KEY (vm_name, host)"
    ");"
    /* the agents' poll for prepare requests on their host */
    "CREATE INDEX templates_by_prepare ON templates (host, prepare_requested_at)"
    "  WHERE prepare_requested_at IS NOT NULL;"
    "PRAGMA user_version = 2;",

    /* one row per host: its KVM probe verdict, shared by every process on it */
    "CREATE TABLE accel_verdicts ("
    "  host TEXT PRIMARY KEY CHECK (host <> ''),"
    "  cache_key TEXT NOT NULL CHECK (cache_key <> ''),"
    "  kvm INTEGER NOT NULL CHECK (kvm IN (0, 1)),"
    "  reason TEXT NOT NULL,"
    "  probe_ms INTEGER NOT NULL CHECK (probe_ms >= 0),"
    "  probed_at INTEGER NOT NULL"
    ");"
    "PRAGMA user_version = 3;",

    "CREATE TABLE request_counts ("
    "  dimension TEXT NOT NULL CHECK (dimension IN ('status', 'start_mode')),"
    "  value TEXT NOT NULL,"
    "  n INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (dimension, value)"
    ") WITHOUT ROWID;"
    "INSERT INTO request_counts (dimension, value) VALUES"
    "  ('status', 'pending'), ('status', 'acknowledged'), ('status', 'running'),"
    "  ('status', 'done'), ('status', 'failed'), ('status', 'cancelled'), ('status', 'hold'),"
    "  ('start_mode', 'none'), ('start_mode', 'cold'), ('start_mode', 'snapshot'),"
    "  ('start_mode', 'warm');"
    /* the one full scan, once, at upgrade time */
    "UPDATE request_counts SET n = (SELECT COUNT(*) FROM requests"
    "  WHERE requests.status = request_counts.value) WHERE dimension = 'status';"
    "UPDATE request_counts SET n = (SELECT COUNT(*) FROM requests"
    "  WHERE COALESCE(requests.start_mode, 'none') = request_counts.value)"
    "  WHERE dimension = 'start_mode';"
    "CREATE TRIGGER request_counts_insert AFTER INSERT ON requests BEGIN"
    "  UPDATE request_counts SET n = n + 1"
    "    WHERE dimension = 'status' AND value = NEW.status;"
    "  UPDATE request_counts SET n = n + 1"
    "    WHERE dimension = 'start_mode' AND value = COALESCE(NEW.start_mode, 'none');"
    "END;"
    "CREATE TRIGGER request_counts_status AFTER UPDATE OF status ON requests"
    "  WHEN OLD.status IS NOT NEW.status BEGIN"
    "  UPDATE request_counts SET n = n - 1 WHERE dimension = 'status' AND value = OLD.status;"
    "  UPDATE request_counts SET n = n + 1 WHERE dimension = 'status' AND value = NEW.status;"
    "END;"
    "CREATE TRIGGER request_counts_start_mode AFTER UPDATE OF start_mode ON requests"
    "  WHEN OLD.start_mode IS NOT NEW.start_mode BEGIN"
    "  UPDATE request_counts SET n = n - 1"
    "    WHERE dimension = 'start_mode' AND value = COALESCE(OLD.start_mode, 'none');"
    "  UPDATE request_counts SET n = n + 1"
    "    WHERE dimension = 'start_mode' AND value = COALESCE(NEW.start_mode, 'none');"
    "END;"
    "CREATE TRIGGER request_counts_delete AFTER DELETE ON requests BEGIN"
    "  UPDATE request_counts SET n = n - 1"
    "    WHERE dimension = 'status' AND value = OLD.status;"
    "  UPDATE request_counts SET n = n - 1"
    "    WHERE dimension = 'start_mode' AND value = COALESCE(OLD.start_mode, 'none');"
    "END;"
    "PRAGMA user_version = 4;",

    /* self-contained: only this column, so the step can be renumbered at a merge */
    "ALTER TABLE requests ADD COLUMN output_truncated INTEGER NOT NULL DEFAULT 0"
    "  CHECK (output_truncated IN (0, 1));"
    "PRAGMA user_version = 5;",

    "ALTER TABLE requests ADD COLUMN end_reason TEXT;"
    "CREATE TABLE request_totals ("
    "  event TEXT NOT NULL CHECK (event IN ('submitted', 'finished', 'started',"
    "                                       'template_build', 'output_bytes')),"
    "  label1 TEXT NOT NULL DEFAULT '',"
    "  label2 TEXT NOT NULL DEFAULT '',"
    "  n INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (event, label1, label2)"
    ") WITHOUT ROWID;"
    "INSERT INTO request_totals (event, n) SELECT 'submitted', COUNT(*) FROM requests;"
    "INSERT INTO request_totals (event, label1, label2, n)"
    "  SELECT 'finished', status, CASE status WHEN 'done' THEN 'success'"
    "    WHEN 'cancelled' THEN 'cancelled' ELSE 'other' END, COUNT(*) FROM requests"
    "  WHERE status IN ('done', 'failed', 'cancelled') GROUP BY status;"
    "INSERT INTO request_totals (event, label1, n)"
    "  SELECT 'started', start_mode, COUNT(*) FROM requests"
    "  WHERE start_mode IS NOT NULL GROUP BY start_mode;"
    "CREATE TRIGGER request_totals_insert AFTER INSERT ON requests BEGIN"
    "  INSERT INTO request_totals (event, n) VALUES ('submitted', 1)"
    "    ON CONFLICT DO UPDATE SET n = n + 1;"
    /* rows written already started or finished: imports and tests */
    "  INSERT INTO request_totals (event, label1, n)"
    "    SELECT 'started', NEW.start_mode, 1 WHERE NEW.start_mode IS NOT NULL"
    "    ON CONFLICT DO UPDATE SET n = n + 1;"
    "  INSERT INTO request_totals (event, label1, label2, n)"
    "    SELECT 'finished', NEW.status, COALESCE(NEW.end_reason, 'other'), 1"
    "    WHERE NEW.status IN ('done', 'failed', 'cancelled')"
    "    ON CONFLICT DO UPDATE SET n = n + 1;"
    "END;"
    "CREATE TRIGGER request_totals_finished AFTER UPDATE OF status ON requests"
    "  WHEN NEW.status IN ('done', 'failed', 'cancelled')"
    "   AND OLD.status NOT IN ('done', 'failed', 'cancelled') BEGIN"
    "  INSERT INTO request_totals (event, label1, label2, n)"
    "    VALUES ('finished', NEW.status, COALESCE(NEW.end_reason, 'other'), 1)"
    "    ON CONFLICT DO UPDATE SET n = n + 1;"
    "END;"
    "CREATE TRIGGER request_totals_started AFTER UPDATE OF start_mode ON requests"
    "  WHEN NEW.start_mode IS NOT NULL AND OLD.start_mode IS NOT NEW.start_mode BEGIN"
    "  INSERT INTO request_totals (event, label1, n) VALUES ('started', NEW.start_mode, 1)"
    "    ON CONFLICT DO UPDATE SET n = n + 1;"
    "END;"
    "CREATE TRIGGER request_totals_output AFTER INSERT ON request_logs BEGIN"
    "  INSERT INTO request_totals (event, label1, n)"
    "    VALUES ('output_bytes', NEW.log_type, length(NEW.output))"
    "    ON CONFLICT DO UPDATE SET n = n + excluded.n;"
    "END;"
    /* a build ends when its row leaves building, whatever it became */
    "CREATE TRIGGER request_totals_template AFTER UPDATE OF state ON templates"
    "  WHEN OLD.state = 'building' AND NEW.state <> 'building' BEGIN"
    "  INSERT INTO request_totals (event, label1, n) VALUES ('template_build', NEW.state, 1)"
    "    ON CONFLICT DO UPDATE SET n = n + 1;"
    "END;"
    "PRAGMA user_version = 6;",

    "CREATE TABLE hosts ("
    "  host TEXT PRIMARY KEY CHECK (host <> ''),"
    "  version TEXT NOT NULL,"
    "  accel TEXT CHECK (accel IN ('kvm', 'tcg')),"
    "  max_vms INTEGER NOT NULL DEFAULT 0 CHECK (max_vms >= 0),"
    "  max_total INTEGER NOT NULL DEFAULT 0 CHECK (max_total >= 0),"
    "  heartbeat_at INTEGER NOT NULL,"
    "  stale_after_ms INTEGER NOT NULL CHECK (stale_after_ms > 0)"
    ");"
    "CREATE TABLE host_agents ("
    "  agent_id TEXT PRIMARY KEY CHECK (agent_id <> ''),"
    "  host TEXT NOT NULL REFERENCES hosts (host) ON DELETE CASCADE,"
    "  heartbeat_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX host_agents_by_host ON host_agents (host);"
    "CREATE TABLE host_vms ("
    "  host TEXT NOT NULL REFERENCES hosts (host) ON DELETE CASCADE,"
    "  vm_name TEXT NOT NULL CHECK (vm_name <> ''),"
    "  valid INTEGER NOT NULL CHECK (valid IN (0, 1)),"
    "  error TEXT,"
    "  image TEXT,"
    "  format TEXT,"
    "  size_bytes INTEGER NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),"
    "  config TEXT,"
    "  config_hash TEXT,"
    "  image_id TEXT,"
    "  accel_mode TEXT,"
    "  accel_source TEXT,"
    "  warm_size INTEGER NOT NULL DEFAULT 0 CHECK (warm_size >= 0),"
    "  warm_parked INTEGER NOT NULL DEFAULT 0 CHECK (warm_parked >= 0),"
    "  warm_starting INTEGER NOT NULL DEFAULT 0 CHECK (warm_starting >= 0),"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (vm_name, host)"
    ");"
    "CREATE TABLE vm_slots ("
    "  id INTEGER PRIMARY KEY,"
    "  host TEXT NOT NULL CHECK (host <> ''),"
    "  owner TEXT NOT NULL CHECK (owner <> ''),"
    "  kind TEXT NOT NULL CHECK (kind IN ('request', 'warm', 'build')),"
    "  ref TEXT NOT NULL,"
    "  claimed_at INTEGER NOT NULL"
    ");"
    /* a request has at most one QEMU, hence one slot */
    "CREATE UNIQUE INDEX vm_slots_by_request ON vm_slots (ref) WHERE kind = 'request';"
    "CREATE INDEX vm_slots_by_host ON vm_slots (host);"
    "CREATE INDEX vm_slots_by_owner ON vm_slots (owner);"
    "INSERT INTO vm_slots (host, owner, kind, ref, claimed_at)"
    "  SELECT CASE WHEN instr(agent_id, ':') > 0"
    "    THEN substr(agent_id, 1, instr(agent_id, ':') - 1) ELSE agent_id END,"
    "    agent_id, 'request', uuid, updated_at FROM requests"
    "  WHERE lease_expires_at IS NOT NULL AND agent_id IS NOT NULL AND agent_id <> '';"
    "PRAGMA user_version = 7;",

    /* artifacts: what a request asked to collect (newline-separated guest paths or
     * globs), and what was collected; the bytes live in the artifact store
     * (store/qsim-artifact-store.h), deleted with the row by whoever deletes it */
    "ALTER TABLE requests ADD COLUMN artifact_paths TEXT;"
    "CREATE TABLE artifacts ("
    "  request_uuid TEXT NOT NULL REFERENCES requests (uuid) ON DELETE CASCADE,"
    "  name TEXT NOT NULL CHECK (name <> '' AND length(name) <= 1024),"
    "  kind TEXT NOT NULL CHECK (kind IN ('file', 'symlink')),"
    "  size INTEGER NOT NULL CHECK (size >= 0),"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),"
    "  mode INTEGER NOT NULL CHECK (mode >= 0 AND mode <= 4095),"
    "  target TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (request_uuid, name)"
    ");"
    /* inputs: files a multipart POST /requests carried, spooled here while the body
     * streams in (the request does not exist yet: request_uuid is set in the
     * transaction that creates it), read back chunk by chunk by whichever agent
     * claims the request, on whatever host, and deleted once they are in the guest */
    "CREATE TABLE uploads ("
    "  upload_id TEXT NOT NULL CHECK (length(upload_id) = 36),"
    "  idx INTEGER NOT NULL CHECK (idx >= 0),"
    "  request_uuid TEXT REFERENCES requests (uuid) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('file', 'tar', 'tar.gz')),"
    "  guest_path TEXT NOT NULL CHECK (guest_path <> ''),"
    "  mode INTEGER NOT NULL CHECK (mode >= 0 AND mode <= 4095),"
    "  size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),"
    "  sha256 TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (upload_id, idx)"
    ");"
    "CREATE INDEX uploads_by_request ON uploads (request_uuid) WHERE request_uuid IS NOT NULL;"
    "CREATE TABLE upload_chunks ("
    "  upload_id TEXT NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL CHECK (seq >= 0),"
    "  data BLOB NOT NULL,"
    "  PRIMARY KEY (upload_id, idx, seq),"
    "  FOREIGN KEY (upload_id, idx) REFERENCES uploads (upload_id, idx) ON DELETE CASCADE"
    ");"
    "PRAGMA user_version = 8;",

    /* the request journal (GET /events) and the commands search (?q=) */
    "CREATE TABLE request_events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  uuid TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('created', 'status', 'deleted')),"
    "  status TEXT,"
    "  at INTEGER NOT NULL"
    ");"
    "CREATE TRIGGER request_events_insert AFTER INSERT ON requests BEGIN"
    "  INSERT INTO request_events (uuid, kind, status, at)"
    "    VALUES (NEW.uuid, 'created', NEW.status, NEW.updated_at);"
    "END;"
    /* the store's one UPDATE rewrites status on every change: only a real change counts */
    "CREATE TRIGGER request_events_status AFTER UPDATE OF status ON requests"
    "  WHEN OLD.status IS NOT NEW.status BEGIN"
    "  INSERT INTO request_events (uuid, kind, status, at)"
    "    VALUES (NEW.uuid, 'status', NEW.status, NEW.updated_at);"
    "END;"
    "CREATE TRIGGER request_events_delete AFTER DELETE ON requests BEGIN"
    "  INSERT INTO request_events (uuid, kind, status, at)"
    "    VALUES (OLD.uuid, 'deleted', NULL,"
    "            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));"
    "END;"
    "CREATE TRIGGER request_events_trim AFTER INSERT ON request_events BEGIN"
    "  DELETE FROM request_events WHERE id <= NEW.id - 100000;"
    "END;"
    "CREATE VIRTUAL TABLE requests_fts USING fts5(commands, content='requests',"
    "  content_rowid='id', tokenize='trigram');"
    "CREATE TRIGGER requests_fts_insert AFTER INSERT ON requests BEGIN"
    "  INSERT INTO requests_fts (rowid, commands) VALUES (NEW.id, NEW.commands);"
    "END;"
    "CREATE TRIGGER requests_fts_delete AFTER DELETE ON requests BEGIN"
    "  INSERT INTO requests_fts (requests_fts, rowid, commands)"
    "    VALUES ('delete', OLD.id, OLD.commands);"
    "END;"
    "INSERT INTO requests_fts (requests_fts) VALUES ('rebuild');"
    "PRAGMA user_version = 9;",
};

G_STATIC_ASSERT(G_N_ELEMENTS(migrations) == QSIM_SQLITE_SCHEMA_VERSION);

static gboolean
read_version(sqlite3 *db, guint *out, GError **error)
{
	gint64 version = 0;

	if (!qsim_sqlite_query_int64(db, "PRAGMA user_version", &version, error))
		return FALSE;
	if (version < 0 || version > G_MAXINT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "database has an invalid schema version %" G_GINT64_FORMAT, version);
		return FALSE;
	}
	*out = (guint)version;
	return TRUE;
}

static gboolean
check_not_newer(guint version, GError **error)
{
	if (version > QSIM_SQLITE_SCHEMA_VERSION) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "database schema version %u is newer than this qsim understands (%u); "
		            "upgrade qsim or use another database file",
		            version, (guint)QSIM_SQLITE_SCHEMA_VERSION);
		return FALSE;
	}
	return TRUE;
}

/* One step in its own IMMEDIATE transaction; another process may have done it already */
static gboolean
migrate_step(sqlite3 *db, guint target, guint *version, GError **error)
{
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(GError) local = NULL;

	tx = qsim_sqlite_transaction_begin(db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	if (!read_version(db, version, error) || !check_not_newer(*version, error))
		return FALSE;
	if (*version >= target)
		return qsim_sqlite_transaction_commit(tx, error);
	if (!qsim_sqlite_exec(db, migrations[target - 1], &local) ||
	    !qsim_sqlite_transaction_commit(tx, &local)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "migrating the database schema from version %u to %u failed: %s; "
		            "the step was rolled back and no data was deleted",
		            target - 1, target, local->message);
		return FALSE;
	}
	*version = target;
	g_info("migrated database schema to version %u", target);
	return TRUE;
}

gboolean
qsim_sqlite_schema_migrate(sqlite3 *db, guint *out_version, GError **error)
{
	guint version = 0;

	if (!read_version(db, &version, error)) {
		g_prefix_error(error, "cannot read the schema version: ");
		return FALSE;
	}
	if (!check_not_newer(version, error))
		return FALSE;
	for (guint target = version + 1; target <= QSIM_SQLITE_SCHEMA_VERSION; target++) {
		if (!migrate_step(db, target, &version, error))
			return FALSE;
	}
	*out_version = version;
	return TRUE;
}
