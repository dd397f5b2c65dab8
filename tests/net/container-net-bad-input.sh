#!/bin/bash
# `petrel-netsetup container-prepare` (netsetup_container_prepare) refuses
# bad input in one line naming the value, and leaves nothing half made: a
# missing namespace path, a namespace of another type, a file that is no
# namespace, a tap name in use, a namespace with no veth or with two. Then
# container-cleanup after the VMM's kill -9 (its tap gone), after the
# namespace is gone, and twice, always leaving the first listing.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/net.sh"
net_need_netsetup
need_cmd tc

net_container_netns petrel-bh-$$ petrel-bc-$$

listing() { net_ns_links_listing "$ct"; }
expect_fail() { # EXPECTED-MESSAGE ARGS...: and nothing on stdout
	net_expect_fail "$@"
	[ ! -s "$T/out" ] || fail "'petrel-netsetup ${*:2}' printed on stdout: $(cat "$T/out")"
}

# Only lo: nothing to take over.
expect_fail "petrel-netsetup: netns $CT: no network interface to take over: only lo" \
	container-prepare --netns "$CT"

ip link add vh0 netns "$host" type veth peer name eth0 netns "$ct"
ipn "$ct" link set eth0 up
ipn "$ct" addr add 10.99.0.2/24 dev eth0
listing >"$T/before"

expect_fail "petrel-netsetup: netns /run/netns/petrel-missing-$$: No such file or directory" \
	container-prepare --netns /run/netns/petrel-missing-$$ --tap tap0
expect_fail "petrel-netsetup: netns /proc/self/ns/uts: is a uts namespace, not a network namespace" \
	container-prepare --netns /proc/self/ns/uts --tap tap0
expect_fail "petrel-netsetup: netns /etc/hostname: not a namespace file (expected e.g. /run/netns/NAME or /proc/PID/ns/net)" \
	container-prepare --netns /etc/hostname --tap tap0
expect_fail "petrel-netsetup: netns $CT: tap eth0: a link of that name already exists (a veth)" \
	container-prepare --netns "$CT" --tap eth0
expect_fail "petrel-netsetup: tap 'tap%d': not a valid interface name" \
	container-prepare --netns "$CT" --tap 'tap%d'
expect_fail "petrel-netsetup: container-prepare: --netns PATH is needed" container-prepare --tap tap0
listing >"$T/after-bad"
diff -u "$T/before" "$T/after-bad" || fail "a refused container-prepare left something behind"

# A second veth: which one the VM replaces is not ours to guess.
ipn "$ct" link add eth1 type veth peer name eth1p
expect_fail "petrel-netsetup: netns $CT: 3 network interfaces (eth0 (veth), eth1p (veth), eth1 (veth)): a VM takes over exactly one; remove the others" \
	container-prepare --netns "$CT"
ipn "$ct" link del eth1

# A tap of that name already there (a second prepare): refused, the first intact.
"$NETSETUP" container-prepare --netns "$CT" --tap tap0 >"$T/net.json" || fail "container-prepare"
listing >"$T/prepared"
expect_fail "petrel-netsetup: netns $CT: tap tap0: a link of that name already exists (a tun)" \
	container-prepare --netns "$CT" --tap tap0
expect_fail "petrel-netsetup: netns $CT: redirect eth0 <-> tap1: eth0 already has a redirect filter (pref 49374); remove it first" \
	container-prepare --netns "$CT" --tap tap1
listing >"$T/prepared-again"
diff -u "$T/prepared" "$T/prepared-again" || fail "a refused second prepare changed the first"

# As after kill -9 of the VMM: the tap is gone, eth0's filter and qdisc stay.
ipn "$ct" link del tap0
"$NETSETUP" container-cleanup --netns "$CT" --tap tap0 || fail "container-cleanup after the tap went"
"$NETSETUP" container-cleanup --netns "$CT" --tap tap0 || fail "container-cleanup is not idempotent"
listing >"$T/after"
diff -u "$T/before" "$T/after" || fail "container-cleanup left something behind"

# Wrong namespace type for cleanup too; a namespace that is gone is fine.
expect_fail "petrel-netsetup: netns /proc/self/ns/uts: is a uts namespace, not a network namespace" \
	container-cleanup --netns /proc/self/ns/uts
"$NETSETUP" container-prepare --netns "$CT" --tap tap0 >/dev/null || fail "container-prepare (2)"
ip netns del "$ct"
"$NETSETUP" container-cleanup --netns "$CT" --tap tap0 || fail "container-cleanup of a deleted namespace"
echo "container-prepare: bad input refused in one line, nothing left; cleanup idempotent"
