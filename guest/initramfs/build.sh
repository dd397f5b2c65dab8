#!/bin/bash
# Build the busybox test initramfs: build/guest/test-initramfs.cpio.gz
# Usage: build.sh OUTFILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTFILE}
bb=/bin/busybox
[ -x "$bb" ] || { echo "test initramfs: $bb not found; run 'make deps' (package busybox-static)" >&2; exit 1; }
# Up to date when newer than everything it is made of.
[ -n "$(find "$out" -newer "$here/init" -newer "$here/build.sh" -newer "$bb" 2>/dev/null)" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,sbin,dev,proc,sys,tmp,run,mnt,etc}
cp "$bb" "$tmp/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$tmp/bin/$applet"
done
cp "$here/init" "$tmp/init"
chmod 0755 "$tmp/init"
mkdir -p "$(dirname "$out")"
(cd "$tmp" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 >"$out.tmp"
mv "$out.tmp" "$out"
