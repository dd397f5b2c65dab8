# Sourced by tests/runtime/*.sh: the petrel CLI against real guests. Each test
# writes a petrel.conf that points at the build's guest kernel and agent
# initramfs, makes bundles with a busybox-static rootfs, and uses its own --root.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# run-suite's timeout sends TERM: exit so that the cleanups (VMMs) run.
trap 'exit 143' TERM INT

PETREL=$BIN/petrel
ROOT=$T/root
AGENT_INITRD=$GUEST/agent-initramfs.cpio.gz
# Applets the containers use (linking all ~400 is slow under the testbed's TCG).
APPLETS="sh cat echo env grep hostname id kill ls mkdir pwd sleep stty tr true false tty wc printf test"

runtime_prepare() {
	need_kvm
	need_vmm
	need_cmd mke2fs
	[ -x "$PETREL" ] || fail "$PETREL is not built (run make)"
	[ -x /bin/busybox ] || skip "busybox-static is not installed (run 'make deps')"
	[ -s "$KERNEL" ] || skip "no guest kernel at $KERNEL (run 'make guest')"
	[ -s "$AGENT_INITRD" ] || "$PROJ/guest/agent/build.sh" "$GUEST" >/dev/null ||
		fail "guest/agent/build.sh failed"
	petrel_conf_setup
	# Whatever a test leaves running is killed, and the VMM's console kept for the log.
	on_exit "cleanup_containers"
}

cleanup_containers() {
	local d pid
	for d in "$ROOT"/*/; do
		[ -d "$d" ] || continue
		mkdir -p "$PROJ/build/test-logs"
		cp "$d/console.log" "$PROJ/build/test-logs/runtime_$(basename "$0" .sh)_$(basename "$d").console.log" 2>/dev/null || true
		pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$d/state.json" 2>/dev/null | head -n1)
		[ -n "$pid" ] && [ "$pid" != 0 ] && kill -9 "$pid" 2>/dev/null || true
	done
}

# step WHAT: a progress line, so that a timeout shows where the test stood.
step() { echo "[$(date +%T)] $*"; }

# p ARGS...: petrel with the test's --root.
p() { "$PETREL" --root "$ROOT" "$@"; }

# make_rootfs DIR: a busybox-static root.
make_rootfs() {
	local d=$1 a
	mkdir -p "$d/bin" "$d/etc" "$d/root" "$d/tmp" "$d/proc" "$d/sys" "$d/dev"
	cp /bin/busybox "$d/bin/busybox"
	for a in $APPLETS; do ln -sf busybox "$d/bin/$a"; done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' >"$d/etc/passwd"
	printf '%s\n' 'root:x:0:' >"$d/etc/group"
}

# make_bundle DIR ARGS_JSON [TERMINAL] [EXTRA_TOP_LEVEL_JSON]: a bundle whose
# process runs ARGS_JSON (a JSON array), in the shape `runc spec` writes.
# $MOUNTS (a JSON array) replaces the default mounts.
DEFAULT_MOUNTS='[
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ]'
make_bundle() {
	local dir=$1 args=$2 terminal=${3:-false} extra=${4:-} mounts=${MOUNTS:-$DEFAULT_MOUNTS}
	mkdir -p "$dir"
	[ -d "$T/rootfs" ] || make_rootfs "$T/rootfs"
	ln -sfn "$T/rootfs" "$dir/rootfs"
	cat >"$dir/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": $terminal,
    "user": {"uid": 0, "gid": 0},
    "args": $args,
    "env": ["PATH=/bin", "TERM=xterm"],
    "cwd": "/"
  },
  "root": {"path": "rootfs"},
  "hostname": "petrel-test",
  "mounts": $mounts,
  ${extra:+$extra,}
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/kcore"],
    "readonlyPaths": ["/proc/sys"]
  }
}
JSON
}

# bundle_network CONFIG NETNS DISK [ADDRESS]: the bundle's network namespace
# entry becomes NETNS ("" for none: bridge mode; "new" for an entry without a
# path; else the path), its root the prebuilt DISK (io.petrel.rootfs: building
# one per create is slow under TCG), and ADDRESS, if any, io.petrel.net.address.
bundle_network() {
	python3 - "$1" "$2" "$3" "${4:-}" <<'PY'
import json, sys
path, netns, disk, addr = sys.argv[1:]
cfg = json.load(open(path))
ns = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
if netns == "new":
    ns.append({"type": "network"})
elif netns:
    ns.append({"type": "network", "path": netns})
cfg["linux"]["namespaces"] = ns
cfg["annotations"] = {"io.petrel.rootfs": disk}
if addr:
    cfg["annotations"]["io.petrel.net.address"] = addr
json.dump(cfg, open(path, "w"), indent=1)
PY
}

# state_field ID FIELD: a top-level string or number of `petrel state ID`.
state_field() {
	p state "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# wait_status ID STATUS [SECONDS]
wait_status() {
	local i s
	for i in $(seq 1 $((${3:-60} * 5))); do
		s=$(state_field "$1" status 2>/dev/null || true)
		[ "$s" = "$2" ] && return 0
		sleep 0.2
	done
	fail "$1: status is '$s', expected '$2'"
}

# wait_file FILE PATTERN [SECONDS]
wait_file() {
	local i
	for i in $(seq 1 $((${3:-60} * 5))); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "--- $1:"; cat "$1" 2>/dev/null || true
	fail "$1 never showed '$2'"
}

# expect_fail OUTFILE PATTERN ARGS...: petrel ARGS fails (status 1) with PATTERN on stderr.
expect_fail() {
	local out=$1 pat=$2 rc=0
	shift 2
	p "$@" >"$out" 2>&1 </dev/null || rc=$?
	[ "$rc" = 1 ] || { cat "$out"; fail "petrel $* exited with $rc, expected 1"; }
	assert_contains "$out" "$pat"
}

# assert_root_empty: nothing left under --root, and no VMM of ours running.
assert_root_empty() {
	local left
	left=$(ls -A "$ROOT" 2>/dev/null || true)
	[ -z "$left" ] || { ls -laR "$ROOT"; fail "left under --root: $left"; }
	if pgrep -f "petrel-vmm.*$ROOT" >/dev/null; then
		pgrep -af "petrel-vmm.*$ROOT"
		fail "a petrel-vmm of this test still runs"
	fi
}
