#!/bin/bash
# The tc redirect model in a namespace that looks like podman's: a veth pair
# built by hand, a tap made by petrel-netsetup next to eth0, the redirect both
# ways as tc shows it, the info JSON, bad input refused with nothing made, and
# after teardown the same links, qdiscs and filters as before.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/net.sh"
net_need_netsetup
need_cmd tc

net_container_netns petrel-rh-$$ petrel-rc-$$
# ip -n / tc -n: no mount namespace per command, which counts under TCG.
in_host() { local c=$1; shift; "$c" -n "$host" "$@"; }
in_ct() { local c=$1; shift; "$c" -n "$ct" "$@"; }

# What a CNI bridge plugin leaves: eth0 with an address, a default route.
ip link add vh0 netns "$host" type veth peer name eth0 netns "$ct"
in_host ip link set vh0 up
in_host ip addr add 10.88.0.1/16 dev vh0
in_ct ip link set lo up
in_ct ip link set eth0 mtu 1450 up
in_ct ip addr add 10.88.0.2/16 dev eth0
in_ct ip route add default via 10.88.0.1
in_ct ip route add 192.168.200.0/24 via 10.88.0.254 metric 70

listing() {
	for n in "$host" "$ct"; do
		echo "== $n"
		net_ns_links_listing "$n"
	done
}
listing >"$T/before"

# Bad input first: each refused in one line, and nothing made.
net_expect_fail "petrel-netsetup: netns /proc/self/ns/mnt: is a mount namespace, not a network namespace" \
	redirect-add --netns /proc/self/ns/mnt --veth eth0 --tap tap0
net_expect_fail "petrel-netsetup: netns /run/netns/petrel-missing-$$: No such file or directory" \
	tap-add tap0 --netns /run/netns/petrel-missing-$$
net_expect_fail "petrel-netsetup: netns /etc/hostname: not a namespace file (expected e.g. /run/netns/NAME or /proc/PID/ns/net)" \
	show --netns /etc/hostname
net_expect_fail "petrel-netsetup: netns $CT: redirect eth0 <-> tap0: link tap0: No such device" \
	redirect-add --netns "$CT" --veth eth0 --tap tap0
net_expect_fail "petrel-netsetup: netns $CT: tap eth0: already exists" tap-add eth0 --netns "$CT"
net_expect_fail "petrel-netsetup: redirect-add: --veth IF and --tap IF are both needed" redirect-add --netns "$CT" --veth eth0
listing >"$T/after-bad"
diff -u "$T/before" "$T/after-bad" || fail "refused commands left something behind"

# The redirect.
"$NETSETUP" tap-add tap0 --netns "$CT" || fail "tap-add in the container namespace"
"$NETSETUP" redirect-add --netns "$CT" --veth eth0 --tap tap0 || fail "redirect-add"
net_expect_fail "petrel-netsetup: netns $CT: redirect eth0 <-> tap0: eth0 already has a redirect filter (pref 49374); remove it first" \
	redirect-add --netns "$CT" --veth eth0 --tap tap0
in_ct tc qdisc show dev eth0 >"$T/q-eth0"
in_ct tc qdisc show dev tap0 >"$T/q-tap0"
assert_contains "$T/q-eth0" "qdisc ingress ffff:" "eth0's qdiscs"
assert_contains "$T/q-tap0" "qdisc ingress ffff:" "tap0's qdiscs"
in_ct tc -s filter show dev eth0 ingress >"$T/f-eth0"
in_ct tc -s filter show dev tap0 ingress >"$T/f-tap0"
assert_contains "$T/f-eth0" "u32" "eth0's filters"
assert_contains "$T/f-eth0" "match 00000000/00000000 at 0" "eth0's filters"
assert_contains "$T/f-eth0" "mirred (Egress Redirect to device tap0) stolen" "eth0's filters"
assert_contains "$T/f-tap0" "mirred (Egress Redirect to device eth0) stolen" "tap0's filters"

# Frames from the host side go into the tap: ARP for the guest's address
# reaches nobody (no VM yet) but is counted by eth0's redirect action.
# (bash's /dev/udp sends a datagram; the kernel ARPs for it first).
for _ in 1 2 3; do ip netns exec "$host" bash -c 'echo x >/dev/udp/10.88.0.2/9' 2>/dev/null || true; sleep 0.3; done
in_ct tc -s filter show dev eth0 ingress >"$T/f-eth0-after"
sent=$(sed -n 's/.*Sent [0-9]* bytes \([0-9]*\) pkt.*/\1/p' "$T/f-eth0-after" | head -n1)
[ "${sent:-0}" -gt 0 ] || { cat "$T/f-eth0-after"; fail "no frame went through eth0's redirect"; }

# The info the agent gets.
"$NETSETUP" show --netns "$CT" >"$T/info.json" || fail "show"
mac=$(in_ct ip -o link show eth0 | sed -n 's|.*link/ether \([0-9a-f:]*\) .*|\1|p')
assert_contains "$T/info.json" "\"ifname\": \"eth0\"" "show"
assert_contains "$T/info.json" "\"mac\": \"$mac\"" "show"
assert_contains "$T/info.json" "\"mtu\": 1450" "show"
assert_contains "$T/info.json" "\"address\": \"10.88.0.2\"" "show"
assert_contains "$T/info.json" "\"gateway\": \"10.88.0.1\"" "show"
assert_contains "$T/info.json" "\"destination\": \"192.168.200.0/24\"" "show"
assert_contains "$T/info.json" "\"metric\": 70" "show"

# Teardown, twice, then the tap: back to the first listing.
"$NETSETUP" redirect-del --netns "$CT" --veth eth0 --tap tap0 || fail "redirect-del"
"$NETSETUP" redirect-del --netns "$CT" --veth eth0 --tap tap0 || fail "redirect-del is not idempotent"
"$NETSETUP" tap-del tap0 --netns "$CT" || fail "tap-del"
listing >"$T/after"
diff -u "$T/before" "$T/after" || fail "the redirect left something behind"

# After the tap vanished on its own (a VMM killed with -9 took a
# non-persistent tap along), redirect-del still cleans eth0's side.
"$NETSETUP" tap-add tap1 --netns "$CT"
"$NETSETUP" redirect-add --netns "$CT" --veth eth0 --tap tap1
in_ct ip link del tap1
"$NETSETUP" redirect-del --netns "$CT" --veth eth0 --tap tap1 || fail "redirect-del after the tap is gone"
listing >"$T/after-gone"
diff -u "$T/before" "$T/after-gone" || fail "redirect-del left eth0's side behind"
echo "redirect: made, shown by tc, refused clearly, removed without a trace"
