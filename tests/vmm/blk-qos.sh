#!/bin/bash
# throttling.iops-total=200: the guest measures the rate of 4 KiB O_DIRECT reads
# (one request each, one at a time) and gets 200 IOPS within 10%. A reader
# runs without pause; after 2 s (the bucket's burst of one second's worth is
# spent) the guest counts the reads completed in 3 s (/sys/block/vda/stat,
# /proc/uptime, read by shell builtins so the reader is never interrupted).
# Without the limit the same reads must be clearly faster, else the check
# says nothing and the test is skipped with the numbers.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
LIMIT=200
disk=$T/disk.img
truncate -s 64M "$disk"

script='(while :; do dd if=/dev/vda of=/dev/null bs=4k count=16000 iflag=direct status=none; done) &
sleep 2
read u0 rest </proc/uptime
read r0 rest </sys/block/vda/stat
sleep 3
read u1 rest </proc/uptime
read r1 rest </sys/block/vda/stat
echo "QOS-SAMPLES $u0 $r0 $u1 $r1"'

# measure [throttling option]: prints the IOPS the guest saw (integer).
measure() {
	vmm_run_script "$script" -drive id=d0,file="$disk"${1:+,$1} -device virtio-blk-device,drive=d0 ||
		fail "${1:-unthrottled}: petrel-vmm exited with status $?"
	assert_console "PETREL-TEST-EXIT=0"
	local samples
	samples=$(grep -a '^QOS-SAMPLES' "$T/console" | tr -d '\r' | cut -d' ' -f2-)
	[ -n "$samples" ] || fail "${1:-unthrottled}: no QOS-SAMPLES on the console"
	# shellcheck disable=SC2086
	set -- $samples
	local cs=$((10#${3/./} - 10#${1/./}))
	[ "$cs" -gt 0 ] || fail "no measurable time between the samples ($samples)"
	echo $((($4 - $2) * 100 / cs))
}

free=$(measure "")
echo "unthrottled: $free IOPS"
limited=$(measure "throttling.iops-total=$LIMIT")
echo "throttling.iops-total=$LIMIT: $limited IOPS"
# The limit is only visible when the backend is clearly faster than it (well
# above the upper bound, so that a limit that did nothing would fail).
[ "$free" -ge $((LIMIT * 5 / 4)) ] ||
	skip "the unthrottled disk does only $free IOPS here (limited: $limited); a $LIMIT IOPS limit cannot be checked"
lo=$((LIMIT * 90 / 100))
hi=$((LIMIT * 110 / 100))
[ "$limited" -ge $lo ] && [ "$limited" -le $hi ] ||
	fail "throttling.iops-total=$LIMIT: the guest measured $limited IOPS (unthrottled $free), expected $lo..$hi"
