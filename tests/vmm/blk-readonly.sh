#!/bin/bash
# readonly=on: the guest sees a read-only disk and its writes fail; the host file is unchanged.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
disk=$T/ro.img
truncate -s 16M "$disk"
printf 'READ-ONLY-DATA' | dd of="$disk" conv=notrunc status=none
before=$(sha256sum <"$disk")
script='head -c 14 /dev/vda; echo
cat /sys/block/vda/ro
if printf X | dd of=/dev/vda bs=512 seek=100 conv=notrunc,fsync status=none 2>/dev/null; then echo WRITE-SUCCEEDED; else echo WRITE-FAILED; fi'
vmm_run_script "$script" -drive id=d0,file="$disk",readonly=on -device virtio-blk-device,drive=d0 ||
	fail "petrel-vmm exited with status $?"
assert_console "READ-ONLY-DATA"
assert_console "WRITE-FAILED"
assert_not_contains "$T/console" "WRITE-SUCCEEDED"
assert_eq "$(sha256sum <"$disk")" "$before" "the disk's checksum"
