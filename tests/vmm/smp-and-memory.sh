#!/bin/bash
# -smp 4 gives the guest 4 CPUs; -m 1G gives it about 1 GiB of MemTotal. The
# guest's spin locks are paravirtual (KVM_FEATURE_PV_UNHALT from petrel-vmm's
# CPUID, CONFIG_PARAVIRT_SPINLOCKS): a waiter halts instead of spinning on a
# preempted holder.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
vmm_run_script 'echo CPUS=$(grep -c ^processor /proc/cpuinfo); grep MemTotal /proc/meminfo; dmesg | grep -m1 "PV spinlocks"' -smp 4 -m 1G ||
	fail "petrel-vmm exited with status $?"
assert_console "CPUS=4"
kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' "$T/console" | tr -d '\r')
[ -n "$kb" ] || fail "no MemTotal on the console"
# 1 GiB less what the kernel reserves for itself: between 900 MiB and 1 GiB.
[ "$kb" -gt 921600 ] && [ "$kb" -le 1048576 ] || fail "MemTotal is $kb kB, expected about 1048576 kB"
assert_console "kvm-guest: PV spinlocks enabled"
