#!/bin/bash
# The seed document's minimal lightweight VM, as written there: a raw disk on
# virtio-blk, QMP on a unix socket, serial on stdio. The guest reads a known
# pattern from /dev/vda and writes another one, which the host reads back.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
disk=$T/rootfs.img
truncate -s 64M "$disk"
printf 'PETREL-PATTERN-A' | dd of="$disk" conv=notrunc status=none
script='head -c 16 /dev/vda; echo
printf PETREL-PATTERN-B | dd of=/dev/vda bs=512 seek=2048 conv=notrunc,fsync status=none && echo WRITE-OK'
timeout 180 "$VMM" \
	-machine microvm \
	-smp 2 \
	-m 512 \
	-kernel "$KERNEL" \
	-initrd "$TEST_INITRD" \
	-append "$GUEST_APPEND petrel.script=$(b64 "$script")" \
	-drive file="$disk",id=rootfs,readonly=false \
	-device virtio-blk-device,drive=rootfs \
	-qmp unix:"$T/qmp.sock",server,nowait \
	-serial stdio </dev/null >"$T/console" 2>"$T/stderr" || fail "petrel-vmm exited with status $? ($(head -c 300 "$T/stderr"))"
assert_console "PETREL-PATTERN-A"
assert_console "WRITE-OK"
assert_console "PETREL-TEST-EXIT=0"
got=$(dd if="$disk" bs=512 skip=2048 count=1 status=none | head -c 16)
assert_eq "$got" "PETREL-PATTERN-B" "the host's view of sector 2048"
[ ! -e "$T/qmp.sock" ] || fail "the QMP socket $T/qmp.sock is left behind after exit"
