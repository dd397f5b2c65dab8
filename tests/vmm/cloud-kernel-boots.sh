#!/bin/bash
# A guest nobody here configured: Debian's stock linux-image-cloud-amd64 with an
# initramfs that loads its virtio_mmio and virtio_blk modules boots to its /init
# and reads /dev/vda. That kernel has no MP-table parsing and no virtio-mmio
# command-line devices, so it finds its disk through the ACPI tables (acpi=on).
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
dir=$("$PROJ/tests/lib/cloud-kernel" "$TEST_INITRD" 2>"$T/fetch.err") || skip "the cloud kernel is not cached and cannot be fetched: $(tail -n1 "$T/fetch.err")"
disk=$T/disk.img
truncate -s 16M "$disk"
printf 'CLOUD-PATTERN' | dd of="$disk" conv=notrunc status=none
timeout 240 "$VMM" -machine microvm,acpi=on -m 512 -smp 2 -kernel "$dir/vmlinuz" -initrd "$dir/initramfs.cpio.gz" \
	-append "console=ttyS0 reboot=k panic=-1 petrel.script=$(b64 'head -c 13 /dev/vda; echo; grep -c ^processor /proc/cpuinfo')" \
	-drive id=d0,file="$disk",readonly=on -device virtio-blk-device,drive=d0 \
	-serial stdio </dev/null >"$T/console" 2>"$T/stderr" || fail "petrel-vmm exited with status $?"
assert_console "PETREL-GUEST-READY"
assert_console "CLOUD-PATTERN"
assert_console "PETREL-TEST-EXIT=0"
