#!/bin/bash
# Hybrid vsock, guest-initiated: a guest connect to cid 2 port 6000 reaches the
# host's unix socket <uds-path>_6000; 16 MiB go each way, checksums match.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/vsock.sh"
vsock_hybrid_prepare
head -c 16777216 /dev/urandom >"$T/host.bin"
timeout 170 python3 "$VSOCK_HOST" listen "${uds}_6000" "$T/host.bin" "$T/got.bin" >"$T/host.out" 2>&1 &
host=$!
on_exit "kill $host 2>/dev/null"
for _ in $(seq 50); do [ -S "${uds}_6000" ] && break; sleep 0.1; done
script="head -c 16777216 /dev/urandom >/tmp/g.bin
vsock-tool connect 2 6000 </tmp/g.bin >/tmp/h.bin || echo VSOCK-TOOL-FAILED
$VSOCK_GUEST_SUMS"
vmm_run_script "$script" -device vhost-vsock-device,id=vsock0,guest-cid=3,uds-path="$uds" ||
	fail "petrel-vmm exited with status $?"
wait $host || { cat "$T/host.out"; fail "the host side of the transfer failed"; }
vsock_check_transfer
