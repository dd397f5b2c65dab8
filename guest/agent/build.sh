#!/bin/bash
# Builds the guest agent and its initramfs, and the host-side test client:
#   OUTDIR/petrel-agent                 static, the guest's PID 1
#   OUTDIR/agent-initramfs.cpio.gz      /init = petrel-agent
#   OUTDIR/../tests-tools/agent-client  a host client for tests (tests/tools/agent-client.c)
# Usage: guest/agent/build.sh [OUTDIR]   (default build/guest; `make guest` passes it)
# Does nothing when everything is newer than its sources.
#
# yajl: Debian's libyajl-dev ships a static libyajl_s.a, which is used when present.
# Otherwise (or with PETREL_AGENT_YAJL=source) yajl is built from Debian's source
# package into ${PETREL_CACHE:-~/.cache/petrel}/yajl-<version>.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proj=$(cd "$here/../.." && pwd)
out=${1:-$proj/build/guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tools=$(dirname "$out")/tests-tools
agent=$out/petrel-agent
initrd=$out/agent-initramfs.cpio.gz
client=$tools/agent-client
cc=${CC:-cc}
version=$(sed -n 's/^VERSION *:= *//p' "$proj/Makefile")
cflags=(-std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
	-Wmissing-prototypes -Wstrict-prototypes -D_GNU_SOURCE "-DPETREL_VERSION=\"$version\""
	-fno-strict-aliasing -fstack-protector-strong -D_FORTIFY_SOURCE=2 -O2 -I"$proj")
proto=("$proj/common/agent-proto.c" "$proj/common/error.c" "$proj/common/log.c")
headers=("$here"/*.h "$proj"/common/*.h)

# stale TARGET FILE...: true when TARGET is missing or older than a FILE.
stale() {
	local target=$1 f
	shift
	[ -e "$target" ] || return 0
	for f in "$@"; do
		[ "$f" -nt "$target" ] && return 0
	done
	return 1
}

# Prints "-I<include dir> <library>" for a static yajl.
static_yajl() {
	local multiarch lib
	multiarch=$($cc -print-multiarch 2>/dev/null || true)
	lib=/usr/lib/${multiarch:-x86_64-linux-gnu}/libyajl_s.a
	if [ "${PETREL_AGENT_YAJL:-}" != source ] && [ -f "$lib" ]; then
		echo "-I/usr/include $lib"
		return
	fi
	local cache ver dir tmp src major minor micro
	cache=${PETREL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/petrel}
	ver=$(apt-cache showsrc yajl 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)
	[ -n "$ver" ] || { echo "agent: cannot find yajl's source package (deb-src missing? run 'make deps')" >&2; exit 1; }
	dir=$cache/yajl-$ver
	if [ ! -f "$dir/libyajl.a" ]; then
		tmp=$(mktemp -d)
		(cd "$tmp" && apt-get source -qq yajl >/dev/null 2>"$tmp/err") ||
			{ echo "agent: apt-get source yajl failed: $(tail -n1 "$tmp/err")" >&2; rm -rf "$tmp"; exit 1; }
		src=$(echo "$tmp"/yajl-*/src)
		rm -rf "$dir.tmp"
		mkdir -p "$dir.tmp/include/yajl" "$dir.tmp/obj"
		cp "$src"/api/*.h "$dir.tmp/include/yajl/"
		major=$(sed -n 's/^SET (YAJL_MAJOR \([0-9]*\))/\1/p' "$src/../CMakeLists.txt")
		minor=$(sed -n 's/^SET (YAJL_MINOR \([0-9]*\))/\1/p' "$src/../CMakeLists.txt")
		micro=$(sed -n 's/^SET (YAJL_MICRO \([0-9]*\))/\1/p' "$src/../CMakeLists.txt")
		sed -e "s/\${YAJL_MAJOR}/$major/" -e "s/\${YAJL_MINOR}/$minor/" -e "s/\${YAJL_MICRO}/$micro/" \
			"$src/api/yajl_version.h.cmake" >"$dir.tmp/include/yajl/yajl_version.h"
		for f in "$src"/*.c; do
			$cc -std=gnu99 -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -I"$dir.tmp/include" -I"$src" \
				-c "$f" -o "$dir.tmp/obj/$(basename "${f%.c}").o"
		done
		ar rcs "$dir.tmp/libyajl.a" "$dir.tmp"/obj/*.o
		rm -rf "$dir.tmp/obj" "$tmp" "$dir"
		mv "$dir.tmp" "$dir"
	fi
	echo "-I$dir/include $dir/libyajl.a"
}

if stale "$agent" "$here"/*.c "${headers[@]}" "${proto[@]}" "$0"; then
	# No process substitution: the testbed has no /dev/fd.
	yajl=$(static_yajl)
	yajl_inc=${yajl%% *}
	yajl_lib=${yajl#* }
	libcap=$($cc -print-file-name=libcap.a)
	[ -f "$libcap" ] || { echo "agent: libcap.a not found; run 'make deps' (package libcap-dev)" >&2; exit 1; }
	libseccomp=$($cc -print-file-name=libseccomp.a)
	[ -f "$libseccomp" ] || { echo "agent: libseccomp.a not found; run 'make deps' (package libseccomp-dev)" >&2; exit 1; }
	echo "  CCLD    $agent"
	$cc "${cflags[@]}" "$yajl_inc" -static -s -o "$agent.tmp" "$here"/*.c "${proto[@]}" \
		"$libcap" "$libseccomp" "$yajl_lib" -lm
	mv "$agent.tmp" "$agent"
fi

if stale "$initrd" "$agent" "$0"; then
	echo "  CPIO    $initrd"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp"/{dev,proc,sys,run,tmp}
	cp "$agent" "$tmp/init"
	chmod 0755 "$tmp/init"
	(cd "$tmp" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 -n >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
fi

if [ -f "$proj/tests/tools/agent-client.c" ] &&
	stale "$client" "$proj/tests/tools/agent-client.c" "${headers[@]}" "${proto[@]}" "$0"; then
	mkdir -p "$tools"
	echo "  CCLD    $client"
	$cc "${cflags[@]}" -g -o "$client.tmp" "$proj/tests/tools/agent-client.c" "${proto[@]}" -lyajl
	mv "$client.tmp" "$client"
fi
