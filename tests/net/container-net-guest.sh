#!/bin/bash
# A container's network namespace made by hand as podman would (a veth pair,
# host end 10.99.0.1/24, container end eth0 10.99.0.2/24 + fd99::2/64, MTU
# 1400, a default route), prepared by `petrel-netsetup container-prepare`
# (the library's netsetup_container_prepare), and a real guest: petrel-agent
# gets the printed `network` object in its create message and gives the
# guest's eth0 the veth's MAC, MTU, addresses and routes. The container pings
# the host end over IPv4 and IPv6 and moves data both ways over TCP; then
# container-cleanup leaves the namespace as it was. QEMU's microvm is the VMM
# (petrel-vmm takes the same -netdev/-device options).
. "$(dirname "$0")/../agent/helpers.bash"
. "$(dirname "$0")/../lib/net.sh"
net_need_netsetup
need_cmd tc
need_cmd python3
agent_prepare
APPLETS="$APPLETS ping ping6 nc"

net_container_netns petrel-ch-$$ petrel-cc-$$
net_container_veth 1400
ipn "$host" link set lo up
ipn "$host" addr add fd99::1/64 dev vh0 nodad
ipn "$ct" link set lo up
ipn "$ct" addr add fd99::2/64 dev eth0 nodad

listing() {
	net_container_listing
	# Global addresses only: the link's carrier state and its link-local
	# address come and go with the peer, and are not cleanup's business.
	ip -n "$ct" -o addr show dev eth0 scope global | awk '{print $2, $3, $4}'
	ip -n "$ct" route show
}
listing >"$T/before"

step "container-prepare"
"$NETSETUP" container-prepare --netns "$CT" --tap tap0 >"$T/network.json" ||
	fail "container-prepare"
cat "$T/network.json"
mac=$(net_container_mac)
assert_contains "$T/network.json" "\"mac\":\"$mac\"" "the network object"
assert_contains "$T/network.json" '"mtu":1400' "the network object"
assert_contains "$T/network.json" '"addresses":["10.99.0.2/24","fd99::2/64"]' "the network object"
assert_contains "$T/network.json" '{"destination":"0.0.0.0/0","gateway":"10.99.0.1","interface":"eth0"}' \
	"the network object"
tc -n "$ct" filter show dev eth0 ingress >"$T/f-eth0"
assert_contains "$T/f-eth0" "mirred (Egress Redirect to device tap0) stolen" "eth0's filters"
ipn "$ct" -d link show tap0 >"$T/tap0"
assert_contains "$T/tap0" "mtu 1400" "tap0"
assert_contains "$T/tap0" "vnet_hdr on" "tap0"

# The host side: a TCP server that reads what the container sends, then
# sends its own data back on the same connection.
marker=petrel-cnet-$RANDOM$RANDOM
cat >"$T/server.py" <<'PY'
import sys
from tcppeer import accept_one
marker, out = sys.argv[1], sys.argv[2]
c = accept_one("10.99.0.1", 5000)
got = b""
while len(got) < 200000 + len("up-" + marker + "\n"):
    chunk = c.recv(65536)
    if not chunk:
        break
    got += chunk
with open(out, "w") as f:
    f.write("%s %d\n" % (got.split(b"\n", 1)[0].decode(errors="replace"), len(got)))
c.sendall(("down-" + marker + "\n").encode() + b"b" * 300000)
c.close()
PY
ip netns exec "$host" env PYTHONPATH="$PROJ/tests/lib" python3 "$T/server.py" "$marker" "$T/server.out" &
server=$!
on_exit "kill $server 2>/dev/null"

step "boot the guest in the container's namespace"
make_rootfs "$T/rootfs.ext4"
CID=$((1000 + RANDOM))
ip netns exec "$ct" qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m 512 -smp 2 \
	-nodefaults -no-user-config -nographic -no-reboot -serial "file:$T/console.log" \
	-kernel "$KERNEL" -initrd "$AGENT_INITRD" \
	-append "console=ttyS0 reboot=t panic=-1 petrel.agent.debug=1" \
	-drive "id=root,file=$T/rootfs.ext4,format=raw,if=none" -device virtio-blk-device,drive=root \
	-device "vhost-vsock-device,guest-cid=$CID" \
	-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off,vnet_hdr=on \
	-device "virtio-net-device,netdev=n0,mac=$mac" >"$T/qemu.log" 2>&1 &
QEMU_PID=$!
on_exit "kill $QEMU_PID 2>/dev/null; wait $QEMU_PID 2>/dev/null"
mkdir -p "$PROJ/build/test-logs"
on_exit "cp '$T/console.log' '$PROJ/build/test-logs/net_container-net-guest.console.log' 2>/dev/null"

script="cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu
ip addr show eth0
ip route
ip -6 route
ping -c 3 -W 10 10.99.0.1 || exit 1
ping6 -c 2 -W 10 fd99::1 || exit 2
{ echo up-$marker; head -c 200000 /dev/zero; } | nc -w 20 10.99.0.1 5000 >/tmp/got || exit 3
head -n 1 /tmp/got
wc -c </tmp/got"
net_run_container "$script"
assert_contains "$T/out" "$mac" "the container's eth0"
assert_contains "$T/out" "1400" "the container's eth0 MTU"
assert_contains "$T/out" "inet 10.99.0.2/24" "the container's eth0"
assert_contains "$T/out" "inet6 fd99::2/64" "the container's eth0"
assert_contains "$T/out" "default via 10.99.0.1 dev eth0" "the container's routes"
assert_contains "$T/out" "3 packets transmitted, 3 packets received" "ping 10.99.0.1"
assert_contains "$T/out" "2 packets transmitted, 2 packets received" "ping6 fd99::1"
assert_contains "$T/out" "down-$marker" "the data the host sent"
assert_contains "$T/out" "$((300000 + ${#marker} + 6))" "the byte count the container received"
wait "$server" || fail "the host's server failed"
assert_eq "$(cat "$T/server.out")" "up-$marker $((200000 + ${#marker} + 4))" "what the host received"

step "shutdown"
client shutdown >/dev/null || fail "shutdown request failed"
for _ in $(seq 1 300); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$QEMU_PID" 2>/dev/null || fail "QEMU did not exit after the shutdown"

step "container-cleanup, twice"
"$NETSETUP" container-cleanup --netns "$CT" --tap tap0 || fail "container-cleanup"
"$NETSETUP" container-cleanup --netns "$CT" --tap tap0 || fail "container-cleanup is not idempotent"
listing >"$T/after"
diff -u "$T/before" "$T/after" || fail "container-cleanup left something behind"
echo "container network: guest took the veth's place, ping and TCP both ways, cleaned up"
