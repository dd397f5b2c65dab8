#!/bin/bash
# Multiqueue virtio-net (-netdev tap,...,queues=2) with a 2-vCPU guest: the
# guest sees two queue pairs (/sys/class/net/eth0/queues), pings the host end
# of a multi_queue tap, and runs one TCP flow each way per vCPU (pinned with
# taskset, so that the guest transmits on the pair of that vCPU) with the
# checksums matching. The driver's per-queue counters (what "ethtool -S eth0"
# shows; tests/tools/ethstats.c) say that both queue pairs carried packets
# both ways. Then the same with vhost=on (one vhost-net device per pair) when
# /dev/vhost-net exists.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/net.sh"
net_need_vmm_guest
need_cmd cpio

# ethstats in an initrd appended to the test initramfs (as tests/lib/vsock.sh).
tool=$BUILD/tests-tools/ethstats
if [ ! -x "$tool" ] || [ "$PROJ/tests/tools/ethstats.c" -nt "$tool" ]; then
	mkdir -p "$BUILD/tests-tools"
	cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -s -o "$tool.$$" "$PROJ/tests/tools/ethstats.c" ||
		fail "cannot build $tool (cc -static needs libc6-dev)"
	mv "$tool.$$" "$tool"
fi
mkdir -p "$T/extra/bin"
cp "$tool" "$T/extra/bin/ethstats"
(cd "$T/extra" && find bin | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -n >"$T/extra.cpio.gz"
cat "$TEST_INITRD" "$T/extra.cpio.gz" >"$T/initrd.gz"
TEST_INITRD=$T/initrd.gz

ns=petrel-vmq-$$
net_netns_add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tap0 mode tap multi_queue
ip -n "$ns" addr add 10.78.0.1/24 dev tap0
ip -n "$ns" addr add 10.78.0.3/24 dev tap0
ip -n "$ns" link set tap0 up

printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$ns" "$VMM" >"$T/vmm-in-ns"
chmod +x "$T/vmm-in-ns"

# One flow per vCPU: vCPU i talks to 10.78.0.(1 + 2i); 4 MiB each way.
script='ls /sys/class/net/eth0/queues | tr "\n" " "; echo
ip link set eth0 up
ip addr add 10.78.0.2/24 dev eth0
ping -c 3 -W 10 10.78.0.1 || exit 1
for i in 0 1; do
	head -c 4194304 /dev/urandom >/tmp/up$i
	echo "UP$i-SUM $(sha256sum /tmp/up$i | cut -d" " -f1)"
done
taskset 0x1 sh -c "nc 10.78.0.1 5002 </dev/null >/tmp/down0 && nc 10.78.0.1 5001 </tmp/up0" &
p0=$!
taskset 0x2 sh -c "nc 10.78.0.3 5002 </dev/null >/tmp/down1 && nc 10.78.0.3 5001 </tmp/up1" &
p1=$!
wait $p0 || exit 2
wait $p1 || exit 3
for i in 0 1; do echo "DOWN$i-SUM $(sha256sum /tmp/down$i | cut -d" " -f1)"; done
ethstats eth0 | grep -E "^[rt]x_queue_[0-9]+_packets" | sed "s/^/STAT /"
echo NET-DONE'

# run_mq WHAT NETDEV-OPTIONS: one boot, its transfers, and the per-queue counts.
run_mq() {
	local what=$1 netdev=$2 i addr
	local pids=()
	for i in 0 1; do
		addr=10.78.0.$((1 + 2 * i))
		head -c 4M /dev/urandom >"$T/down$i.bin"
		rm -f "$T/listening$i" "$T/up$i.bin"
		ip netns exec "$ns" python3 "$PROJ/tests/lib/net-transfer.py" "$addr" "$T/down$i.bin" \
			"$T/up$i.bin" "$T/listening$i" &
		pids+=($!)
		on_exit "kill $! 2>/dev/null"
	done
	for i in 0 1; do
		for _ in $(seq 1 120); do [ -e "$T/listening$i" ] && break; sleep 0.5; done
		[ -e "$T/listening$i" ] || fail "$what: the host-side server $i did not start"
	done
	VMM=$T/vmm-in-ns vmm_run_script "$script" -m 256 -smp 2 \
		-netdev "tap,id=n0,ifname=tap0,queues=2$netdev" \
		-device virtio-net-device,netdev=n0,id=nic0 ||
		fail "$what: petrel-vmm exited with status $?"
	assert_console "rx-0 rx-1 tx-0 tx-1"
	assert_console "3 packets transmitted, 3 packets received"
	assert_console "NET-DONE"
	assert_console "PETREL-TEST-EXIT=0"
	assert_not_contains "$T/console" "Fail to set num of queue pairs"
	for i in 0 1; do
		wait "${pids[$i]}" || fail "$what: the host side of flow $i failed"
		assert_console "DOWN$i-SUM $(sha256sum <"$T/down$i.bin" | cut -d' ' -f1)"
		assert_console "UP$i-SUM $(sha256sum <"$T/up$i.bin" | cut -d' ' -f1)"
	done
	# Every queue of both pairs moved packets.
	local q n
	for q in rx_queue_0 rx_queue_1 tx_queue_0 tx_queue_1; do
		n=$(sed -n "s/^STAT ${q}_packets: \([0-9]*\).*/\1/p" "$T/console" | tr -d '\r')
		echo "$what: ${q}_packets $n"
		[ "${n:-0}" -gt 10 ] || fail "$what: ${q}_packets is '${n:-missing}', expected more than 10"
	done
	assert_not_contains "$T/stderr" "TUNSETQUEUE" "petrel-vmm's stderr ($what)"
}

run_mq userspace ""
# Without vhost-net, vhost=on falls back (vmm-net-tap.sh checks the warning).
if [ ! -c /dev/vhost-net ] && ! modprobe vhost_net 2>/dev/null; then
	modroot=${XDG_CACHE_HOME:-$HOME/.cache}/petrel/testbed/$(uname -r)/root
	[ -d "$modroot" ] && modprobe -d "$modroot" vhost_net 2>/dev/null || true
fi
if [ -c /dev/vhost-net ]; then
	run_mq vhost ",vhost=on"
	assert_not_contains "$T/stderr" "vhost-net is not available"
else
	echo "no /dev/vhost-net here: the vhost=on run was skipped"
fi
