#!/usr/bin/env bash
# Installs, from Debian 12 packages only, everything qsim needs to build, to build the tiny
# test guest, to run, and to run its test suite. Safe to run again: apt-get skips what is there.
set -euo pipefail

packages=(
    # build
    meson ninja-build pkg-config gcc gettext
    libglib2.0-dev libjson-glib-dev libsoup-3.0-dev libsqlite3-dev libssh-dev libpq-dev
    # run
    qemu-system-x86 qemu-utils
    # NETWORK=outbound: pasta gives each VM's namespace the host's outbound path
    passt iproute2
    # the tiny guest image (data/guest/build-guest.sh)
    busybox-static dropbear-bin openssh-client openssh-sftp-server e2fsprogs kmod cpio lz4
    # tests/daemon/test-daemon-big.c: mksquashfs makes a DATA_DISK with a million entries
    # from a pseudo-file list in seconds, without creating a million host files
    squashfs-tools
    # tests (clang and its runtime for the libFuzzer harnesses in tests/fuzz)
    curl python3 locales clang libclang-rt-14-dev
    # tests/e2e/test-metrics-*.sh: a real Prometheus server and promtool (issue 15)
    prometheus
    # the PostgreSQL store backend's tests start a throwaway server (tests/pg/pg-server.sh)
    postgresql
    # tests/ui: the dashboard's browser tests drive Debian's chromium headless (issue 17)
    chromium
)

# tests/ui installs playwright-core and axe-core with npm (package-lock.json); a machine
# that already has node (e.g. from NodeSource) keeps it
if ! command -v node >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

if [ "${1:-}" = "--bench" ]; then
    packages+=(wrk python3-fastapi python3-uvicorn)
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    as_root=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    "${as_root[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
