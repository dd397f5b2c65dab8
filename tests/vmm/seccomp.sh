#!/bin/bash
# Seccomp (docs/seccomp.md): a guest boots and does disk I/O with the filters on
# (the default), and every VMM thread (main, vcpuN, the iothread) runs under
# exactly one filter, its own; a forbidden system call on any of them kills
# the VMM with SIGSYS (status 159), through the PETREL_SECCOMP_SELFTEST hook;
# -disable-seccomp leaves the threads unfiltered.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
disk=$T/disk.img
truncate -s 16M "$disk"
devices=(-object iothread,id=iothread0 -drive id=d0,file="$disk" -device virtio-blk-device,drive=d0,iothread=iothread0)
script='echo hello | dd of=/dev/vda bs=512 conv=sync,fsync status=none
echo "READ-BACK $(head -c 5 /dev/vda)"
echo THREADS-UP
sleep 3'

# threads_status: "comm Seccomp Seccomp_filters" for each thread of the running VMM.
threads_status() {
	local pid t
	pid=$(vmm_pid_when THREADS-UP "$job") || return 1
	for t in /proc/$pid/task/*; do
		echo "$(cat "$t/comm") $(awk '/^Seccomp:/ {s = $2} /^Seccomp_filters:/ {f = $2} END {print s, f}' "$t/status")"
	done
}

# run_listing_threads ARGS...: the script with petrel-vmm ARGS, its threads in
# $T/threads while it runs; returns its status.
run_listing_threads() {
	local rc=0
	vmm_run_script "$script" "$@" &
	job=$!
	threads_status >"$T/threads" || true
	wait $job || rc=$?
	cat "$T/threads"
	return $rc
}

# With the filters (the default).
rc=0
run_listing_threads "${devices[@]}" || rc=$?
[ $rc = 0 ] || fail "with seccomp: petrel-vmm exited with status $rc"
assert_console "READ-BACK hello"
assert_console "PETREL-TEST-EXIT=0"
for name in petrel-vmm vcpu0 iothread0; do
	grep -q "^$name " "$T/threads" || fail "no thread named $name"
	# KVM's own workers (kvm-nx-lpage-re) inherit a filter too; ours have exactly one.
	grep -q "^$name 2 1$" "$T/threads" || fail "thread $name: $(grep "^$name " "$T/threads"), expected Seccomp 2 with 1 filter"
done
if awk '$2 != 2' "$T/threads" | grep -q .; then
	fail "unfiltered threads: $(awk '$2 != 2' "$T/threads" | tr '\n' ' ')"
fi

# A forbidden call on each class of thread: SIGSYS ends the whole VMM.
for class in main vcpu iothread; do
	rc=0
	PETREL_SECCOMP_SELFTEST=$class vmm_run_script "$script" "${devices[@]}" >/dev/null || rc=$?
	assert_eq "$rc" 159 "with PETREL_SECCOMP_SELFTEST=$class, petrel-vmm's status (128 + SIGSYS)"
	assert_contains "$T/stderr" "PETREL_SECCOMP_SELFTEST: calling ptrace on a $class thread"
	assert_not_contains "$T/stderr" "ptrace returned"
done
dmesg 2>/dev/null | grep -a 'type=1326' | tail -n 3 || true

# -disable-seccomp: no filter anywhere.
rc=0
run_listing_threads -disable-seccomp "${devices[@]}" || rc=$?
[ $rc = 0 ] || fail "-disable-seccomp: petrel-vmm exited with status $rc"
for name in petrel-vmm vcpu0 iothread0; do
	grep -q "^$name 0 0$" "$T/threads" || fail "-disable-seccomp: thread $name: $(grep "^$name " "$T/threads")"
done
