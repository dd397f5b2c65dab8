#!/bin/bash
# The runtime's path with petrel-vmm: `petrel-netsetup container-prepare
# --netns NS -- petrel-vmm … -netdev tap,id=n0,fd=3` prepares the container's
# namespace and execs the VMM with the tap's fd, so the VMM runs outside the
# namespace. The agent configures eth0 from the printed `network` object,
# the container pings the veth's host end and moves data both ways over TCP.
# Then the VMM is killed with -9: its non-persistent tap goes with it, and
# container-cleanup removes the rest, leaving the namespace as it was.
. "$(dirname "$0")/../agent/helpers.bash"
. "$(dirname "$0")/../lib/net.sh"
net_need_netsetup
need_cmd tc
need_cmd python3
need_vmm
agent_prepare
case "$("$VMM" -device help 2>&1 || true)" in
*virtio-net-device*) ;;
*) skip "petrel-vmm has no virtio-net-device yet" ;;
esac
APPLETS="$APPLETS ping nc"

net_container_netns petrel-vh-$$ petrel-vc-$$
net_container_veth
net_container_listing >"$T/before"
mac=$(net_container_mac)

marker=petrel-vnet-$RANDOM$RANDOM
cat >"$T/server.py" <<'PY'
import sys
from tcppeer import accept_one
marker = sys.argv[1]
c = accept_one("10.99.0.1", 5000)
got = b""
while not got.endswith(b"END\n"):
    chunk = c.recv(65536)
    if not chunk:
        break
    got += chunk
c.sendall(("down-" + marker + " got %d\n" % len(got)).encode() + b"b" * 100000)
c.close()
PY
ip netns exec "$host" env PYTHONPATH="$PROJ/tests/lib" python3 "$T/server.py" "$marker" >"$T/server.out" 2>&1 &
server=$!
on_exit "kill $server 2>/dev/null"

make_rootfs "$T/rootfs.ext4"
CID=$((1000 + RANDOM))
step "container-prepare -- petrel-vmm"
"$NETSETUP" container-prepare --netns "$CT" --tap tap0 -- \
	"$VMM" -machine microvm -m 512 -smp 1 -kernel "$KERNEL" -initrd "$AGENT_INITRD" \
	-append "console=ttyS0 reboot=k panic=-1 petrel.agent.debug=1" \
	-drive id=root,file="$T/rootfs.ext4" -device virtio-blk-device,drive=root \
	-device vhost-vsock-device,id=vsock0,guest-cid=$CID \
	-netdev tap,id=n0,fd=3 -device virtio-net-device,netdev=n0,mac="$mac" \
	-serial file,path="$T/console.log" </dev/null >"$T/prepare.out" 2>"$T/vmm.err" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
mkdir -p "$PROJ/build/test-logs"
on_exit "cp '$T/console.log' '$PROJ/build/test-logs/net_container-net-vmm.console.log' 2>/dev/null"
for _ in $(seq 1 100); do grep -q '^{' "$T/prepare.out" 2>/dev/null && break; sleep 0.1; done
head -n 1 "$T/prepare.out" >"$T/network.json"
cat "$T/network.json"
assert_contains "$T/network.json" "\"mac\":\"$mac\"" "the network object"
# The VMM is not in the container's namespace; the tap is, through its fd.
[ "$(readlink /proc/$vmm/ns/net)" = "$(readlink /proc/self/ns/net)" ] ||
	fail "petrel-vmm runs in another network namespace"
ipn "$ct" link show tap0 >/dev/null || fail "no tap0 in the container's namespace"

script="ip addr show eth0
ping -c 3 -W 10 10.99.0.1 || exit 1
{ echo up-$marker; head -c 150000 /dev/zero; echo; echo END; } | nc -w 20 10.99.0.1 5000 >/tmp/got || exit 3
head -n 1 /tmp/got
wc -c </tmp/got"
net_run_container "$script" "$T/vmm.err"
assert_contains "$T/out" "inet 10.99.0.2/24" "the container's eth0"
assert_contains "$T/out" "3 packets transmitted, 3 packets received" "ping 10.99.0.1"
sent=$((${#marker} + 4 + 150000 + 1 + 4))
assert_contains "$T/out" "down-$marker got $sent" "what the host received and sent back"
wait "$server" || fail "the host's server failed"

step "kill -9 petrel-vmm, then container-cleanup"
kill -9 "$vmm"
wait "$vmm" 2>/dev/null || true
for _ in $(seq 1 50); do ipn "$ct" link show tap0 >/dev/null 2>&1 || break; sleep 0.1; done
! ipn "$ct" link show tap0 >/dev/null 2>&1 || fail "tap0 outlived the VMM's fd"
"$NETSETUP" container-cleanup --netns "$CT" --tap tap0 || fail "container-cleanup"
net_container_listing >"$T/after"
diff -u "$T/before" "$T/after" || fail "container-cleanup left something behind"
echo "petrel-vmm with the tap fd: ping and TCP both ways; kill -9 and cleanup leave nothing"
