#!/bin/bash
# vhost-vsock (no uds-path, /dev/vhost-vsock present): a host AF_VSOCK client
# reaches a guest listener, 16 MiB go each way with matching checksums, and a
# second VM asking for the same guest-cid fails to start, naming the cid.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/vsock.sh"
need_kvm
need_vmm
need_cmd python3
vsock_need_vhost
vsock_initrd
head -c 16777216 /dev/urandom >"$T/host.bin"
cid=$((1000 + RANDOM))
# Port 5001 is a rendezvous: once it answers, the VM holds its cid.
script="head -c 16777216 /dev/urandom >/tmp/g.bin
vsock-tool listen 5001 </dev/null >/dev/null
vsock-tool listen 5000 </tmp/g.bin >/tmp/h.bin || echo VSOCK-TOOL-FAILED
$VSOCK_GUEST_SUMS"
vmm_run_script "$script" -device vhost-vsock-device,id=vsock0,guest-cid=$cid &
vmm=$!
on_exit "kill $vmm 2>/dev/null"
timeout 170 python3 "$VSOCK_HOST" vsock "$cid" 5001 /dev/null /dev/null >/dev/null ||
	fail "the guest never answered on vsock $cid:5001"
rc=0
timeout 60 "$VMM" -machine microvm -m 256 -kernel "$KERNEL" \
	-device vhost-vsock-device,id=vsock1,guest-cid=$cid </dev/null >"$T/second.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a second VM with guest-cid $cid started"
[ "$rc" != 124 ] || fail "a second VM with guest-cid $cid neither started nor failed"
echo "second VM: $(tail -n 1 "$T/second.out")"
assert_contains "$T/second.out" "guest-cid $cid"
timeout 170 python3 "$VSOCK_HOST" vsock "$cid" 5000 "$T/host.bin" "$T/got.bin" >"$T/host.out" ||
	{ cat "$T/host.out"; fail "the host side of the transfer failed"; }
wait $vmm || fail "petrel-vmm exited with status $?"
assert_not_contains "$T/console" "VSOCK-TOOL-FAILED"
assert_console "GUEST-GOT $(vsock_sum "$T/host.bin")"
assert_console "GUEST-SENT $(vsock_sum "$T/got.bin")"
assert_eq "$(stat -c %s "$T/got.bin")" 16777216 "bytes received from the guest"
