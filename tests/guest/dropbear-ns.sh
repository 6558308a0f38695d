#!/bin/sh
# Runs dropbear for the guest tests. It is started under `unshare --mount`, so the
# bind mount below exists only in this private mount namespace: sshd sees the
# test's temporary directory as root's home (and its authorized_keys) while
# the host's /root is never read or written. Arguments are fixed by the test.
set -eu
home=$1
hostkey=$2
port=$3
mount --bind "$home" /root
exec dropbear -F -E -s -m -p "127.0.0.1:$port" -r "$hostkey" -P "$home/dropbear.pid"
