#!/bin/bash
# The runtime's path to petrel-agent: hybrid vsock on uds-path, "CONNECT 1024"
# (agent_connect_hybrid), and the agent answers hello. The socket is removed
# when petrel-vmm ends.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
echo "[$(date +%T)] agent build"
"$PROJ/guest/agent/build.sh" "$GUEST" >/dev/null || fail "guest/agent/build.sh failed"
echo "[$(date +%T)] boot"
client=$BUILD/tests-tools/agent-client
uds=$T/agent.vsock
timeout 170 "$VMM" -machine microvm -m 256 -smp 1 -kernel "$KERNEL" \
	-initrd "$GUEST/agent-initramfs.cpio.gz" -append "console=ttyS0 reboot=k panic=-1" \
	-serial stdio -device vhost-vsock-device,id=agent,guest-cid=3,uds-path="$uds" \
	</dev/null >"$T/console" 2>"$T/stderr" &
vmm=$!
on_exit "kill $vmm 2>/dev/null"
"$client" --uds "$uds" --wait 150 hello >"$T/hello" 2>&1 ||
	{ cat "$T/hello"; tail -n 20 "$T/console"; cat "$T/stderr"; fail "the agent did not answer over $uds"; }
echo "[$(date +%T)] hello answered"
assert_contains "$T/hello" "petrel-agent"
kill -TERM $vmm
wait $vmm || true
[ ! -e "$uds" ] || fail "$uds was not removed when petrel-vmm exited"
