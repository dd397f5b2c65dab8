#!/bin/bash
# `make guest`: the guest kernel (cached outside the tree) and the initramfs images.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: guest/build.sh OUTDIR}
"$here/kernel/build.sh" "$out"
"$here/initramfs/build.sh" "$out/test-initramfs.cpio.gz"
if [ -x "$here/agent/build.sh" ]; then
	"$here/agent/build.sh" "$out"
fi
