#!/bin/bash
# -object iothread: a thread named after the iothread's id (its first 15
# bytes) runs the queue of the disk given iothread=, under its own seccomp
# filter; the guest's disk I/O works through it and the thread's CPU time
# grows while the guest reads.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
disk=$T/disk.img
truncate -s 32M "$disk"
id=io-thread-for-disks # 19 bytes: the thread is named io-thread-for-d
comm=${id:0:15}

script='set -e
dd if=/dev/urandom of=/tmp/pattern bs=4096 count=512 status=none
dd if=/tmp/pattern of=/dev/vda bs=4096 seek=1024 oflag=direct conv=fsync status=none
echo 3 >/proc/sys/vm/drop_caches
echo "GUEST-SUM $(dd if=/dev/vda bs=4096 skip=1024 count=512 iflag=direct status=none | md5sum | cut -c1-32)"
echo "WANT-SUM $(md5sum </tmp/pattern | cut -c1-32)"
echo IO-START
dd if=/dev/vda of=/dev/null bs=4096 count=3000 iflag=direct status=none
echo IO-END
sleep 3'

vmm_run_script "$script" -object iothread,id=$id \
	-drive id=d0,file="$disk" -device virtio-blk-device,drive=d0,iothread=$id &
job=$!

# wait_console PATTERN SECONDS
wait_console() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -qaF -- "$1" "$T/console" 2>/dev/null && return 0
		kill -0 $job 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# CPU time of a task in ns (schedstat), or its utime+stime ticks.
cpu_time() {
	if [ -r "$1/schedstat" ]; then
		cut -d' ' -f1 "$1/schedstat"
	else
		awk '{print $14 + $15}' "$1/stat"
	fi
}

wait_console IO-START 150 || { rc=0; wait $job || rc=$?; fail "the guest never reached IO-START (status $rc)"; }
pid=$(pgrep -x petrel-vmm | head -n1)
[ -n "$pid" ] || fail "no petrel-vmm process"
task=
names=
for t in /proc/$pid/task/*; do
	n=$(cat "$t/comm")
	names="$names $n"
	[ "$n" = "$comm" ] && task=$t
done
[ -n "$task" ] || fail "no thread named $comm among:$names"
grep -q '^Seccomp:[[:space:]]*2' "$task/status" || fail "the iothread has no seccomp filter"
before=$(cpu_time "$task")
wait_console IO-END 150 || { rc=0; wait $job || rc=$?; fail "the guest never reached IO-END (status $rc)"; }
after=$(cpu_time "$task")
echo "iothread $comm: CPU time $before -> $after"
[ "$after" -gt "$before" ] || fail "the iothread's CPU time did not grow ($before -> $after) while the guest read"

rc=0
wait $job || rc=$?
[ $rc = 0 ] || fail "petrel-vmm exited with status $rc"
assert_console "PETREL-TEST-EXIT=0"
want=$(grep -a '^WANT-SUM' "$T/console" | cut -d' ' -f2 | tr -d '\r')
[ -n "$want" ] || fail "no WANT-SUM on the console"
assert_console "GUEST-SUM $want"
host=$(dd if="$disk" bs=4096 skip=1024 count=512 status=none | md5sum | cut -c1-32)
assert_eq "$host" "$want" "the host's checksum of what the guest wrote"
assert_not_contains "$T/stderr" "virtio-blk"

# A NIC on an iothread too (its tap read and written there, under the
# iothread filter): the guest pings the host end of the tap.
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && command -v ip >/dev/null; then
	ns=petrel-io-$$
	ip netns add "$ns"
	on_exit "ip netns del $ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" tuntap add dev tap0 mode tap
	ip -n "$ns" addr add 10.78.0.1/24 dev tap0
	ip -n "$ns" link set tap0 up
	script='ip link set eth0 up
ip addr add 10.78.0.2/24 dev eth0
ping -c 3 -W 10 10.78.0.1 >/dev/null && echo PING-OK'
	rc=0
	ip netns exec "$ns" timeout 180 "$VMM" -machine microvm -m 256 -smp 1 -kernel "$KERNEL" \
		-initrd "$TEST_INITRD" -append "$GUEST_APPEND petrel.script=$(b64 "$script")" -serial stdio \
		-object iothread,id=net-io -netdev tap,id=n0,ifname=tap0 \
		-device virtio-net-device,netdev=n0,iothread=net-io </dev/null >"$T/console" 2>"$T/stderr" || rc=$?
	[ $rc = 0 ] || cat "$T/stderr"
	[ $rc = 0 ] || fail "NIC on an iothread: petrel-vmm exited with status $rc"
	assert_console "PING-OK"
	assert_console "PETREL-TEST-EXIT=0"
else
	echo "NIC on an iothread: not checked (needs root, /dev/net/tun and ip)"
fi
