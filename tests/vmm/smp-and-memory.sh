#!/bin/bash
# -smp 4 gives the guest 4 CPUs; -m 1G gives it about 1 GiB of MemTotal.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
vmm_run_script 'echo CPUS=$(grep -c ^processor /proc/cpuinfo); grep MemTotal /proc/meminfo' -smp 4 -m 1G ||
	fail "petrel-vmm exited with status $?"
assert_console "CPUS=4"
kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' "$T/console" | tr -d '\r')
[ -n "$kb" ] || fail "no MemTotal on the console"
# 1 GiB less what the kernel reserves for itself: between 900 MiB and 1 GiB.
[ "$kb" -gt 921600 ] && [ "$kb" -le 1048576 ] || fail "MemTotal is $kb kB, expected about 1048576 kB"
