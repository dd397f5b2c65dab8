#!/bin/bash
# reboot=k: a guest reboot (through the i8042 reset line) ends the VMM with status 0.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
vmm_run_script 'echo about-to-reboot' || fail "petrel-vmm exited with status $? after the guest rebooted"
assert_console "about-to-reboot"
assert_console "PETREL-TEST-EXIT=0"
