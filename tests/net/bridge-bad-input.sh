#!/bin/bash
# The runtime's network, bad input: `petrel create` with a network namespace
# path that is missing, that is a namespace of another type, or that holds a
# link named like petrel's tap (tap0), or no veth to take over but two, and a
# bridge name in petrel.conf that another kind of link has: each fails with
# one clear message naming the value, and nothing is left half made (the
# namespace's links, qdiscs and filters, the host's links, --root).
. "$(dirname "$0")/../runtime/helpers.bash"
[ "$(id -u)" = 0 ] || skip "needs root for namespaces"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
need_cmd ip
need_cmd tc
need_cmd python3
runtime_prepare

ct=petrel-bb-$$
host=petrel-bh-$$
ip netns add "$ct" || skip "cannot create a network namespace (ip netns add)"
on_exit "ip netns del $ct 2>/dev/null"
ip netns add "$host"
on_exit "ip netns del $host 2>/dev/null"
ip link add vh0 netns "$host" type veth peer name eth0 netns "$ct"
ip -n "$ct" link set eth0 up
ip -n "$ct" addr add 10.97.0.2/24 dev eth0

make_rootfs "$T/rootfs"
mke2fs -q -t ext4 -d "$T/rootfs" "$T/rootfs.ext4" 64M || fail "mke2fs"
# bundle DIR NETNS: NETNS is a path, "" for none (bridge mode).
bundle() {
	make_bundle "$1" '["true"]'
	bundle_network "$1/config.json" "$2" "$T/rootfs.ext4"
}
listing() {
	ip -n "$ct" -o link show | sed -E 's/^[0-9]+: ([^:]+):.*/\1/'
	tc -n "$ct" qdisc show
	tc -n "$ct" filter show dev eth0 ingress
	ip -o link show | sed -E 's/^[0-9]+: ([^:]+):.*/\1/'
	ls -A "$ROOT" 2>/dev/null || true
}
check_nothing_left() {
	listing >"$T/after"
	diff -u "$T/before" "$T/after" || fail "$1 left something behind"
}

listing >"$T/before"
bundle "$T/missing" "/run/netns/petrel-missing-$$"
expect_fail "$T/e1" "linux.namespaces: network /run/netns/petrel-missing-$$: netns /run/netns/petrel-missing-$$: No such file or directory" \
	create --bundle "$T/missing" m1
check_nothing_left "a missing namespace"

bundle "$T/uts" /proc/self/ns/uts
expect_fail "$T/e2" "netns /proc/self/ns/uts: is a uts namespace, not a network namespace" create --bundle "$T/uts" m2
check_nothing_left "a uts namespace"

bundle "$T/file" /etc/hostname
expect_fail "$T/e3" "netns /etc/hostname: not a namespace file" create --bundle "$T/file" m3
check_nothing_left "a file that is no namespace"

# A link already named tap0 in the namespace: refused, it stays as it was.
ip -n "$ct" tuntap add tap0 mode tap
listing >"$T/before"
bundle "$T/clash" "/run/netns/$ct"
expect_fail "$T/e4" "linux.namespaces: network /run/netns/$ct: netns /run/netns/$ct: tap tap0: a link of that name already exists (a tun)" \
	create --bundle "$T/clash" m4
check_nothing_left "a tap name clash"
ip -n "$ct" link del tap0

# Two links to take over.
ip -n "$ct" link add eth1 type veth peer name eth1p
listing >"$T/before"
expect_fail "$T/e5" "3 network interfaces (eth0 (veth), eth1p (veth), eth1 (veth)): a VM takes over exactly one" \
	create --bundle "$T/clash" m5
check_nothing_left "two veths"
ip -n "$ct" link del eth1

# Bridge mode with petrel.conf's bridge name on a link of another kind.
ip link add ptbad$$ type veth peer name ptbadp$$
on_exit "ip link del ptbad$$ 2>/dev/null"
listing >"$T/before"
printf 'bridge = ptbad%s\nbridge_address = 10.96.0.1/24\n' $$ >>"$PETREL_CONF"
bundle "$T/bridge" ""
expect_fail "$T/e6" "bridge ptbad$$: exists and is not a bridge (it is a veth)" create --bundle "$T/bridge" m6
check_nothing_left "a bridge name clash"
printf 'bridge_address = 10.96.0.1\n' >>"$PETREL_CONF"
expect_fail "$T/e7" "bridge_address: bad value \"10.96.0.1\"" create --bundle "$T/bridge" m7
check_nothing_left "a bad bridge_address"
cat "$T"/e[1-7]
echo "the runtime's network: bad input refused in one line naming the value; nothing left"
