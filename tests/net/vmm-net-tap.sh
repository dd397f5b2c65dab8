#!/bin/bash
# petrel-vmm's virtio-net on a tap it opens by name (-netdev tap,ifname=): in a
# network namespace of its own, the guest gets the documented default MAC,
# pings the host end of the tap and moves 8 MiB each way over TCP with the
# checksums matching; vhost=on without /dev/vhost-net falls back to the
# userspace path with a warning.
. "$(dirname "$0")/../lib/common.sh"
[ "$(id -u)" = 0 ] || skip "needs root to make network namespaces and taps"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
need_kvm
need_vmm
need_cmd ip
need_cmd python3
{ [ -f "$KERNEL" ] && [ -f "$TEST_INITRD" ]; } || skip "no guest kernel or test initramfs in $GUEST (run make guest)"

ns=petrel-vn-$$
ip netns add "$ns" || skip "cannot create a network namespace (ip netns add)"
on_exit "ip netns del $ns"
ip -n "$ns" link set lo up
# Persistent, so that the host side can be configured before the VMM attaches.
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" addr add 10.77.0.1/24 dev tap0
ip -n "$ns" link set tap0 up

# 8 MiB to the guest on port 5002; what the guest sends on port 5001 to a file.
head -c 8M /dev/urandom >"$T/down.bin"
down_sum=$(sha256sum <"$T/down.bin" | cut -d' ' -f1)
cat >"$T/server.py" <<'EOF'
import socket, sys, threading
down, up = sys.argv[1], sys.argv[2]
def listener(port):
    s = socket.socket()
    s.settimeout(600)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.77.0.1", port))
    s.listen(1)
    return s
rx, tx = listener(5001), listener(5002)
open(sys.argv[3], "w").close()  # listening
def receive():
    c, _ = rx.accept()
    with open(up, "wb") as f:
        while True:
            b = c.recv(65536)
            if not b:
                break
            f.write(b)
    c.close()
def send():
    c, _ = tx.accept()
    with open(down, "rb") as f:
        c.sendall(f.read())
    c.close()
threads = [threading.Thread(target=receive), threading.Thread(target=send)]
for t in threads:
    t.start()
for t in threads:
    t.join()
EOF
ip netns exec "$ns" python3 "$T/server.py" "$T/down.bin" "$T/up.bin" "$T/listening" &
server=$!
on_exit "kill $server 2>/dev/null"
# A loaded testbed may take seconds to start python: the guest must not find
# the ports closed.
for _ in $(seq 1 120); do [ -e "$T/listening" ] && break; sleep 0.5; done
[ -e "$T/listening" ] || fail "the host-side server did not start"

script='cat /sys/class/net/eth0/address
ip link set eth0 up
ip addr add 10.77.0.2/24 dev eth0
ping -c 3 -W 10 10.77.0.1 || exit 1
nc 10.77.0.1 5002 </dev/null >/tmp/down || exit 2
echo "DOWN-SUM $(sha256sum /tmp/down | cut -d" " -f1)"
head -c 8388608 /dev/urandom >/tmp/up
echo "UP-SUM $(sha256sum /tmp/up | cut -d" " -f1)"
nc 10.77.0.1 5001 </tmp/up || exit 3
echo NET-DONE'
# vmm_run_script runs "$VMM": make that petrel-vmm inside the namespace.
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$ns" "$VMM" >"$T/vmm-in-ns"
chmod +x "$T/vmm-in-ns"
VMM=$T/vmm-in-ns vmm_run_script "$script" -name netvm \
	-netdev tap,id=n0,ifname=tap0,vhost=on -device virtio-net-device,netdev=n0,id=nic0 ||
	fail "petrel-vmm exited with status $?"
assert_console "NET-DONE"
wait "$server" || fail "the host side of the transfer failed"

# The default MAC: 52:54:00 and the low 24 bits of FNV-1a("<VM name>/<device id>").
want_mac=$(python3 -c '
h = 2166136261
for c in b"netvm/nic0":
    h = ((h ^ c) * 16777619) & 0xffffffff
print("52:54:00:%02x:%02x:%02x" % ((h >> 16) & 255, (h >> 8) & 255, h & 255))')
assert_console "$want_mac"
assert_console "3 packets transmitted, 3 packets received"
assert_console "DOWN-SUM $down_sum"
up_sum=$(sed -n 's/^UP-SUM \([0-9a-f]*\).*/\1/p' "$T/console" | tr -d '\r')
[ -n "$up_sum" ] || fail "the guest printed no UP-SUM"
assert_eq "$(sha256sum <"$T/up.bin" | cut -d' ' -f1)" "$up_sum" "the checksum of what the guest sent"
assert_console "NET-DONE"
assert_console "PETREL-TEST-EXIT=0"
# Without vhost_net loaded (the testbed's default; vmm-net-vhost.sh loads it).
if [ ! -c /dev/vhost-net ]; then
	assert_contains "$T/stderr" "vhost-net is not available" "petrel-vmm's stderr (vhost=on)"
	assert_contains "$T/stderr" "using the userspace virtio-net path" "petrel-vmm's stderr (vhost=on)"
fi
