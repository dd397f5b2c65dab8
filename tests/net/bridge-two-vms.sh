#!/bin/bash
# Bridge mode: two containers whose config.json has no network namespace get
# a tap each on petrel.conf's bridge and an address from it (one asked for
# with the io.petrel.net.address annotation, one picked), ping each other
# both ways and move a file over TCP (busybox httpd and wget); the host, on
# the bridge's address, fetches it too. A clashing or foreign address is
# refused naming it, with nothing left. delete (and kill -9 of a VMM) takes
# the taps away; the bridge stays.
. "$(dirname "$0")/../runtime/helpers.bash"
[ "$(id -u)" = 0 ] || skip "needs root for the bridge"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
need_cmd ip
need_cmd python3
need_cmd wget
runtime_prepare
APPLETS="$APPLETS ip ping wget httpd md5sum head"

BR=ptb$$
NET=10.123.$((RANDOM % 200 + 20))
cat >>"$PETREL_CONF" <<CONF
bridge = $BR
bridge_address = $NET.1/24
CONF
on_exit "ip link del $BR 2>/dev/null"

# net_bundle DIR ARGS_JSON [ADDRESS]: make_bundle without a network namespace,
# with the address annotation when given, and a disk of its own (DIR.ext4,
# io.petrel.rootfs: building one per create is slow under TCG).
net_bundle() {
	make_bundle "$1" "$2"
	cp "$T/rootfs.ext4" "$1.ext4"
	bundle_network "$1/config.json" "" "$1.ext4" "${3:-}"
}

make_rootfs "$T/rootfs"
mkdir -p "$T/rootfs/www"
head -c 300000 /dev/urandom >"$T/rootfs/www/blob"
want=$(md5sum <"$T/rootfs/www/blob" | cut -d' ' -f1)
mke2fs -q -t ext4 -d "$T/rootfs" "$T/rootfs.ext4" 64M || fail "mke2fs"

step "create and start a (asks for $NET.10) and b (picked)"
net_bundle "$T/ba" '["sh", "-c", "ip -4 addr show eth0; ip route; httpd -p 8000 -h /www && echo a-serving; exec sleep 600"]' "$NET.10/24"
net_bundle "$T/bb" '["sh", "-c", "ip -4 addr show eth0; ping -c 3 -W 10 '"$NET"'.10 && echo b-ping-ok; wget -q -O /tmp/got http://'"$NET"'.10:8000/blob && md5sum /tmp/got; echo b-done; exec sleep 600"]'
p create --bundle "$T/ba" --pid-file "$T/a.pid" a </dev/null >"$T/a.out" 2>"$T/a.err" || { cat "$T/a.err"; fail "create a"; }
p start a || fail "start a"
wait_file "$T/a.out" "a-serving" 240
assert_contains "$T/a.out" "inet $NET.10/24" "a's eth0"
assert_contains "$T/a.out" "default via $NET.1" "a's default route"
tap_a=$(ip -o link show master "$BR" | sed -E 's/^[0-9]+: ([^:@]+).*/\1/')
[ "$(echo "$tap_a" | wc -w)" = 1 ] || fail "the bridge's ports after a: '$tap_a'"
ip -d link show "$tap_a" | grep -q "alias petrel $NET.10/24 a" || { ip -d link show "$tap_a"; fail "tap $tap_a has no alias naming a"; }

step "bad input: a's address again, one outside the subnet, the bridge's, bridge mode with a namespace"
net_bundle "$T/bc" '["true"]' "$NET.10/24"
expect_fail "$T/clash" "annotation io.petrel.net.address=$NET.10/24: bridge $BR: address $NET.10/24: in use by container a (tap $tap_a)" create --bundle "$T/bc" c
net_bundle "$T/bd" '["true"]' "10.124.0.5/24"
expect_fail "$T/foreign" "address 10.124.0.5/24: not in the bridge's subnet $NET.0/24" create --bundle "$T/bd" d
net_bundle "$T/be" '["true"]' "$NET.1/24"
expect_fail "$T/own" "address $NET.1/24: the bridge's own address" create --bundle "$T/be" e
net_bundle "$T/bf" '["true"]' "$NET.7"
expect_fail "$T/noprefix" "annotation io.petrel.net.address: address '$NET.7': no /prefix" create --bundle "$T/bf" f
make_bundle "$T/bg" '["true"]'
bundle_network "$T/bg/config.json" new "$T/rootfs.ext4" "10.1.2.3/24"
expect_fail "$T/withns" "annotation io.petrel.net.address: only for a container without a network namespace" create --bundle "$T/bg" g
[ "$(ip -o link show master "$BR" | wc -l)" = 1 ] || { ip -o link show master "$BR"; fail "a refused create left a port"; }
for id in c d e f g; do [ ! -e "$ROOT/$id" ] || fail "a refused create left $ROOT/$id"; done

step "b pings a and fetches a file from it"
p create --bundle "$T/bb" --pid-file "$T/b.pid" b </dev/null >"$T/b.out" 2>"$T/b.err" || { cat "$T/b.err"; fail "create b"; }
p start b || fail "start b"
wait_file "$T/b.out" "b-done" 240
cat "$T/b.out"
assert_contains "$T/b.out" "inet $NET.2/24" "b's eth0 (the lowest free address)"
assert_contains "$T/b.out" "b-ping-ok" "b pinging a"
assert_contains "$T/b.out" "$want" "the file b fetched from a (md5)"
[ "$(ip -o link show master "$BR" | wc -l)" = 2 ] || { ip -o link show master "$BR"; fail "the bridge does not have two ports"; }

step "a pings b (petrel exec), the host fetches from a"
p exec a ping -c 3 -W 10 "$NET.2" >"$T/a-ping" 2>&1 || { cat "$T/a-ping"; fail "a cannot ping b"; }
assert_contains "$T/a-ping" "3 packets received" "a pinging b"
busybox ping -c 2 -W 10 "$NET.10" >"$T/host-ping" 2>&1 || { cat "$T/host-ping"; fail "the host cannot ping a"; }
wget -q -O "$T/host-got" "http://$NET.10:8000/blob" || fail "the host cannot fetch from a"
assert_eq "$(md5sum <"$T/host-got" | cut -d' ' -f1)" "$want" "the file the host fetched from a"

step "kill -9 of b's VMM, delete both: no port left, the bridge stays"
kill -9 "$(cat "$T/b.pid")"
for _ in $(seq 1 50); do [ "$(ip -o link show master "$BR" | wc -l)" = 1 ] && break; sleep 0.1; done
[ "$(ip -o link show master "$BR" | wc -l)" = 1 ] || { ip -o link show master "$BR"; fail "b's tap outlived its VMM"; }
p delete b || fail "delete b"
p delete --force a || fail "delete a"
assert_root_empty
[ "$(ip -o link show master "$BR" | wc -l)" = 0 ] || { ip -o link show master "$BR"; fail "ports left on $BR"; }
ip link show "$BR" >/dev/null || fail "the bridge went away"
echo "bridge mode: two VMs ping each other both ways and move a file; the host reaches them; taps go at delete"
