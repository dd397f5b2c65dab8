#!/bin/bash
# vhost=on with a working /dev/vhost-net: the kernel moves the frames (a
# vhost worker of the VMM exists), the guest pings the host end of the tap and
# moves 8 MiB each way over TCP with the checksums matching; no fallback warning.
. "$(dirname "$0")/../lib/common.sh"
[ "$(id -u)" = 0 ] || skip "needs root to make network namespaces and taps"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
need_kvm
need_vmm
need_cmd ip
need_cmd python3
{ [ -f "$KERNEL" ] && [ -f "$TEST_INITRD" ]; } || skip "no guest kernel or test initramfs in $GUEST (run make guest)"
# The testbed loads only the modules its suites always need; vhost_net comes
# from the same Debian kernel package, unpacked in the testbed cache.
if [ ! -c /dev/vhost-net ] && ! modprobe vhost_net 2>/dev/null; then
	modroot=${XDG_CACHE_HOME:-$HOME/.cache}/petrel/testbed/$(uname -r)/root
	[ -d "$modroot" ] && modprobe -d "$modroot" vhost_net 2>/dev/null || true
fi
[ -c /dev/vhost-net ] || skip "no /dev/vhost-net (vhost_net module) here"

ns=petrel-vv-$$
ip netns add "$ns" || skip "cannot create a network namespace (ip netns add)"
on_exit "ip netns del $ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" addr add 10.76.0.1/24 dev tap0
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
    s.bind(("10.76.0.1", port))
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
receiver=$!
on_exit "kill $receiver 2>/dev/null"
# A loaded testbed may take seconds to start python: the guest must not find
# the ports closed.
for _ in $(seq 1 120); do [ -e "$T/listening" ] && break; sleep 0.5; done
[ -e "$T/listening" ] || fail "the host-side server did not start"

# The VMM in the namespace, and a look for its vhost worker ("vhost-PID": a
# kernel thread before Linux 6.4, a thread of the VMM since).
cat >"$T/vmm-in-ns" <<EOF
#!/bin/bash
ip netns exec $ns $VMM "\$@" &
pid=\$!
for i in \$(seq 1 120); do
	if ps -eLo comm= | grep -q "^vhost-\$pid"; then echo found >"$T/vhost-worker"; break; fi
	kill -0 \$pid 2>/dev/null || break
	sleep 0.5
done
wait \$pid
EOF
chmod +x "$T/vmm-in-ns"

script='ip link set eth0 up
ip addr add 10.76.0.2/24 dev eth0
ping -c 3 -W 10 10.76.0.1 || exit 1
nc 10.76.0.1 5002 </dev/null >/tmp/down || exit 2
echo "DOWN-SUM $(sha256sum /tmp/down | cut -d" " -f1)"
head -c 8388608 /dev/urandom >/tmp/up
echo "UP-SUM $(sha256sum /tmp/up | cut -d" " -f1)"
nc 10.76.0.1 5001 </tmp/up || exit 3
echo NET-DONE'
VMM=$T/vmm-in-ns vmm_run_script "$script" \
	-netdev tap,id=n0,ifname=tap0,vhost=on -device virtio-net-device,netdev=n0,id=nic0 ||
	fail "petrel-vmm exited with status $?"
assert_console "NET-DONE"
wait "$receiver" || fail "the receiver failed"
assert_console "3 packets transmitted, 3 packets received"
assert_console "NET-DONE"
assert_console "PETREL-TEST-EXIT=0"
assert_console "DOWN-SUM $down_sum"
up_sum=$(sed -n 's/^UP-SUM \([0-9a-f]*\).*/\1/p' "$T/console" | tr -d '\r')
assert_eq "$(sha256sum <"$T/up.bin" | cut -d' ' -f1)" "$up_sum" "the checksum of what the guest sent"
assert_not_contains "$T/stderr" "vhost-net is not available"
[ -f "$T/vhost-worker" ] || fail "no vhost-PID worker thread was seen while the VM ran"

# vhostfd=: the caller opens /dev/vhost-net (the VMM then needs no access to it).
printf '#!/bin/sh\nexec ip netns exec %s sh -c '"'"'exec "$0" "$@" 4<>/dev/vhost-net'"'"' %s "$@"\n' "$ns" "$VMM" >"$T/vmm-vhostfd"
chmod +x "$T/vmm-vhostfd"
script='ip link set eth0 up
ip addr add 10.76.0.2/24 dev eth0
ping -c 3 -W 10 10.76.0.1 || exit 1
echo NET-DONE'
VMM=$T/vmm-vhostfd vmm_run_script "$script" \
	-netdev tap,id=n0,ifname=tap0,vhostfd=4 -device virtio-net-device,netdev=n0,id=nic0 ||
	fail "petrel-vmm (vhostfd=4) exited with status $?"
assert_console "3 packets transmitted, 3 packets received"
assert_console "NET-DONE"
assert_not_contains "$T/stderr" "vhost-net is not available"
