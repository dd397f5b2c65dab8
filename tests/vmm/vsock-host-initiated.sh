#!/bin/bash
# Hybrid vsock, host-initiated: "CONNECT 5000" on uds-path reaches a guest
# listener; 16 MiB go each way and both sides' checksums match.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/vsock.sh"
vsock_hybrid_prepare
head -c 16777216 /dev/urandom >"$T/host.bin"
script="head -c 16777216 /dev/urandom >/tmp/g.bin
vsock-tool listen 5000 </tmp/g.bin >/tmp/h.bin || echo VSOCK-TOOL-FAILED
$VSOCK_GUEST_SUMS"
vmm_run_script "$script" -device vhost-vsock-device,id=vsock0,guest-cid=3,uds-path="$uds" &
vmm=$!
on_exit "kill $vmm 2>/dev/null"
timeout 170 python3 "$VSOCK_HOST" hybrid "$uds" 5000 "$T/host.bin" "$T/got.bin" >"$T/host.out" ||
	{ cat "$T/host.out"; fail "the host side of the transfer failed"; }
wait $vmm || fail "petrel-vmm exited with status $?"
assert_contains "$T/host.out" "reply: OK "
vsock_check_transfer
[ ! -e "$uds" ] || fail "$uds was not removed when petrel-vmm exited"
