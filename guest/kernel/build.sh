#!/bin/bash
# Build the petrel guest kernel from Debian's linux-source-6.1, cached outside
# the tree and keyed by the fragment, this script and the source tarball.
# Usage: build.sh OUTDIR   (writes OUTDIR/vmlinux and OUTDIR/bzImage)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
src=${PETREL_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
cache=${PETREL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/petrel}
jobs=${JOBS:-$(nproc)}

[ -r "$src" ] || { echo "guest kernel: $src not found; run 'make deps' (package linux-source-6.1)" >&2; exit 1; }

key=$( { cat "$here/petrel.config" "$here/build.sh"; stat -c '%s %Y' "$src"; } | sha256sum | cut -c1-16)
dir=$cache/kernel/$key
mkdir -p "$out" "$cache/kernel"
# One build of a key at a time: a second caller (another checkout, make run
# twice) waits for the first and then takes its result from the cache.
exec 9>"$cache/kernel/lock-$key"
flock 9
if [ -s "$dir/vmlinux" ] && [ -s "$dir/bzImage" ]; then
	cp -f "$dir/vmlinux" "$dir/bzImage" "$dir/config" "$out/"
	exit 0
fi

echo "guest kernel: building $key from $src (about 5 minutes on 2 cores)"
work=$cache/kernel/build-$key
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xf "$src"
ksrc=$(echo "$work"/linux-source-*)
make -C "$ksrc" -s tinyconfig
"$ksrc/scripts/kconfig/merge_config.sh" -m -O "$ksrc" "$ksrc/.config" "$here/petrel.config" >/dev/null
make -C "$ksrc" -s olddefconfig
# Every line of the fragment must have survived olddefconfig.
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qxF "$line" "$ksrc/.config" || { echo "guest kernel: fragment line not honoured: $line" >&2; missing=1; } ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		! grep -q "^$opt=" "$ksrc/.config" || { echo "guest kernel: fragment line not honoured: $line" >&2; missing=1; }
		;;
	esac
done <"$here/petrel.config"
[ "$missing" = 0 ] || exit 1
make -C "$ksrc" -s -j"$jobs" vmlinux bzImage
mkdir -p "$dir.tmp"
cp "$ksrc/vmlinux" "$dir.tmp/vmlinux"
cp "$ksrc/arch/x86/boot/bzImage" "$dir.tmp/bzImage"
cp "$ksrc/.config" "$dir.tmp/config"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
cp -f "$dir/vmlinux" "$dir/bzImage" "$dir/config" "$out/"
