#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, from Debian's postgresql-15 package.
#
#   pg-server.sh start DIR [WATCH_PID]  initdb (first time), start on 127.0.0.1 on a free port
#                                       (the same port again on a restart), create database
#                                       "qsim"; prints its URL. With WATCH_PID, a watchdog
#                                       stops the server and removes DIR once that process is
#                                       gone, so a test that aborts never leaves a server.
#   pg-server.sh stop DIR               pg_ctl stop -m fast (the data stays: start again)
#   pg-server.sh destroy DIR            stop, then remove DIR
#
# initdb refuses root: as root everything runs as the `postgres` system user the package
# creates (runuser). The unix socket lives in DIR, never in /run/postgresql.
# /usr/local/bin/pg_ctl may be something else: the absolute Debian paths are used.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|destroy DIR [WATCH_PID]" >&2
    exit 2
fi
if [ ! -x "$BIN/initdb" ]; then
    echo "pg-server: $BIN/initdb missing: install the postgresql package (data/install-deps.sh)" >&2
    exit 3
fi

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u postgres --)
fi

data="$dir/data"

pg_stop() {
    if [ -f "$data/postmaster.pid" ]; then
        "${as_pg[@]}" "$BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
}

case "$cmd" in
start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
    fi
    chmod 0700 "$dir"
    # the caller's directory (a build tree) may be closed to the postgres user
    cd "$dir"
    if [ ! -f "$data/PG_VERSION" ]; then
        "${as_pg[@]}" "$BIN/initdb" -D "$data" -U qsim -A trust -E UTF8 --locale=C \
            --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if [ ! -f "$dir/port" ]; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' \
            >"$dir/port"
    fi
    port=$(cat "$dir/port")
    # fsync off (-F): a test database need not survive a power cut
    "${as_pg[@]}" "$BIN/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
        -o "-F -h 127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    if ! "${as_pg[@]}" "$BIN/psql" -h "$dir" -p "$port" -U qsim -d postgres -tAq \
        -c "SELECT 1 FROM pg_database WHERE datname = 'qsim'" | grep -q 1; then
        "${as_pg[@]}" "$BIN/createdb" -h "$dir" -p "$port" -U qsim qsim
    fi
    if [ -n "${3:-}" ] && [ ! -f "$dir/watchdog" ]; then
        watch=$3
        # setsid + closed descriptors: the caller's pipes must not wait for the watchdog
        setsid bash -c '
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            "$0" destroy "$2"' "$0" "$watch" "$dir" </dev/null >/dev/null 2>&1 &
        echo $! >"$dir/watchdog"
    fi
    echo "postgresql://qsim@127.0.0.1:$port/qsim"
    ;;
stop)
    cd /
    pg_stop
    ;;
destroy)
    cd /
    pg_stop
    rm -rf "$dir"
    ;;
*)
    echo "pg-server: unknown command $cmd" >&2
    exit 2
    ;;
esac
