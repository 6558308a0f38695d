#!/bin/sh
# Runs dropbear for the guest tests. It is started under `unshare --mount`, so
# the bind mounts below exist only in this private mount namespace: sshd sees
# the test's temporary directory as root's home (and its authorized_keys) and
# a test-made shadow file with a known test password, while the host's /root
# and /etc/shadow are never read or written. Arguments are fixed by the test.
set -eu
home=$1
hostkey=$2
port=$3
shadow=$4
mount --bind "$home" /root
mount --bind "$shadow" /etc/shadow
# optional: the SFTP server dropbear runs (its compiled-in path), a test-made wrapper
if [ -n "${5:-}" ]; then
	mount --bind "$5" /usr/lib/sftp-server
fi
exec dropbear -F -E -m -p "127.0.0.1:$port" -r "$hostkey" -P "$home/dropbear.pid"
