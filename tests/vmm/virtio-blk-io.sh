#!/bin/bash
# virtio-blk seen from a real guest: two disks, capacity and serial in sysfs,
# a multi-MiB write read back through the device with caches dropped, odd
# sector offsets, flush, a driver unbind/bind (device reset and queue
# re-setup), with direct=on (the default) and direct=off; then iops throttling.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
a=$T/a.img
b=$T/b.img
truncate -s 24M "$a"
truncate -s 8M "$b"
printf 'DISK-A-HEAD' | dd of="$a" conv=notrunc status=none
printf 'DISK-B-HEAD' | dd of="$b" conv=notrunc status=none
script='set -e
echo "SIZES $(cat /sys/block/vda/size) $(cat /sys/block/vdb/size)"
echo "SERIAL $(cat /sys/block/vda/serial)"
echo "HEADS $(head -c 11 /dev/vda) $(head -c 11 /dev/vdb)"
dd if=/dev/urandom of=/tmp/pattern bs=4096 count=1024 status=none
dd if=/tmp/pattern of=/dev/vda bs=4096 seek=256 conv=fsync status=none
printf ODD-SECTOR | dd of=/dev/vdb bs=512 seek=7 conv=notrunc,fsync status=none
echo 3 >/proc/sys/vm/drop_caches
echo "GUEST-SUM $(dd if=/dev/vda bs=4096 skip=256 count=1024 status=none | md5sum | cut -c1-32)"
echo "WANT-SUM $(md5sum </tmp/pattern | cut -c1-32)"
echo "ODD $(dd if=/dev/vdb bs=512 skip=7 count=1 status=none | head -c 10)"
# Unbinding resets the device and tears its queue down; binding sets it up again.
dev=$(basename "$(readlink /sys/block/vdb/device)")
echo "$dev" >/sys/bus/virtio/drivers/virtio_blk/unbind
echo "$dev" >/sys/bus/virtio/drivers/virtio_blk/bind
echo "REBOUND $(dd if=/dev/vdb bs=512 skip=7 count=1 iflag=direct status=none | head -c 10)"'
for direct in on off; do
	vmm_run_script "$script" \
		-drive id=a,file="$a",direct=$direct -device virtio-blk-device,drive=a,serial=PETREL-SN-1 \
		-drive id=b,file="$b",direct=$direct -device virtio-blk-device,drive=b ||
		fail "direct=$direct: petrel-vmm exited with status $? ($(head -c 300 "$T/stderr"))"
	assert_console "SIZES 49152 16384"
	assert_console "SERIAL PETREL-SN-1"
	assert_console "HEADS DISK-A-HEAD DISK-B-HEAD"
	want=$(grep -a '^WANT-SUM' "$T/console" | cut -d' ' -f2 | tr -d '\r')
	[ -n "$want" ] || fail "direct=$direct: no WANT-SUM on the console"
	assert_console "GUEST-SUM $want"
	assert_console "ODD ODD-SECTOR"
	assert_console "REBOUND ODD-SECTOR"
	# The guest drove the devices by the book: nothing for the VMM to complain about.
	assert_not_contains "$T/stderr" "virtio-blk"
	assert_console "PETREL-TEST-EXIT=0"
	host=$(dd if="$a" bs=4096 skip=256 count=1024 status=none | md5sum | cut -c1-32)
	assert_eq "$host" "$want" "direct=$direct: the host's checksum of the written range"
	assert_eq "$(dd if="$b" bs=512 skip=7 count=1 status=none | head -c 10)" "ODD-SECTOR" \
		"direct=$direct: the host's view of vdb sector 7"
done

# throttling.iops-total: 100 uncached 512-byte reads at 10 IOPS (after a burst of
# at most 10) cannot finish in under 9 seconds; unthrottled they take about 4 s
# even in the nested TCG testbed.
script='start=$(date +%s)
i=0
while [ $i -lt 100 ]; do dd if=/dev/vda of=/dev/null bs=512 skip=$((i * 8)) count=1 iflag=direct status=none || exit 1; i=$((i + 1)); done
echo "THROTTLED-SECONDS $(($(date +%s) - start))"'
vmm_run_script "$script" -drive id=b,file="$b",throttling.iops-total=10 -device virtio-blk-device,drive=b ||
	fail "throttled: petrel-vmm exited with status $? ($(head -c 300 "$T/stderr"))"
assert_console "PETREL-TEST-EXIT=0"
secs=$(grep -a '^THROTTLED-SECONDS' "$T/console" | cut -d' ' -f2 | tr -d '\r')
[ -n "$secs" ] && [ "$secs" -ge 8 ] || fail "100 reads at 10 IOPS took '${secs}' s, expected at least 8"
