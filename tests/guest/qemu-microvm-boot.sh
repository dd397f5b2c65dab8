#!/bin/bash
# The guest kernel and the test initramfs boot to userspace in QEMU's microvm
# machine with KVM: proof that the guest artifacts and the testbed are right,
# and the peer petrel-vmm is measured against.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_cmd qemu-system-x86_64
marker="petrel-marker-$RANDOM$RANDOM"
timeout 120 qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m 256 -smp 2 \
	-nodefaults -no-user-config -nographic -no-reboot -serial stdio \
	-kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-append "console=ttyS0 panic=-1 petrel.halt=poweroff petrel.script=$(b64 "echo $marker; grep -c ^processor /proc/cpuinfo")" \
	>"$T/console" 2>&1 || fail "qemu exited with status $?"
assert_contains "$T/console" "PETREL-GUEST-READY" "the guest console"
assert_contains "$T/console" "$marker" "the guest console"
assert_contains "$T/console" "PETREL-TEST-EXIT=0" "the guest console"
