# Sourced by tests/agent/*.sh. A real guest without petrel's VMM: QEMU's microvm
# with KVM boots the petrel guest kernel with the agent initramfs, a busybox-static
# root disk, and a vhost-vsock device; agent-client drives the agent from here.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# run-suite's timeout sends TERM: exit so that the cleanups (QEMU) run.
trap 'exit 143' TERM INT

AGENT_INITRD=$GUEST/agent-initramfs.cpio.gz
CLIENT=$BUILD/tests-tools/agent-client
# Applets the tests use: linking all ~400 costs minutes under the testbed's TCG.
APPLETS="sh ash cat echo env grep head hostname id ip kill ls mkdir mount pwd readlink sed sleep
stat stty tail test touch tr true false tty umask wc yes printf dd"

# Checks and loads what a guest needs; skips when the host cannot run one.
agent_prepare() {
	need_kvm
	need_cmd qemu-system-x86_64
	need_cmd mke2fs
	[ -x /bin/busybox ] || skip "busybox-static is not installed (run 'make deps')"
	[ -s "$KERNEL" ] || skip "no guest kernel at $KERNEL (run 'make guest')"
	"$PROJ/guest/agent/build.sh" "$GUEST" >/dev/null || fail "guest/agent/build.sh failed"
	if [ ! -c /dev/vhost-vsock ]; then
		# The testbed's Debian kernel has vhost_vsock as a module, unpacked in the cache.
		modprobe vhost_vsock 2>/dev/null ||
			modprobe -d "${PETREL_CACHE:-$HOME/.cache/petrel}/testbed/$(uname -r)/root" vhost_vsock 2>/dev/null || true
	fi
	[ -c /dev/vhost-vsock ] || skip "no /dev/vhost-vsock here (the vhost_vsock module is not available)"
}

# make_rootfs IMG: an ext4 image of a busybox-static root with a few users.
make_rootfs() {
	local img=$1 d=$T/rootfs-dir a
	rm -rf "$d"
	mkdir -p "$d/bin" "$d/etc" "$d/root" "$d/tmp"
	cp /bin/busybox "$d/bin/busybox"
	for a in $APPLETS; do ln -s busybox "$d/bin/$a"; done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'user:x:1000:1000:user:/home/user:/bin/sh' \
		'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$d/etc/passwd"
	printf '%s\n' 'root:x:0:' 'user:x:1000:' >"$d/etc/group"
	echo "petrel agent test rootfs" >"$d/etc/motd"
	mke2fs -q -t ext4 -d "$d" -F "$img" 64M >/dev/null || fail "mke2fs failed"
}

# boot_agent: starts the guest in the background and waits until the agent answers.
# Sets CID and QEMU_PID; the console goes to $T/console.log.
boot_agent() {
	[ -e "$T/rootfs.ext4" ] || make_rootfs "$T/rootfs.ext4"
	step "boot the guest"
	CID=$((1000 + RANDOM))
	qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m 512 -smp 2 \
		-nodefaults -no-user-config -nographic -no-reboot -serial "file:$T/console.log" \
		-kernel "$KERNEL" -initrd "$AGENT_INITRD" \
		-append "console=ttyS0 reboot=t panic=-1 petrel.agent.debug=1 ${AGENT_CMDLINE:-}" \
		-drive "id=root,file=$T/rootfs.ext4,format=raw,if=none" -device virtio-blk-device,drive=root \
		-device "vhost-vsock-device,guest-cid=$CID" >"$T/qemu.log" 2>&1 &
	QEMU_PID=$!
	on_exit "kill $QEMU_PID 2>/dev/null; wait $QEMU_PID 2>/dev/null"
	# The guest's console (the agent logs every request there) next to the test's log.
	mkdir -p "$PROJ/build/test-logs"
	on_exit "cp '$T/console.log' '$PROJ/build/test-logs/agent_$(basename "$0" .sh).console.log' 2>/dev/null"
	if ! "$CLIENT" --cid "$CID" --wait 180 hello >/dev/null; then
		echo "--- console:"; tail -n 30 "$T/console.log"; echo "--- qemu:"; cat "$T/qemu.log"
		fail "the agent did not answer on vsock cid $CID"
	fi
}

# step WHAT: a progress line in the test's log, so that a timeout shows where it stood.
step() { echo "[$(date +%T)] $*"; }

# client ARGS...: agent-client against the booted guest.
client() { "$CLIENT" --cid "$CID" --wait 10 "$@"; }

# expect_run STATUS OUTFILE ARGS...: runs `client ARGS`, stdout to OUTFILE, stderr to OUTFILE.err,
# and checks the exit status.
expect_run() {
	local want=$1 out=$2 rc=0
	shift 2
	step "$*"
	client "$@" >"$out" 2>"$out.err" </dev/null || rc=$?
	if [ "$rc" != "$want" ]; then
		echo "--- stdout:"; cat "$out"; echo "--- stderr:"; cat "$out.err"
		echo "--- console:"; tail -n 20 "$T/console.log"
		fail "agent-client $* exited with $rc, expected $want"
	fi
}

# shutdown_agent: asks for the shutdown and waits for QEMU to exit.
shutdown_agent() {
	step "shutdown"
	client shutdown >/dev/null || fail "shutdown request failed"
	local i
	for i in $(seq 1 300); do
		kill -0 "$QEMU_PID" 2>/dev/null || return 0
		sleep 0.1
	done
	fail "QEMU did not exit within 30 s of the shutdown"
}
