# Sourced by every testbed test. A test is a bash script: exit 0 passes,
# exit 77 skips (the reason is the last line it printed), anything else fails.
set -euo pipefail
PROJ=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$PROJ/$BUILD ;; esac
BIN=$BUILD/bin
GUEST=$BUILD/guest
KERNEL=$GUEST/bzImage
VMLINUX=$GUEST/vmlinux
TEST_INITRD=$GUEST/test-initramfs.cpio.gz
# Sockets cannot live on 9p, and O_DIRECT needs a real file system: inside the
# testbed the per-test scratch dir is on its ext4 scratch disk.
if [ -d /scratch/tmp ]; then TMPDIR=/scratch/tmp; export TMPDIR; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/petrel-test.XXXXXX")
_cleanups=()
on_exit() { _cleanups+=("$1"); }
_run_cleanups() {
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do eval "${_cleanups[$i]}" || true; done
	rm -rf "$T"
}
trap _run_cleanups EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "$*"; exit 77; }
need_kvm() { [ -c /dev/kvm ] || skip "no /dev/kvm here (run through tests/testbed/run)"; }
need_cmd() { command -v "$1" >/dev/null || skip "$1 is not installed (run 'make deps')"; }

# b64 'shell script' -> the value for petrel.script=
b64() { printf '%s\n' "$1" | base64 -w0; }

assert_contains() { # FILE PATTERN [what]
	grep -qF -- "$2" "$1" || { echo "--- $1:"; tail -n 30 "$1"; fail "${3:-$1} does not contain '$2'"; }
}
assert_not_contains() {
	! grep -qF -- "$2" "$1" || { echo "--- $1:"; tail -n 30 "$1"; fail "${3:-$1} contains '$2'"; }
}
assert_eq() { [ "$1" = "$2" ] || fail "${3:-value} is '$1', expected '$2'"; }

VMM=$BIN/petrel-vmm
# The kernel command line every petrel-vmm test guest gets (plus its script).
GUEST_APPEND="console=ttyS0 reboot=k panic=-1"
need_vmm() { [ -x "$VMM" ] || fail "$VMM is not built (run make)"; }

# vmm_run_script SCRIPT [petrel-vmm args...]: boots the test initramfs with SCRIPT
# as its test, serial on stdio, console saved in $T/console; returns the VMM's status.
vmm_run_script() {
	local script=$1 a defaults=(-m 256 -smp 1)
	shift
	for a in "$@"; do
		case "$a" in -m | -smp) defaults=() ;; esac
	done
	timeout -k 10 180 "$VMM" -machine microvm "${defaults[@]}" -kernel "$KERNEL" -initrd "$TEST_INITRD" \
		-append "$GUEST_APPEND petrel.script=$(b64 "$script")" -serial stdio "$@" \
		</dev/null >"$T/console" 2>"$T/stderr"
	local rc=$?
	[ $rc = 0 ] || { echo "--- petrel-vmm stderr:"; cat "$T/stderr"; echo "--- console tail:"; tail -n 20 "$T/console"; }
	return $rc
}
# Pattern found on the console, else fail showing the console.
assert_console() { assert_contains "$T/console" "$1" "the guest console"; }

# vmm_pid_when MARKER JOB: once MARKER is on the console of the VMM started as
# background job JOB (vmm_run_script ... &), prints the running petrel-vmm's
# pid; returns 1 if JOB ends first or no petrel-vmm runs.
vmm_pid_when() {
	local i pid
	for ((i = 0; i < 1500; i++)); do
		grep -qa "$1" "$T/console" 2>/dev/null && break
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	pid=$(pgrep -x petrel-vmm | head -n1)
	[ -n "$pid" ] || return 1
	echo "$pid"
}

# petrel_conf_setup: a petrel.conf for the build's guest, sized for the
# testbed (TCG is slow: a long create timeout), exported as PETREL_CONF.
# podman does not pass its environment to conmon, so podman_setup hands it
# on through conmon_env_vars; containerd's shims inherit containerd's.
# tests/runtime/helpers.bash uses it too.
petrel_conf_setup() {
	cat >"$T/petrel.conf" <<EOF
# written by tests/lib/common.sh
kernel = $KERNEL
initrd = $GUEST/agent-initramfs.cpio.gz
vmm = $VMM
memory = 256M
rootfs_margin = 32M
create_timeout = 240
EOF
	export PETREL_CONF=$T/petrel.conf
}

# test_initrd_add_tools NAME...: builds each tests/tools/NAME.c, static, into
# $BUILD/tests-tools/NAME when stale, appends a cpio with /bin/NAME... to the
# test initramfs (Linux unpacks concatenated archives) and points TEST_INITRD
# at the result.
test_initrd_add_tools() {
	need_cmd cpio
	local name tool src
	mkdir -p "$BUILD/tests-tools" "$T/extra/bin"
	for name in "$@"; do
		tool=$BUILD/tests-tools/$name
		src=$PROJ/tests/tools/$name.c
		if [ ! -x "$tool" ] || [ "$src" -nt "$tool" ]; then
			cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -s -o "$tool.$$" "$src" ||
				fail "cannot build $tool (cc -static needs libc6-dev)"
			mv "$tool.$$" "$tool"
		fi
		cp "$tool" "$T/extra/bin/$name"
	done
	(cd "$T/extra" && find bin | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
		gzip -n >"$T/extra.cpio.gz"
	cat "$TEST_INITRD" "$T/extra.cpio.gz" >"$T/initrd.gz"
	TEST_INITRD=$T/initrd.gz
}
