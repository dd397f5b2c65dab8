#!/bin/bash
# -machine mem-share=on,dump-guest-core=off: guest RAM is a shared memfd mapping
# (/memfd:petrel-guest-ram in /proc/PID/maps, VmFlags "sh") left out of core
# dumps (VmFlags "dd"); by default it is private anonymous memory that a core
# dump includes. The guest boots and runs either way.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
script='echo RAM-UP; sleep 3'

# boot MACHINE: runs the guest with -machine MACHINE in the background ($job).
boot() {
	timeout 180 "$VMM" -machine "$1" -m 256 -smp 1 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
		-append "$GUEST_APPEND petrel.script=$(b64 "$script")" -serial stdio \
		</dev/null >"$T/console" 2>"$T/stderr" &
	job=$!
}
# ram_mapping: the maps line and VmFlags of the 256 MiB mapping of the running VMM.
ram_mapping() {
	local pid
	pid=$(vmm_pid_when RAM-UP "$job") || return 1
	awk '/^[0-9a-f]+-[0-9a-f]+ / {m = $0} /^Size: +262144 kB/ {f = 1} f && /^VmFlags/ {print m; print; exit}' \
		"/proc/$pid/smaps"
}
finish() {
	local rc=0
	wait $job || rc=$?
	[ $rc = 0 ] || { cat "$T/stderr"; fail "-machine $1: petrel-vmm exited with status $rc"; }
	assert_console "PETREL-TEST-EXIT=0"
}

boot microvm,mem-share=on,dump-guest-core=off
ram_mapping >"$T/map" || true
finish mem-share=on
cat "$T/map"
assert_contains "$T/map" "/memfd:petrel-guest-ram" "the guest RAM mapping with mem-share=on"
grep -q '^VmFlags:.* sh' "$T/map" || fail "mem-share=on: the RAM mapping is not shared"
grep -q '^VmFlags:.* dd' "$T/map" || fail "dump-guest-core=off: the RAM mapping is not marked don't-dump"

boot microvm
ram_mapping >"$T/map" || true
finish default
cat "$T/map"
grep -q '^VmFlags' "$T/map" || fail "no 256 MiB mapping found"
assert_not_contains "$T/map" "memfd" "the default guest RAM mapping"
! grep -q '^VmFlags:.* sh' "$T/map" || fail "by default the RAM mapping is shared"
! grep -q '^VmFlags:.* dd' "$T/map" || fail "by default the RAM mapping is left out of core dumps"
