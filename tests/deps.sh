#!/bin/bash
# make deps: install every Debian package that the build, the guest artifacts
# and the tests need, then prepare the testbed's kernel. Idempotent; quiet
# when everything is already there.
set -euo pipefail
pkgs=(
	# build
	build-essential pkg-config libseccomp-dev libfdt-dev libyajl-dev libcap-dev
	libnl-3-dev libnl-route-3-dev
	# lint and fuzz
	clang clang-format clang-tidy cppcheck acpica-tools
	# guest kernel and initramfs
	linux-source-6.1 bc bison flex libelf-dev libssl-dev xz-utils cpio busybox-static e2fsprogs kmod
	# testbed and peers
	qemu-system-x86 qemu-utils iproute2 socat procps python3 dpkg-dev
	# podman and containerd drive petrel (tests/runtime): Debian's podman 4.3 with
	# its netavark network stack, and containerd 1.6 with the runc v2 shim
	podman conmon crun runc golang-github-containers-common netavark aardvark-dns iptables
	fuse-overlayfs slirp4netns containerd
)
# The guest agent links yajl statically, built from Debian's yajl source package.
src_list=/etc/apt/sources.list.d/petrel-src.sources
need_update=0
if [ ! -e "$src_list" ]; then
	[ "$(id -u)" = 0 ] || { echo "deps: run as root (apt needs it)" >&2; exit 1; }
	printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$src_list"
	need_update=1
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ "$need_update" = 1 ]; then
	[ ${#missing[@]} -eq 0 ] || echo "deps: installing ${missing[*]}"
	[ "$(id -u)" = 0 ] || { echo "deps: run as root (apt-get install needs it)" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	[ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The testbed's outer kernel comes from Debian's linux-image package (downloaded, not installed).
"$(dirname "$0")/testbed/setup" >/dev/null
"$(dirname "$0")/lib/cloud-kernel" >/dev/null
