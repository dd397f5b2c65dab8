#!/bin/bash
# petrel-vmm's virtio-net on a tap it opens by name (-netdev tap,ifname=): in a
# network namespace of its own, the guest gets the documented default MAC,
# pings the host end of the tap and moves 8 MiB each way over TCP with the
# checksums matching; vhost=on without /dev/vhost-net falls back to the
# userspace path with a warning.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/net.sh"
net_need_vmm_guest

ns=petrel-vn-$$
net_tap_netns "$ns" 10.77.0.1/24
net_transfer_start "$ns" 10.77.0.1

script='cat /sys/class/net/eth0/address
ip link set eth0 up
ip addr add 10.77.0.2/24 dev eth0
ping -c 3 -W 10 10.77.0.1 || exit 1
'"$(net_transfer_guest 10.77.0.1)"'
echo NET-DONE'
# vmm_run_script runs "$VMM": make that petrel-vmm inside the namespace.
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$ns" "$VMM" >"$T/vmm-in-ns"
chmod +x "$T/vmm-in-ns"
VMM=$T/vmm-in-ns vmm_run_script "$script" -name netvm \
	-netdev tap,id=n0,ifname=tap0,vhost=on -device virtio-net-device,netdev=n0,id=nic0 ||
	fail "petrel-vmm exited with status $?"
assert_console "NET-DONE"
net_transfer_check

# The default MAC: 52:54:00 and the low 24 bits of FNV-1a("<VM name>/<device id>").
want_mac=$(python3 -c '
h = 2166136261
for c in b"netvm/nic0":
    h = ((h ^ c) * 16777619) & 0xffffffff
print("52:54:00:%02x:%02x:%02x" % ((h >> 16) & 255, (h >> 8) & 255, h & 255))')
assert_console "$want_mac"
assert_console "3 packets transmitted, 3 packets received"
assert_console "NET-DONE"
assert_console "PETREL-TEST-EXIT=0"
# Without vhost_net loaded (the testbed's default; vmm-net-vhost.sh loads it).
if [ ! -c /dev/vhost-net ]; then
	assert_contains "$T/stderr" "vhost-net is not available" "petrel-vmm's stderr (vhost=on)"
	assert_contains "$T/stderr" "using the userspace virtio-net path" "petrel-vmm's stderr (vhost=on)"
fi
