#!/bin/bash
# Boots the built tiny guest with plain QEMU and checks what qsim relies on,
# printing TAP: the readiness marker, separate stdout/stderr and exit status,
# the utilities tests use, a 20 MB byte-exact transfer, SFTP, a pty, QMP
# system_powerdown, the qsim.noacpi=1 and qsim.nossh=1 variants, poweroff from
# inside the guest, and an unchanged base image.
#
# Usage: check-guest.sh [IMAGES_DIR]   (default: <source root>/vm_images)
# The kernel, initrd, command line, CPU model and memory come from
# vm_configs/tiny.conf (or $QSIM_TINY_CONF).
#
# Skips (TAP "1..0 # SKIP") when the image has not been built. Every QEMU it
# starts is killed by PID and its temp dir removed, whatever happens.
set -uo pipefail
export LC_ALL=C

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images_dir=${1:-"$script_dir/../../vm_images"}
conf=${QSIM_TINY_CONF:-"$script_dir/../../vm_configs/tiny.conf"}
qemu=${QSIM_QEMU:-qemu-system-x86_64}
qemu_img=${QSIM_QEMU_IMG:-qemu-img}
# Generous bounds: the machine is shared and may run this under load.
boot_timeout=180
exit_timeout=60

# The committed config is the source of truth for the boot argv. Only the
# simple KEY=value / KEY="value" forms it uses are understood here.
conf_get() { # key default
	local v
	v=$(sed -n "s/^$1=//p" "$conf" | tail -n 1)
	v=${v%\"}
	v=${v#\"}
	printf '%s' "${v:-$2}"
}
[ -r "$conf" ] || {
	echo "Bail out! cannot read $conf"
	exit 1
}
kernel=$(conf_get KERNEL tiny-vmlinuz)
initrd=$(conf_get INITRD tiny-initrd.img)
append=$(conf_get APPEND "console=ttyS0 quiet root=/dev/vda rw")
cpu_model=$(conf_get CPU_MODEL "qemu64,+rdrand")
memory=$(conf_get MEMORY 256M)
tb_size=$(conf_get TB_SIZE 64)

for f in tiny.qcow2 "$kernel" tiny-vmlinuz "$initrd" tiny-key; do
	if [ ! -s "$images_dir/$f" ]; then
		echo "1..0 # SKIP $images_dir/$f missing: run 'meson compile -C build guest-image'"
		exit 0
	fi
done
images_dir=$(cd "$images_dir" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qsim-check-guest.XXXXXX")
qpid=""
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -KILL "$qpid" 2>/dev/null
		wait "$qpid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

n=0
failures=0
ok() { # condition-status description
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failures=$((failures + 1))
	fi
}
diag() {
	sed 's/^/# /' "$@"
}

port=""
# Starts QEMU on a fresh overlay with extra kernel flags; QMP and the serial
# console go through FIFOs/files in $tmp so no socat or python is needed.
start_vm() { # extra-append [kernel]
	local try boot_kernel=${2:-$kernel}
	rm -f "$tmp/ov.qcow2" "$tmp/serial.log" "$tmp/qemu.err" "$tmp/qmp.in" "$tmp/qmp.out"
	"$qemu_img" create -q -f qcow2 -b "$images_dir/tiny.qcow2" -F qcow2 "$tmp/ov.qcow2" || return 1
	mkfifo "$tmp/qmp.in" "$tmp/qmp.out"
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		"$qemu" -machine q35 -m "$memory" -smp 1 -cpu "$cpu_model" -accel "tcg,tb-size=$tb_size" \
			-nodefaults -no-user-config -display none \
			-kernel "$images_dir/$boot_kernel" -initrd "$images_dir/$initrd" \
			-append "$append $1" \
			-drive "file=$tmp/ov.qcow2,if=virtio,format=qcow2" \
			-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" \
			-device virtio-net-pci,netdev=n0 -device virtio-rng-pci \
			-serial "file:$tmp/serial.log" \
			-chardev "pipe,id=qmp0,path=$tmp/qmp" -mon chardev=qmp0,mode=control \
			</dev/null 2>"$tmp/qemu.err" &
		qpid=$!
		# Read-write opens of a FIFO never block, even if QEMU died before its own.
		exec {qmp_out}<>"$tmp/qmp.out" {qmp_in}<>"$tmp/qmp.in"
		if qmp_read_until '"QMP"' && qmp_cmd qmp_capabilities; then
			return 0
		fi
		exec {qmp_out}<&- {qmp_in}>&-
		wait "$qpid" 2>/dev/null
		qpid=""
		grep -q 'host forwarding' "$tmp/qemu.err" || break
		echo "# port $port taken, retrying ($try)"
	done
	diag "$tmp/qemu.err"
	return 1
}

# Reads QMP lines until one contains the pattern; fails on an error reply, when
# QEMU is gone, or after 30 s. Whole lines only: QEMU writes each message at once.
qmp_read_until() { # pattern
	local line deadline=$((SECONDS + 30))
	while [ $SECONDS -lt $deadline ]; do
		if IFS= read -r -t 1 line <&"$qmp_out"; then
			[[ "$line" != *"$1"* ]] || return 0
			if [[ "$line" == *'"error"'* ]]; then
				echo "# QMP: $line"
				return 1
			fi
		elif ! kill -0 "$qpid" 2>/dev/null; then
			return 1
		fi
	done
	return 1
}

qmp_cmd() { # command
	printf '{"execute": "%s"}\n' "$1" >&"$qmp_in" && qmp_read_until '"return"'
}

wait_marker() { # pattern
	local deadline=$((SECONDS + boot_timeout))
	while ! grep -q "$1" "$tmp/serial.log" 2>/dev/null; do
		kill -0 "$qpid" 2>/dev/null || return 1
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# Waits for QEMU to end by itself; kills it past the bound. Sets qemu_status.
wait_exit() {
	local deadline=$((SECONDS + exit_timeout))
	while kill -0 "$qpid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		sleep 0.1
	done
	if kill -0 "$qpid" 2>/dev/null; then
		kill -KILL "$qpid"
		wait "$qpid" 2>/dev/null
		qemu_status=timeout
	else
		wait "$qpid"
		qemu_status=$?
	fi
	qpid=""
	exec {qmp_out}<&- {qmp_in}>&-
}

stop_vm() {
	[ -n "$qpid" ] || return 0
	qmp_cmd quit >/dev/null 2>&1
	wait_exit
}

# gssh [SSH_OPTION... --] COMMAND
gssh() {
	local opts=()
	if [[ "$1" == -* ]]; then
		while [ "$1" != -- ]; do
			opts+=("$1")
			shift
		done
		shift
	fi
	ssh -F /dev/null -i "$images_dir/tiny-key" -p "$port" -o IdentitiesOnly=yes -o BatchMode=yes \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o ConnectTimeout=30 "${opts[@]}" root@127.0.0.1 "$@"
}

base_sum=$(sha256sum "$images_dir/tiny.qcow2" | cut -d' ' -f1)

# --- the default guest ---------------------------------------------------------
start_vm ""
ok $? "QEMU starts and answers QMP"
wait_marker '^QSIM-READY'
ok $? "default guest prints QSIM-READY on ttyS0"

gssh 'echo out; echo err >&2; exit 3' >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 3 ] && [ "$(cat "$tmp/out")" = out ] && [ "$(cat "$tmp/err")" = err ]
ok $? "sh -c keeps stdout, stderr and the exit status apart (rc=$rc)"

# shellcheck disable=SC2016 # expanded by the guest's shell
gssh 'for u in sha256sum head dd cat date sleep hostname sh; do command -v $u >/dev/null || exit 1; done
	test -c /dev/urandom && test -c /dev/null && touch /tmp/w /root/w && hostname' >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 0 ] && [ "$(cat "$tmp/out")" = tiny ]
ok $? "utilities, /dev/urandom, writable /tmp and /root, hostname tiny"
[ "$rc" = 0 ] || diag "$tmp/out"

# 20 MiB of random bytes, checked against the sum the guest computes.
gssh 'dd if=/dev/urandom of=/tmp/blob bs=1M count=20 2>/dev/null && sha256sum /tmp/blob | cut -d" " -f1 >&2 && cat /tmp/blob' \
	>"$tmp/blob" 2>"$tmp/blob.sum"
rc=$?
[ "$rc" = 0 ] && [ "$(stat -c %s "$tmp/blob")" = 20971520 ] &&
	[ "$(sha256sum <"$tmp/blob" | cut -d' ' -f1)" = "$(cat "$tmp/blob.sum")" ]
ok $? "20 MiB of stdout arrive byte-exact"
rm -f "$tmp/blob"

printf 'ls /usr/lib\n' >"$tmp/sftp.batch"
sftp -F /dev/null -i "$images_dir/tiny-key" -P "$port" -o IdentitiesOnly=yes -o BatchMode=yes \
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	-b "$tmp/sftp.batch" root@127.0.0.1 >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q sftp-server "$tmp/out"
ok $? "SFTP works"

gssh -tt -- 'tty' >"$tmp/out" 2>&1 </dev/null
grep -q '^/dev/pts/' "$tmp/out"
ok $? "a pty session gets /dev/pts"

[ -n "$(gssh 'pidof acpid')" ]
ok $? "acpid runs by default"

qmp_cmd system_powerdown
ok $? "QMP system_powerdown accepted"
wait_exit
[ "$qemu_status" = 0 ] && grep -q 'power button pressed' "$tmp/serial.log"
ok $? "the power button powers the guest off (QEMU status $qemu_status)"

# --- qsim.noacpi=1 ----------------------------------------------------------------
# This one boots the compressed bzImage, so both kernel files are covered.
start_vm "qsim.noacpi=1" tiny-vmlinuz && wait_marker '^QSIM-READY'
ok $? "qsim.noacpi=1 guest boots tiny-vmlinuz to QSIM-READY"
[ -z "$(gssh 'pidof acpid')" ]
ok $? "qsim.noacpi=1 runs no acpid"
qmp_cmd system_powerdown
# The guest must still answer after the button: run a command through it.
[ "$(gssh 'sleep 2; echo alive')" = alive ] && kill -0 "$qpid" 2>/dev/null
ok $? "qsim.noacpi=1 ignores system_powerdown"
gssh 'poweroff' >/dev/null 2>&1
wait_exit
[ "$qemu_status" = 0 ]
ok $? "poweroff inside the guest ends QEMU cleanly (status $qemu_status)"

# --- qsim.nossh=1 -----------------------------------------------------------------
start_vm "qsim.nossh=1" && wait_marker 'ssh disabled by qsim.nossh=1'
ok $? "qsim.nossh=1 guest boots and says ssh is disabled"
! grep -q 'QSIM-READY' "$tmp/serial.log"
ok $? "qsim.nossh=1 prints no QSIM-READY"
! gssh -o ConnectTimeout=5 -- true >/dev/null 2>&1
ok $? "qsim.nossh=1 accepts no SSH login"
stop_vm
[ "$qemu_status" = 0 ]
ok $? "QMP quit ends QEMU"

# --- qsim.probe=1: qsimd's accelerator probe ---------------------------------------
# The probe boots kernel and initrd alone (no disk, no network) and waits for this line.
probe_out=$(timeout 60 "$qemu" -machine q35 -m 128M -smp 1 -cpu "$cpu_model" -accel tcg \
	-nodefaults -no-user-config -display none -no-reboot \
	-kernel "$images_dir/$kernel" -initrd "$images_dir/$initrd" \
	-append "console=ttyS0 quiet panic=-1 qsim.probe=1" -serial stdio </dev/null 2>&1)
probe_status=$?
printf '%s\n' "$probe_out" | grep -q '^QSIM-PROBE-OK' && [ "$probe_status" = 0 ]
ok $? "qsim.probe=1 prints QSIM-PROBE-OK and powers off (status $probe_status)"

[ "$(sha256sum "$images_dir/tiny.qcow2" | cut -d' ' -f1)" = "$base_sum" ]
ok $? "the base image is unchanged"

echo "1..$n"
[ "$failures" = 0 ]
