#!/bin/bash
# `make guest`: the guest kernel (cached outside the tree) and the initramfs images.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: guest/build.sh OUTDIR}
# One kernel build at a time per cache: parallel `make guest` runs (several
# build dirs) would otherwise unpack into the same work directory.
cache=${PETREL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/petrel}
mkdir -p "$cache/kernel"
exec 9>"$cache/kernel/.build.lock"
flock 9
"$here/kernel/build.sh" "$out"
flock -u 9
"$here/initramfs/build.sh" "$out/test-initramfs.cpio.gz"
if [ -x "$here/agent/build.sh" ]; then
	"$here/agent/build.sh" "$out"
fi
