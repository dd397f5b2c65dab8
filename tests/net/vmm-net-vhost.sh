#!/bin/bash
# vhost=on with a working /dev/vhost-net: the kernel moves the frames (a
# vhost worker of the VMM exists), the guest pings the host end of the tap and
# moves 8 MiB each way over TCP with the checksums matching; no fallback warning.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/net.sh"
net_need_vmm_guest
# The testbed loads only the modules its suites always need; vhost_net comes
# from the same Debian kernel package, unpacked in the testbed cache.
if [ ! -c /dev/vhost-net ] && ! modprobe vhost_net 2>/dev/null; then
	modroot=${XDG_CACHE_HOME:-$HOME/.cache}/petrel/testbed/$(uname -r)/root
	[ -d "$modroot" ] && modprobe -d "$modroot" vhost_net 2>/dev/null || true
fi
[ -c /dev/vhost-net ] || skip "no /dev/vhost-net (vhost_net module) here"

ns=petrel-vv-$$
net_tap_netns "$ns" 10.76.0.1/24
net_transfer_start "$ns" 10.76.0.1

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
'"$(net_transfer_guest 10.76.0.1)"'
echo NET-DONE'
VMM=$T/vmm-in-ns vmm_run_script "$script" \
	-netdev tap,id=n0,ifname=tap0,vhost=on -device virtio-net-device,netdev=n0,id=nic0 ||
	fail "petrel-vmm exited with status $?"
assert_console "NET-DONE"
net_transfer_check
assert_console "3 packets transmitted, 3 packets received"
assert_console "NET-DONE"
assert_console "PETREL-TEST-EXIT=0"
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
