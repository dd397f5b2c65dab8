# Sourced by tests/vmm/vsock-*.sh after common.sh: the static guest tool
# (tests/tools/vsock-tool.c) in an initrd, and the host-side helper.
VSOCK_HOST=$PROJ/tests/lib/vsock-host.py

# The test initramfs with /bin/vsock-tool (see test_initrd_add_tools).
vsock_initrd() {
	test_initrd_add_tools vsock-tool
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

# The hybrid-vsock tests' prerequisites; sets uds, the uds-path they give
# the device.
vsock_hybrid_prepare() {
	need_kvm
	need_vmm
	need_cmd python3
	vsock_initrd
	uds=$T/v.sock
}

# After a 16 MiB transfer each way between $T/host.bin (the host's data) and
# /tmp/g.bin (the guest's), the host's copy of the guest's in $T/got.bin:
# both sides got what the other sent.
vsock_check_transfer() {
	assert_not_contains "$T/console" "VSOCK-TOOL-FAILED"
	assert_console "GUEST-GOT $(vsock_sum "$T/host.bin")"
	assert_console "GUEST-SENT $(vsock_sum "$T/got.bin")"
	assert_eq "$(stat -c %s "$T/got.bin")" 16777216 "bytes received from the guest"
}
