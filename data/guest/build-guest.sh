#!/bin/bash
# Builds qsim's bundled tiny guest from Debian 12 packages:
#
#   tiny-vmlinuz      the Debian cloud kernel (apt-get download, never installed)
#   tiny-vmlinux      the same kernel uncompressed, for QEMU's faster PVH boot
#   tiny-initrd.img   busybox + virtio/ACPI modules; mounts /dev/vda and switch_roots
#   tiny.qcow2        ext4 root: busybox, dropbear, sftp-server, made with mke2fs -d
#   tiny-key{,.pub}   ed25519 test keypair (OpenSSH format, readable by libssh)
#   tiny-hostkey      the guest's dropbear host key; tiny-hostkey.pub its public half
#
# Usage: build-guest.sh [--force] [--cache-dir DIR] [IMAGES_DIR]
#
# IMAGES_DIR defaults to <source root>/vm_images, the cache (downloaded .debs, the
# extracted kernel) to data/guest/cache. The build is idempotent: it reuses cached
# packages and the keys, and does nothing when the stamp (a hash over this script,
# the guest files, the package versions and the keys) matches the finished image.
# Needs no root: no loop mounts, no mknod, no chown.
set -euo pipefail
umask 022
export LC_ALL=C

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script_path="$script_dir/$(basename "${BASH_SOURCE[0]}")"
source_root=$(cd "$script_dir/../.." && pwd)

# Room for a 200 MB upload (tests/daemon/test-daemon-big.c). The image is sparse:
# the unused space costs neither qcow2 bytes on disk nor boot time.
disk_size=320M
# As many inodes as the 64M image had: their tables are zeroed at build time (see
# mke2fs below), so more inodes would only add zeros.
disk_inodes=16384
kernel_meta=linux-image-cloud-amd64
# The modules the guest needs; their dependencies are resolved with modprobe.
# squashfs: a VM config's DATA_DISK (read-only, mounted at /data by rcS).
guest_modules=(virtio_pci virtio_blk virtio_net virtio-rng button evdev squashfs)
initramfs_applets=(sh mount insmod usleep switch_root poweroff sync cat echo)

force=0
cache_dir="$script_dir/cache"
images_dir=""

log() {
	echo "guest-image: $*"
}

die() {
	echo "guest-image: error: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 [--force] [--cache-dir DIR] [IMAGES_DIR]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=1 ;;
	--cache-dir)
		[ $# -ge 2 ] || usage
		cache_dir=$2
		shift
		;;
	-h | --help) usage ;;
	-*) usage ;;
	*)
		[ -z "$images_dir" ] || usage
		images_dir=$1
		;;
	esac
	shift
done
[ -n "$images_dir" ] || images_dir="$source_root/vm_images"

for tool in apt-get apt-cache dpkg-deb dpkg-query depmod modprobe mke2fs qemu-img cpio \
	ssh-keygen dropbearkey ldd sha256sum flock; do
	command -v "$tool" >/dev/null || die "$tool not found (install busybox-static dropbear-bin e2fsprogs cpio kmod lz4 qemu-utils openssh-client)"
done
for pkg in busybox-static dropbear-bin; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' ||
		die "package $pkg is not installed"
done

busybox_bin=/bin/busybox
dropbear_bin=/usr/sbin/dropbear
sftp_bin=/usr/lib/openssh/sftp-server
[ -x "$busybox_bin" ] || die "$busybox_bin missing"
# The initramfs has no libraries, so busybox must be the static build.
if ldd "$busybox_bin" >/dev/null 2>&1; then
	die "$busybox_bin is dynamically linked; install busybox-static"
fi
[ -x "$dropbear_bin" ] || die "$dropbear_bin missing"
[ -x "$sftp_bin" ] || {
	log "no $sftp_bin (openssh-sftp-server): the guest will have no SFTP"
	sftp_bin=""
}

mkdir -p "$images_dir" "$cache_dir"
images_dir=$(cd "$images_dir" && pwd)
cache_dir=$(cd "$cache_dir" && pwd)

# One build per images dir at a time: parallel `meson compile` runs share it.
exec 9>"$images_dir/.tiny-build.lock"
flock 9

work=$(mktemp -d "$images_dir/.tiny-work.XXXXXX")
cleanup() {
	rm -rf "$work"
}
trap cleanup EXIT

# --- keys -------------------------------------------------------------------
# Kept across rebuilds so that configs and known_hosts entries stay valid.
if [ ! -s "$images_dir/tiny-key" ] || [ ! -s "$images_dir/tiny-key.pub" ]; then
	log "generating test keypair tiny-key"
	rm -f "$images_dir/tiny-key" "$images_dir/tiny-key.pub"
	ssh-keygen -q -t ed25519 -N '' -C qsim-tiny-test -f "$images_dir/tiny-key"
fi
chmod 600 "$images_dir/tiny-key"
if [ ! -s "$images_dir/tiny-hostkey" ]; then
	log "generating guest host key tiny-hostkey"
	rm -f "$images_dir/tiny-hostkey"
	dropbearkey -t ed25519 -f "$images_dir/tiny-hostkey" >/dev/null 2>&1
fi
chmod 600 "$images_dir/tiny-hostkey"
dropbearkey -y -f "$images_dir/tiny-hostkey" 2>/dev/null | grep '^ssh-ed25519 ' |
	awk '{ print $1, $2, "qsim-tiny-host" }' >"$images_dir/tiny-hostkey.pub"
[ -s "$images_dir/tiny-hostkey.pub" ] || die "cannot read the host key back"

# --- kernel package ---------------------------------------------------------
# Resolve the real image package (e.g. linux-image-6.1.0-56-cloud-amd64) behind
# the meta package, download it once, and fall back to the newest cached .deb
# when apt has no lists (offline rebuilds).
newest_cached_kernel() {
	find "$cache_dir" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*.deb' | sort -V | tail -n 1
}
kernel_pkg=$(apt-cache depends "$kernel_meta" 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }') || true
kernel_ver=""
[ -z "$kernel_pkg" ] || kernel_ver=$(apt-cache show --no-all-versions "$kernel_pkg" 2>/dev/null |
	awk '$1 == "Version:" { print $2; exit }') || true
kernel_deb=""
if [ -n "$kernel_ver" ]; then
	kernel_deb="$cache_dir/${kernel_pkg}_${kernel_ver//:/%3a}_amd64.deb"
	if [ ! -s "$kernel_deb" ]; then
		log "downloading $kernel_pkg $kernel_ver"
		apt_opts=()
		# As root, apt drops to _apt, which cannot write to the cache dir.
		[ "$(id -u)" != 0 ] || apt_opts=(-o APT::Sandbox::User=root)
		dl=""
		if (cd "$work" && apt-get -q "${apt_opts[@]}" download "$kernel_pkg=$kernel_ver"); then
			dl=$(find "$work" -maxdepth 1 -name "${kernel_pkg}_*.deb" | head -n 1)
		fi
		if [ -n "$dl" ]; then
			mv "$dl" "$kernel_deb"
		else
			# Stale apt lists name versions the archive has dropped.
			kernel_deb=$(newest_cached_kernel)
			[ -n "$kernel_deb" ] ||
				die "apt-get download $kernel_pkg=$kernel_ver failed (try apt-get update)"
			log "download failed; using cached $(basename "$kernel_deb")"
		fi
	fi
else
	kernel_deb=$(newest_cached_kernel)
	[ -n "$kernel_deb" ] || die "cannot resolve $kernel_meta (run apt-get update) and no cached kernel .deb"
	log "apt cannot resolve $kernel_meta; using cached $(basename "$kernel_deb")"
fi

# --- stamp ------------------------------------------------------------------
# Everything that shapes the outputs: hashing the host binaries we copy covers
# package upgrades of busybox, dropbear, their libraries and sftp-server.
guest_libs() {
	ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u
}
copied_bins=("$busybox_bin" "$dropbear_bin")
[ -z "$sftp_bin" ] || copied_bins+=("$sftp_bin")
mapfile -t libs < <(guest_libs "$dropbear_bin" ${sftp_bin:+"$sftp_bin"})
stamp=$(
	{
		echo "disk_size=$disk_size inodes=$disk_inodes modules=${guest_modules[*]} applets=${initramfs_applets[*]}"
		basename "$kernel_deb"
		sha256sum "$script_path"
		(cd "$script_dir" && find initramfs rootfs -type f -print0 | sort -z | xargs -0 sha256sum)
		sha256sum "${copied_bins[@]}"
		for lib in "${libs[@]}"; do sha256sum "$(readlink -f "$lib")"; done
		sha256sum "$images_dir/tiny-key.pub" "$images_dir/tiny-hostkey"
	} | sha256sum | cut -d' ' -f1
)
outputs=(tiny.qcow2 tiny-vmlinuz tiny-vmlinux tiny-initrd.img tiny-key tiny-key.pub tiny-hostkey)
up_to_date=1
for out in "${outputs[@]}"; do
	[ -s "$images_dir/$out" ] || up_to_date=0
done
if [ "$force" = 0 ] && [ "$up_to_date" = 1 ] &&
	[ "$(cat "$images_dir/.tiny-stamp" 2>/dev/null)" = "$stamp" ]; then
	log "up to date in $images_dir"
	exit 0
fi

# --- kernel and modules -----------------------------------------------------
kernel_dir="$cache_dir/$(basename "$kernel_deb" .deb)"
if [ ! -e "$kernel_dir/.extracted" ]; then
	log "extracting $(basename "$kernel_deb")"
	rm -rf "$kernel_dir" "$kernel_dir.tmp"
	dpkg-deb -x "$kernel_deb" "$kernel_dir.tmp"
	mv "$kernel_dir.tmp" "$kernel_dir"
	touch "$kernel_dir/.extracted"
fi
vmlinuz=$(find "$kernel_dir/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
[ -n "$vmlinuz" ] || die "no vmlinuz in $kernel_deb"
kver=${vmlinuz##*/vmlinuz-}
# The .deb ships no modules.dep. kmod's depmod only acts as depmod under that
# name, and -b wants an absolute path.
if [ ! -s "$kernel_dir/lib/modules/$kver/modules.dep" ]; then
	log "running depmod for $kver"
	depmod -b "$kernel_dir" "$kver"
fi

# Finds the compressed payload in a bzImage by its magic and unpacks it. The
# decompressors stop at the end of the stream and complain about the trailing
# bytes, so success is judged by the result: an ELF file of plausible size.
extract_vmlinux() { # bzImage dst
	local magic tool off
	for magic in '\x02\x21\x4c\x18:lz4 -dc' '\x28\xb5\x2f\xfd:zstd -dcq' \
		'\xfd\x37\x7a\x58\x5a\x00:xz -dcq' '\x1f\x8b\x08:gzip -dcq'; do
		tool=${magic#*:}
		off=$(LC_ALL=C grep -aboP "${magic%%:*}" "$1" | head -n 1 | cut -d: -f1) || true
		[ -n "$off" ] || continue
		command -v "${tool%% *}" >/dev/null || die "$1 needs ${tool%% *} to unpack (install it)"
		# shellcheck disable=SC2086 # $tool is a command with its options
		tail -c "+$((off + 1))" "$1" | $tool >"$2" 2>/dev/null || true
		if [ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" = '177ELF' ] &&
			[ "$(stat -c %s "$2")" -gt 4000000 ]; then
			return 0
		fi
	done
	die "cannot unpack the kernel in $1"
}

# --- initramfs --------------------------------------------------------------
log "building initramfs"
ird="$work/initramfs"
mkdir -p "$ird/bin" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/newroot" "$ird/etc" "$ird/lib/modules"
cp "$busybox_bin" "$ird/bin/busybox"
for applet in "${initramfs_applets[@]}"; do
	ln -s busybox "$ird/bin/$applet"
done
install -m 0755 "$script_dir/initramfs/init" "$ird/init"
# Debian signs its modules. The kernel does not enforce signatures here, but it
# still checks each one (an RSA verify under TCG, ~10 ms per module), so the
# copies lose theirs: [module][signature][12-byte info, big-endian length last]
# ["~Module signature appended~\n"].
strip_module_signature() { # src dst
	local magic='~Module signature appended~' size siglen
	if [ "$(tail -c 28 "$1" | head -c 27)" != "$magic" ]; then
		cp "$1" "$2"
		return
	fi
	size=$(stat -c %s "$1")
	siglen=$(tail -c 32 "$1" | head -c 4 | od -An -tu1 |
		awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
	if [ "$siglen" -le 0 ] || [ "$siglen" -ge "$size" ]; then
		die "bad signature length in $1"
	fi
	head -c "$((size - 40 - siglen))" "$1" >"$2"
}
: >"$ird/etc/modules.order"
for mod in "${guest_modules[@]}"; do
	modprobe -d "$kernel_dir" -S "$kver" --show-depends "$mod" |
		awk '$1 == "insmod" { print $2 }' || die "cannot resolve module $mod"
done | while read -r ko; do
	name=$(basename "$ko")
	if ! grep -qx "$name" "$ird/etc/modules.order"; then
		strip_module_signature "$ko" "$ird/lib/modules/$name"
		echo "$name" >>"$ird/etc/modules.order"
	fi
done
[ -s "$ird/etc/modules.order" ] || die "no modules selected"

# The archive stays uncompressed: gunzip under TCG cost about 0.2 s of boot
# time, more than loading the extra 1.4 MB through fw_cfg.
#
# A newc entry for the character device /dev/console (5,1), written by hand so
# that the build needs no mknod (and so no root). The kernel unpacks
# concatenated cpio archives in order.
newc_entry() { # name mode rdevmajor rdevminor ino
	local name=$1 namesize=$((${#1} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$5" "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
	printf '%s\0' "$name"
	# header (110 bytes) + name, padded to a multiple of 4
	local pad=$(((4 - (110 + namesize) % 4) % 4))
	head -c "$pad" /dev/zero
}
(
	cd "$ird"
	find . -mindepth 1 | sed 's|^\./||' | sort | cpio --quiet -o -H newc -R 0:0 --reproducible
	newc_entry dev/console $((8#020600)) 5 1 $((0x7ffffff0))
	newc_entry TRAILER!!! 0 0 0 0
) >"$work/tiny-initrd.img"

# --- root file system -------------------------------------------------------
log "staging root file system"
root="$work/root"
mkdir -p "$root"
for d in bin sbin usr/bin usr/sbin usr/lib etc/dropbear dev proc sys run tmp \
	root/.ssh var/log var/tmp home mnt data; do
	mkdir -p "$root/$d"
done
ln -s ../run "$root/var/run"
cp "$busybox_bin" "$root/bin/busybox"
"$busybox_bin" --list-full | while read -r applet; do
	[ "$applet" != bin/busybox ] || continue
	mkdir -p "$root/$(dirname "$applet")"
	ln -sf /bin/busybox "$root/$applet"
done
# busybox init handles poweroff/reboot requests and reaps orphans.
[ -L "$root/sbin/init" ] || die "busybox has no init applet"

cp "$dropbear_bin" "$root/usr/sbin/dropbear"
# dropbear looks for the SFTP subsystem here (compiled-in path).
[ -z "$sftp_bin" ] || cp "$sftp_bin" "$root/usr/lib/sftp-server"
for lib in "${libs[@]}"; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

cp -R "$script_dir/rootfs/." "$root/"
# Modes come from here, not from the checkout's umask.
(cd "$script_dir/rootfs" && find . -mindepth 1) | while read -r p; do
	if [ -d "$root/$p" ]; then chmod 0755 "$root/$p"; else chmod 0644 "$root/$p"; fi
done
install -m 0600 "$images_dir/tiny-hostkey" "$root/etc/dropbear/dropbear_ed25519_host_key"
install -m 0600 "$images_dir/tiny-key.pub" "$root/root/.ssh/authorized_keys"
# dropbear refuses authorized_keys under group/world-writable directories.
chmod 0700 "$root/root" "$root/root/.ssh"
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 0755 "$root/etc/init.d/rcS" "$root/etc/acpi/PWRF/00000080"

log "making ext4 image ($disk_size)"
truncate -s "$disk_size" "$work/root.img"
# Eager inode table and journal init: otherwise the guest's ext4lazyinit thread
# zeroes them at every boot, costing TCG time and overlay space.
mke2fs -q -F -t ext4 -L qsim-tiny -m 0 -N "$disk_inodes" \
	-E lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0 \
	-d "$root" "$work/root.img"
if [ "$(id -u)" != 0 ]; then
	command -v debugfs >/dev/null || die "debugfs not found (e2fsprogs)"
	# mke2fs -d copies the builder's uid/gid; sshd and root want root-owned files.
	(cd "$root" && find . -mindepth 1 | sed 's|^\.||') |
		awk '{ printf "sif \"%s\" uid 0\nsif \"%s\" gid 0\n", $0, $0 }' >"$work/chown.debugfs"
	debugfs -w -f "$work/chown.debugfs" "$work/root.img" >/dev/null 2>&1 ||
		die "debugfs could not set root ownership"
fi
qemu-img convert -q -f raw -O qcow2 "$work/root.img" "$work/tiny.qcow2"
cp "$vmlinuz" "$work/tiny-vmlinuz"
# The bzImage's own decompressor and relocation run slowly under TCG. The
# kernel has CONFIG_PVH, so QEMU can load the uncompressed ELF directly
# (-kernel tiny-vmlinux): same kernel, less boot time, more disk (~50 MB).
extract_vmlinux "$vmlinuz" "$work/tiny-vmlinux"

# Replace the outputs by rename so a VM starting meanwhile sees old or new files,
# never a half-written one; the stamp goes last.
for out in tiny.qcow2 tiny-vmlinuz tiny-vmlinux tiny-initrd.img; do
	chmod 0644 "$work/$out"
	mv -f "$work/$out" "$images_dir/$out"
done
echo "$stamp" >"$images_dir/.tiny-stamp"
log "done: $images_dir (kernel $kver)"
for out in tiny.qcow2 tiny-vmlinuz tiny-vmlinux tiny-initrd.img; do
	log "  $(du -h "$images_dir/$out" | cut -f1)	$out"
done
