# Sourced by tests/runtime/{podman,containerd}-*.sh after tests/lib/common.sh:
# the OCI runtime that podman and containerd are pointed at, a busybox-static
# image made here (no registry), a private podman configuration, and a private
# containerd daemon.
#
# PETREL_TEST_RUNTIME selects the runtime: build/bin/petrel by default; a path
# or a name such as crun or runc runs the same checks against a reference
# runtime, which proves the podman and containerd setup apart from petrel.
# PETREL_TEST_TRACE=1 puts a wrapper in front of the runtime that logs every
# call (argv) to build/test-logs/runtime_<test>.runtime-calls.log.

# run-suite's timeout sends TERM: exit so that the cleanups (containerd, containers) run.
trap 'exit 143' TERM INT

RUNTIME=${PETREL_TEST_RUNTIME:-$BIN/petrel}
IMAGE=localhost/petrel-busybox:test
# Images and podman's database live on the testbed's scratch disk (fresh each
# testbed run) and are shared by the tests of one run; everything else is in $T.
PODMAN_STORE=${PETREL_TEST_PODMAN_STORE:-/var/lib/containers/petrel-test}
PODMAN_RUN=/run/petrel-test/podman
CONTAINERD_ROOT=${PETREL_TEST_CONTAINERD_ROOT:-/var/lib/containerd/petrel-test}
CTR_NS=petrel-test

# is_petrel: whether the runtime under test is petrel (it then needs KVM and a guest).
is_petrel() { [ "$(basename "$RUNTIME")" = petrel ]; }

# need_runtime: skips unless the runtime under test can run here; resolves
# RUNTIME to an absolute path.
need_runtime() {
	need_cmd "$1"
	if [ -z "${PETREL_TEST_RUNTIME:-}" ]; then
		[ -x "$RUNTIME" ] || skip "$RUNTIME is not built yet (runtime/main.c; make BUILD=${BUILD##*/} progs guest)"
	else
		case "$RUNTIME" in
		*/*) [ -x "$RUNTIME" ] || skip "PETREL_TEST_RUNTIME=$RUNTIME is not an executable" ;;
		*) RUNTIME=$(command -v "$RUNTIME") || skip "PETREL_TEST_RUNTIME=$PETREL_TEST_RUNTIME is not installed" ;;
		esac
	fi
	case "$RUNTIME" in /*) ;; *) RUNTIME=$PWD/$RUNTIME ;; esac
	if is_petrel; then
		need_kvm
		[ -s "$KERNEL" ] || skip "no guest kernel at $KERNEL (make BUILD=${BUILD##*/} guest)"
		[ -s "$GUEST/agent-initramfs.cpio.gz" ] ||
			skip "no agent initramfs at $GUEST/agent-initramfs.cpio.gz (make BUILD=${BUILD##*/} guest)"
		if [ ! -c /dev/vhost-vsock ]; then
			modprobe vhost_vsock 2>/dev/null ||
				modprobe -d "${PETREL_CACHE:-$HOME/.cache/petrel}/testbed/$(uname -r)/root" vhost_vsock 2>/dev/null || true
		fi
		[ -c /dev/vhost-vsock ] || skip "no /dev/vhost-vsock here (the vhost_vsock module is not available)"
		petrel_conf_setup
	fi
	if [ "${PETREL_TEST_TRACE:-}" = 1 ]; then
		# The same base name: podman keys per-runtime behaviour on it.
		local real=$RUNTIME log
		log=$PROJ/build/test-logs/runtime_$(basename "$0" .sh).runtime-calls.log
		mkdir -p "$T/trace" "$(dirname "$log")"
		: >"$log"
		printf '#!/bin/sh\necho "$(date +%%T.%%N) $*" >>%q\nexec %q "$@"\n' "$log" "$real" >"$T/trace/$(basename "$real")"
		chmod +x "$T/trace/$(basename "$real")"
		RUNTIME=$T/trace/$(basename "$real")
	fi
	echo "runtime under test: $RUNTIME"
}

# runtime_default_root: the runtime's state directory when no --root is
# given, as podman runs it.
runtime_default_root() {
	case "$(basename "$RUNTIME")" in
	petrel) echo /run/petrel ;;
	*) echo "/run/$(basename "$RUNTIME")" ;;
	esac
}

# busybox_rootfs DIR: a root file system of Debian's busybox-static with every
# applet linked, and the few files an image is expected to have.
busybox_rootfs() {
	local d=$1
	[ -x /bin/busybox ] || skip "busybox-static is not installed (run 'make deps')"
	need_cmd python3
	mkdir -p "$d"/{bin,etc,root,tmp,proc,sys,dev,run,var/tmp}
	chmod 1777 "$d/tmp" "$d/var/tmp"
	cp /bin/busybox "$d/bin/busybox"
	# One process for ~400 links: a fork per link costs seconds under TCG.
	/bin/busybox --list | python3 -c '
import os, sys
for name in sys.stdin.read().split():
    if name != "busybox":
        os.symlink("busybox", os.path.join(sys.argv[1], name))' "$d/bin"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$d/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$d/etc/group"
}

# podman_setup: writes a containers.conf and a storage.conf for podman in the
# testbed (no systemd, no journald) with the runtime under test named
# "petrel", and defines pm (podman with that configuration).
podman_setup() {
	need_cmd conmon
	local driver=${PETREL_TEST_STORAGE_DRIVER:-overlay}
	mkdir -p "$PODMAN_STORE" "$PODMAN_RUN"
	cat >"$T/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_RUN/events.log"
tmp_dir = "$PODMAN_RUN/libpod"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "petrel"]
conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"${PETREL_CONF:+, \"PETREL_CONF=$PETREL_CONF\"}]

[engine.runtimes]
petrel = ["$RUNTIME"]

[network]
# Debian's podman package ships a CNI config but no CNI plugins.
network_backend = "netavark"
EOF
	cat >"$T/storage.conf" <<EOF
[storage]
driver = "$driver"
graphroot = "$PODMAN_STORE/storage-$driver"
runroot = "$PODMAN_RUN/storage-$driver"
EOF
	export CONTAINERS_CONF=$T/containers.conf CONTAINERS_STORAGE_CONF=$T/storage.conf
	# Leftovers of a failed test are removed by the test that made them; a
	# container another test left would only cost disk.
	echo "podman $(podman --version | cut -d' ' -f3), storage $driver in $PODMAN_STORE"
}

# pm ARGS...: podman with the test configuration and the runtime under test.
pm() { podman --runtime "$RUNTIME" "$@"; }

# podman_image: imports $IMAGE unless this testbed run already has it.
podman_image() {
	pm image exists "$IMAGE" && return 0
	busybox_rootfs "$T/image-rootfs"
	tar -C "$T/image-rootfs" -c . | pm import --quiet --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null ||
		fail "podman import of the busybox rootfs failed"
	rm -rf "$T/image-rootfs"
}

# wait_for CMD...: retries CMD for up to 60 s (TCG is slow).
wait_for() {
	local i
	for i in $(seq 1 300); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# containerd_start: starts a private containerd (config, state and socket in
# $T, content store in $CONTAINERD_ROOT) and defines ctr_ (ctr against it).
# The CRI plugin is off: ctr does not need it and it would look for CNI.
containerd_start() {
	need_cmd containerd
	need_cmd ctr
	need_cmd containerd-shim-runc-v2
	CTR_SOCK=$T/containerd.sock
	mkdir -p "$CONTAINERD_ROOT" "$T/containerd-state"
	cat >"$T/containerd.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "$T/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTR_SOCK"

[ttrpc]
  address = "$CTR_SOCK.ttrpc"
EOF
	containerd --config "$T/containerd.toml" --log-level info >"$T/containerd.log" 2>&1 &
	CONTAINERD_PID=$!
	on_exit "kill $CONTAINERD_PID 2>/dev/null; wait $CONTAINERD_PID 2>/dev/null; cp '$T/containerd.log' '$PROJ/build/test-logs/runtime_$(basename "$0" .sh).containerd.log' 2>/dev/null"
	if ! wait_for ctr_ version; then
		tail -n 30 "$T/containerd.log"
		fail "containerd did not answer on $CTR_SOCK"
	fi
}

# ctr_ ARGS...: ctr against the private containerd, in the test namespace.
ctr_() { ctr -a "$CTR_SOCK" -n "$CTR_NS" "$@"; }

# containerd_image: imports $IMAGE into containerd (an OCI archive that podman
# saves) unless this testbed run already has it.
containerd_image() {
	ctr_ image ls -q | grep -xF "$IMAGE" >/dev/null && return 0
	need_cmd podman
	podman_setup >/dev/null
	podman_image
	pm save --quiet --format oci-archive -o "$T/image.tar" "$IMAGE" >/dev/null || fail "podman save failed"
	ctr_ image import "$T/image.tar" >"$T/import.log" 2>&1 ||
		{ cat "$T/import.log"; fail "ctr image import failed"; }
	ctr_ image ls -q | grep -xF "$IMAGE" >/dev/null || { ctr_ image ls; fail "$IMAGE is not in containerd after the import"; }
	rm -f "$T/image.tar"
}

# expect_status STATUS OUTFILE CMD...: runs CMD with stdin from /dev/null,
# stdout to OUTFILE and stderr to OUTFILE.err, and checks its exit status.
expect_status() {
	local want=$1 out=$2 rc=0
	shift 2
	echo "[$(date +%T)] $*"
	"$@" >"$out" 2>"$out.err" </dev/null || rc=$?
	if [ "$rc" != "$want" ]; then
		echo "--- stdout:"; tail -n 20 "$out"; echo "--- stderr:"; tail -n 20 "$out.err"
		fail "$* exited with $rc, expected $want"
	fi
}

# assert_runtime_root_empty DIR [DEPTH]: no container state is left under the
# runtime's --root: no file, and no directory at DEPTH (1, where the runtime
# makes one per container; the runc shim adds a level for the namespace).
assert_runtime_root_empty() {
	local left depth=${2:-1}
	left=$({
		find "$1" -mindepth 1 -not -type d
		find "$1" -mindepth "$depth" -maxdepth "$depth" -type d
	} 2>/dev/null | head -n 20)
	[ -z "$left" ] || { echo "--- left under $1:"; echo "$left"; fail "the runtime left state under $1"; }
}

# testbed_modprobe MODULE...: loads modules when they exist; the testbed's
# Debian kernel has its modules unpacked in the cache, not in /lib/modules.
testbed_modprobe() {
	local m dir
	dir=${PETREL_CACHE:-$HOME/.cache/petrel}/testbed/$(uname -r)/root
	for m in "$@"; do
		modprobe "$m" 2>/dev/null || modprobe -d "$dir" "$m" 2>/dev/null || true
	done
}
