#!/bin/bash
# Hybrid vsock without a listener: the guest's connect to a host port nobody
# serves fails with ECONNRESET, and a host CONNECT to a guest port nobody
# listens on is closed without "OK".
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/vsock.sh"
vsock_hybrid_prepare
# The guest ends when the host, done with its check, connects to port 5002.
script='vsock-tool connect 2 6001 </dev/null; echo "GUEST-CONNECT-RC=$?"
vsock-tool listen 5002 </dev/null >/dev/null'
vmm_run_script "$script" -device vhost-vsock-device,id=vsock0,guest-cid=3,uds-path="$uds" &
vmm=$!
on_exit "kill $vmm 2>/dev/null"
timeout 170 python3 "$VSOCK_HOST" hybrid-refused "$uds" 5001 >"$T/host.out" ||
	{ cat "$T/host.out"; fail "the host CONNECT to a port without listener was not refused"; }
assert_contains "$T/host.out" "closed without OK"
timeout 170 python3 "$VSOCK_HOST" hybrid "$uds" 5002 /dev/null /dev/null >/dev/null ||
	fail "could not end the guest through port 5002"
wait $vmm || fail "petrel-vmm exited with status $?"
assert_console "GUEST-CONNECT-RC=2"
grep -qE "connect 2:6001: (Connection reset by peer|Connection refused)" "$T/console" ||
	{ tail -n 20 "$T/console"; fail "the guest's connect did not fail with ECONNRESET/ECONNREFUSED"; }
