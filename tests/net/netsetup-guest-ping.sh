#!/bin/bash
# The proof that the tc redirect model works end to end: a real guest, whose
# virtio-net is backed by a tap petrel-netsetup made inside a container-like
# namespace and redirected to that namespace's veth, takes over the veth's
# MAC and address, pings the host end of the veth and fetches a file from an
# HTTP server there over TCP. QEMU's microvm is the VMM here; petrel-vmm
# takes the same -netdev/-device options once it has virtio-net.
. "$(dirname "$0")/../lib/common.sh"
NETSETUP=${PETREL_NETSETUP:-$BIN/petrel-netsetup}
[ -x "$NETSETUP" ] || skip "petrel-netsetup is not built ($NETSETUP; run make)"
[ "$(id -u)" = 0 ] || skip "needs root to make network namespaces"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
need_kvm
need_cmd qemu-system-x86_64
need_cmd ip
need_cmd busybox
{ [ -f "$KERNEL" ] && [ -f "$TEST_INITRD" ]; } || skip "no guest kernel or test initramfs in $GUEST (run make guest)"

host=petrel-ph-$$
ct=petrel-pc-$$
ip netns add "$host" || skip "cannot create a network namespace (ip netns add)"
on_exit "ip netns del $host"
ip netns add "$ct"
on_exit "ip netns del $ct"
in_host() { ip netns exec "$host" "$@"; }
in_ct() { ip netns exec "$ct" "$@"; }
ipn() { local n=$1; shift; ip -n "$n" "$@"; }
CT=/run/netns/$ct

ip link add vh0 netns "$host" type veth peer name eth0 netns "$ct"
ipn "$host" link set lo up
ipn "$host" link set vh0 up
ipn "$host" addr add 10.88.0.1/16 dev vh0
ipn "$ct" link set eth0 up
ipn "$ct" addr add 10.88.0.2/16 dev eth0
ipn "$ct" route add default via 10.88.0.1

"$NETSETUP" tap-add tap0 --netns "$CT" || fail "tap-add"
"$NETSETUP" redirect-add --netns "$CT" --veth eth0 --tap tap0 || fail "redirect-add"
"$NETSETUP" show --netns "$CT" --veth eth0 >"$T/info.json" || fail "show"
mac=$(sed -n 's/.*"mac": "\([0-9a-f:]*\)".*/\1/p' "$T/info.json")
addr=$(sed -n 's/.*"address": "\([0-9.]*\)".*/\1/p' "$T/info.json" | head -n1)
gw=$(sed -n 's/.*"gateway": "\([0-9.]*\)".*/\1/p' "$T/info.json" | head -n1)
assert_eq "$addr" 10.88.0.2 "the address in show's JSON"
assert_eq "$gw" 10.88.0.1 "the gateway in show's JSON"

mkdir -p "$T/www"
marker="petrel-net-$RANDOM$RANDOM"
echo "$marker" >"$T/www/hello.txt"
ip netns exec "$host" busybox httpd -f -p 10.88.0.1:8080 -h "$T/www" &
httpd=$!
on_exit "kill $httpd"

# The guest configures eth0 from the info, as the agent will.
script="ip link set eth0 up
ip addr add $addr/16 dev eth0
ip route add default via $gw
cat /sys/class/net/eth0/address
ping -c 3 -W 10 $gw || exit 1
printf 'GET /hello.txt HTTP/1.0\\r\\n\\r\\n' | nc -w 30 $gw 8080 || exit 2"
in_ct timeout 240 qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m 256 -smp 1 \
	-nodefaults -no-user-config -nographic -no-reboot -serial stdio \
	-kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-netdev tap,id=net0,ifname=tap0,script=no,downscript=no,vnet_hdr=on \
	-device virtio-net-device,netdev=net0,mac="$mac" \
	-append "console=ttyS0 panic=-1 petrel.halt=poweroff petrel.script=$(b64 "$script")" \
	>"$T/console" 2>&1 || {
	rc=$?
	tail -n 30 "$T/console"
	fail "qemu exited with status $rc"
}
assert_contains "$T/console" "PETREL-GUEST-READY" "the guest console"
assert_contains "$T/console" "$mac" "the guest console (eth0 takes the veth's MAC)"
assert_contains "$T/console" "3 packets transmitted, 3 packets received" "the guest console"
assert_contains "$T/console" "$marker" "the guest console (the file fetched over TCP)"
assert_contains "$T/console" "PETREL-TEST-EXIT=0" "the guest console"

tc -n "$ct" -s filter show dev tap0 ingress >"$T/f-tap0"
assert_contains "$T/f-tap0" "mirred (Egress Redirect to device eth0)" "tap0's filters"
"$NETSETUP" redirect-del --netns "$CT" --veth eth0 --tap tap0 || fail "redirect-del"
"$NETSETUP" tap-del tap0 --netns "$CT" || fail "tap-del"
! tc -n "$ct" qdisc show | grep -q ingress || fail "an ingress qdisc is left"
echo "guest on the tc redirect: ping and TCP across"
