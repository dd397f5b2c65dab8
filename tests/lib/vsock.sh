# Sourced by tests/vmm/vsock-*.sh after common.sh: the static guest tool
# (tests/tools/vsock-tool.c) in an initrd, and the host-side helper.
VSOCK_HOST=$PROJ/tests/lib/vsock-host.py

# Builds $BUILD/tests-tools/vsock-tool when stale, appends a cpio with
# /bin/vsock-tool to the test initramfs (Linux unpacks concatenated archives)
# and points TEST_INITRD at the result.
vsock_initrd() {
	need_cmd cpio
	local tool=$BUILD/tests-tools/vsock-tool src=$PROJ/tests/tools/vsock-tool.c
	if [ ! -x "$tool" ] || [ "$src" -nt "$tool" ]; then
		mkdir -p "$BUILD/tests-tools"
		cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -s -o "$tool.$$" "$src" ||
			fail "cannot build $tool (cc -static needs libc6-dev)"
		mv "$tool.$$" "$tool"
	fi
	mkdir -p "$T/extra/bin"
	cp "$tool" "$T/extra/bin/vsock-tool"
	(cd "$T/extra" && find bin | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
		gzip -n >"$T/extra.cpio.gz"
	cat "$TEST_INITRD" "$T/extra.cpio.gz" >"$T/initrd.gz"
	TEST_INITRD=$T/initrd.gz
}

# sha256 of a file, digits only.
vsock_sum() { sha256sum <"$1" | cut -d' ' -f1; }

# The guest script's lines that report its checksums.
VSOCK_GUEST_SUMS='echo "GUEST-SENT $(sha256sum </tmp/g.bin | cut -d" " -f1)"
echo "GUEST-GOT $(sha256sum </tmp/h.bin | cut -d" " -f1)"'

# Skips unless /dev/vhost-vsock exists, loading the module first when it can
# (the testbed's Debian kernel has it unpacked in the cache; as tests/agent).
vsock_need_vhost() {
	if [ ! -c /dev/vhost-vsock ]; then
		modprobe vhost_vsock 2>/dev/null ||
			modprobe -d "${PETREL_CACHE:-$HOME/.cache/petrel}/testbed/$(uname -r)/root" vhost_vsock 2>/dev/null || true
	fi
	[ -c /dev/vhost-vsock ] || skip "no /dev/vhost-vsock here (the vhost_vsock module is not available)"
}
