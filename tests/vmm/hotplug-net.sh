#!/bin/bash
# NIC hot plug over QMP: the VMM runs in a scratch network namespace with a
# boot NIC (eth0, on tap0) and a second tap, tap1 (10.0.99.1/24). netdev_add +
# device_add virtio-net-mmio plug a NIC on tap1 into the replaceable net
# slot; the guest binds the slot, gets eth1, pings 10.0.99.1. Then the guest
# unbinds eth1's driver first, so device_del completes at once with
# DEVICE_DELETED; the slot can be filled again. See docs/vmm.md "Hotplug".
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/net.sh"
net_need_vmm_guest
ns=petrel-hp-$$
net_tap_netns "$ns" 10.0.98.1/24
ip -n "$ns" tuntap add dev tap1 mode tap
ip -n "$ns" addr add 10.0.99.1/24 dev tap1
ip -n "$ns" link set tap1 up

script='bind_all() {
	for d in /sys/bus/platform/devices/virtio-mmio.*; do
		[ -e "$d/driver" ] || echo "${d##*/}" >/sys/bus/platform/drivers/virtio-mmio/bind 2>/dev/null
	done
}
echo "hp-booted $(ls /sys/class/net | tr "\n" " ")"
i=0
while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 600 ]; do bind_all; sleep 0.5; i=$((i + 1)); done
[ -e /sys/class/net/eth1 ] || { echo hp-no-eth1; exit 1; }
echo "hp-eth1-mac=$(cat /sys/class/net/eth1/address)"
ip addr add 10.0.99.2/24 dev eth1
ip link set eth1 up
if ping -c 3 -W 5 10.0.99.1; then echo hp-ping-ok; else echo hp-ping-failed; fi
slot=$(basename "$(readlink -f /sys/class/net/eth1/device/..)")
echo "$slot" >/sys/bus/platform/drivers/virtio-mmio/unbind
[ -e /sys/class/net/eth1 ] || echo hp-eth1-gone
echo hp-guest-done
sleep 600'
timeout 400 ip netns exec "$ns" "$VMM" -machine microvm -m 256 -smp 1 -kernel "$KERNEL" \
	-initrd "$TEST_INITRD" -append "$GUEST_APPEND petrel.script=$(b64 "$script")" -serial stdio \
	-netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=nic0 \
	-qmp unix:"$T/qmp.sock",server,nowait </dev/null >"$T/console" 2>"$T/stderr" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
PYTHONPATH=$PROJ/tests/lib timeout 380 python3 - "$T/qmp.sock" "$T/console" <<'PY' ||
import sys, time
from qmpclient import QMP, wait_for_text
sock, console = sys.argv[1:3]

def wait_console(text, timeout=300):
    wait_for_text(console, text, timeout, give_up="hp-no-")

q = QMP(sock)
q.negotiate()
wait_console("hp-booted")
ok = {"return": {}}
r = q.cmd("netdev_add", {"id": "net1", "fd": "3"})
assert "ifname" in r["error"]["desc"], r
r = q.cmd("netdev_add", {"id": "net0", "ifname": "tap1"})
assert "Duplicate" in r["error"]["desc"], r
r = q.cmd("netdev_add", {"id": "net1", "ifname": "tap1"})
assert r == ok, r
r = q.cmd("device_add", {"driver": "virtio-blk-mmio", "id": "nic1", "drive": "net1"})
assert "is a netdev" in r["error"]["desc"], r
r = q.cmd("device_add", {"driver": "virtio-net-mmio", "id": "nic1", "netdev": "net1",
                         "mac": "52:54:00:12:34:99"})
assert r == ok, r
# The only net slot is taken now.
r = q.cmd("netdev_add", {"id": "net2", "ifname": "tap1"})
assert r == ok, r
r = q.cmd("device_add", {"driver": "virtio-net-mmio", "id": "nic2", "netdev": "net2"})
assert "No free virtio-net-mmio slot" in r["error"]["desc"], r
r = q.cmd("netdev_del", {"id": "net2"})
assert r == ok, r
wait_console("hp-guest-done")
r = q.cmd("device_del", {"id": "nic1"})
assert r == ok, r
ev = q.wait_event("DEVICE_DELETED", timeout=30)
assert ev["data"]["device"] == "nic1", ev
print("DEVICE_DELETED:", ev)
r = q.cmd("netdev_del", {"id": "net1"})
assert r == ok, r
# The slot is free again.
r = q.cmd("netdev_add", {"id": "net3", "ifname": "tap1"})
assert r == ok, r
r = q.cmd("device_add", {"driver": "virtio-net-mmio", "id": "net3"})
assert r == ok, r
r = q.cmd("quit")
assert r == ok, r
print("hotplug-net ok")
PY
	{ cat "$T/stderr"; tail -n 30 "$T/console"; fail "hotplug conversation failed"; }
wait $vmm || true
assert_console "hp-eth1-mac=52:54:00:12:34:99"
assert_console "hp-ping-ok"
assert_console "hp-eth1-gone"
