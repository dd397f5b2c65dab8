#!/bin/bash
# petrel-vmm's virtio-net on an inherited tap fd (-netdev tap,fd=N, as the
# runtime passes it): the guest takes mac= and pings the host end of the tap.
# Fds that are not what they claim are start errors naming them: fd= that is
# not a tap, a tap without a vnet header, a vhostfd= that is not vhost-net.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/net.sh"
net_need_vmm_guest

ns=petrel-vf-$$
net_netns_add "$ns"
ip -n "$ns" link set lo up

# with-tap.py FLAGS CMD...: opens a non-persistent tap "tapfd0" (IFF_TAP |
# IFF_NO_PI, plus IFF_VNET_HDR when FLAGS is "vnet") as fd 3, gives the host
# end 10.78.0.1/24, and execs CMD with fd 3 inherited; the tap goes away with
# the VMM's last reference to it.
cat >"$T/with-tap.py" <<'EOF'
import fcntl, os, struct, subprocess, sys
TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000
flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if sys.argv[1] == "vnet" else 0)
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"tapfd0", flags))
subprocess.run(["ip", "addr", "add", "10.78.0.1/24", "dev", "tapfd0"], check=True)
subprocess.run(["ip", "link", "set", "tapfd0", "up"], check=True)
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.execvp(sys.argv[2], sys.argv[2:])
EOF
REAL_VMM=$VMM
printf '#!/bin/sh\nexec ip netns exec %s python3 %s vnet %s "$@"\n' "$ns" "$T/with-tap.py" "$REAL_VMM" >"$T/vmm-with-tap"
chmod +x "$T/vmm-with-tap"

script='cat /sys/class/net/eth0/address
ip link set eth0 up
ip addr add 10.78.0.2/24 dev eth0
ping -c 3 -W 10 10.78.0.1 || exit 1
echo NET-DONE'
VMM=$T/vmm-with-tap vmm_run_script "$script" \
	-netdev tap,id=n0,fd=3 -device virtio-net-device,netdev=n0,id=nic0,mac=52:54:00:ab:cd:ef ||
	fail "petrel-vmm exited with status $?"
assert_console "52:54:00:ab:cd:ef"
assert_console "3 packets transmitted, 3 packets received"
assert_console "NET-DONE"
assert_console "PETREL-TEST-EXIT=0"
# The tap was the VMM's alone: it is gone with it.
! ip -n "$ns" link show tapfd0 >/dev/null 2>&1 || fail "tapfd0 outlived the VMM"

# Start errors: petrel-vmm exits non-zero before the guest runs, naming the fd.
start_error() { # WANT CMD...
	local want=$1
	shift
	if "$@" -machine microvm -m 256 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
		-append "$GUEST_APPEND" </dev/null >"$T/out" 2>&1; then
		fail "petrel-vmm started with $*"
	fi
	assert_contains "$T/out" "$want" "petrel-vmm's error"
}
start_error "-netdev n0: fd=3: not a tap device" \
	sh -c 'exec "$0" "$@" 3</dev/null' "$REAL_VMM" -netdev tap,id=n0,fd=3 \
	-device virtio-net-device,netdev=n0,id=nic0
start_error "-netdev n0: fd=3: tap 'tapfd0' was opened without IFF_VNET_HDR" \
	ip netns exec "$ns" python3 "$T/with-tap.py" novnet "$REAL_VMM" -netdev tap,id=n0,fd=3 \
	-device virtio-net-device,netdev=n0,id=nic0
start_error "-netdev n0: vhostfd=4: not a vhost device" \
	ip netns exec "$ns" python3 "$T/with-tap.py" vnet sh -c 'exec "$0" "$@" 4</dev/null' \
	"$REAL_VMM" -netdev tap,id=n0,fd=3,vhost=on,vhostfd=4 -device virtio-net-device,netdev=n0,id=nic0
start_error "-netdev n0: open tap 'tapX': /dev/net/tun" \
	ip netns exec "$ns" unshare --mount sh -c 'mount -t tmpfs none /dev/net && exec "$0" "$@"' \
	"$REAL_VMM" -netdev tap,id=n0,ifname=tapX -device virtio-net-device,netdev=n0,id=nic0
