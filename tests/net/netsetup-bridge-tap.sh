#!/bin/bash
# petrel-netsetup's manual bridge mode: a bridge with an address, a
# persistent tap in it; both idempotent or refused with a clear message;
# removed without a trace. Runs in a scratch network namespace.
. "$(dirname "$0")/../lib/common.sh"
NETSETUP=${PETREL_NETSETUP:-$BIN/petrel-netsetup}
[ -x "$NETSETUP" ] || skip "petrel-netsetup is not built ($NETSETUP; run make)"
[ "$(id -u)" = 0 ] || skip "needs root to make network namespaces"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
need_cmd ip

ns=petrel-br-$$
ip netns add "$ns" || skip "cannot create a network namespace (ip netns add)"
on_exit "ip netns del $ns"
# ip -n / tc -n: no mount namespace per command, which counts under TCG.
inns() { local c=$1; shift; "$c" -n "$ns" "$@"; }
listing() { inns ip -o -d link show | sed -E 's/^[0-9]+: //; s/ +/ /g' | cut -d' ' -f1; inns tc qdisc show; }
listing >"$T/before"

# Runs petrel-netsetup in the namespace; the status is checked by the caller.
ns_run() { "$NETSETUP" "$@" --netns "/run/netns/$ns"; }
expect_fail() { # EXPECTED-MESSAGE ARGS...
	local want=$1
	shift
	if ns_run "$@" >"$T/out" 2>"$T/err"; then fail "'petrel-netsetup $*' succeeded"; fi
	[ "$(wc -l <"$T/err")" = 1 ] || fail "'petrel-netsetup $*' printed more than one line: $(cat "$T/err")"
	assert_eq "$(cat "$T/err")" "$want" "the message of 'petrel-netsetup $*'"
}

ns_run bridge-add pbr0 --addr 10.77.0.1/24 || fail "bridge-add"
ns_run bridge-add pbr0 --addr 10.77.0.1/24 || fail "bridge-add is not idempotent"
inns ip -o addr show dev pbr0 >"$T/addr"
assert_contains "$T/addr" "inet 10.77.0.1/24" "pbr0's addresses"
inns ip -o link show pbr0 >"$T/link"
assert_contains "$T/link" ",UP" "pbr0's flags"
inns ip -d link show pbr0 | grep -q "bridge " || fail "pbr0 is not a bridge"

ns_run tap-add ptap0 --bridge pbr0 --persist || fail "tap-add"
inns ip -d link show ptap0 >"$T/tap"
assert_contains "$T/tap" "master pbr0" "ptap0"
assert_contains "$T/tap" "persist on" "ptap0"
assert_contains "$T/tap" "vnet_hdr on" "ptap0"

# Clashes and wrong kinds, each one line, nothing changed.
inns ip link add pveth0 type veth peer name pveth1
expect_fail "petrel-netsetup: netns /run/netns/$ns: tap ptap0: already exists" tap-add ptap0 --bridge pbr0
expect_fail "petrel-netsetup: netns /run/netns/$ns: tap pveth0: already exists" tap-add pveth0
expect_fail "petrel-netsetup: netns /run/netns/$ns: bridge pveth0: exists and is not a bridge (it is a veth)" bridge-add pveth0
expect_fail "petrel-netsetup: netns /run/netns/$ns: bridge pveth0: is not a bridge (it is a veth); not deleting it" bridge-del pveth0
expect_fail "petrel-netsetup: netns /run/netns/$ns: tap pveth0: is not a tap (it is a veth); not deleting it" tap-del pveth0
expect_fail "petrel-netsetup: netns /run/netns/$ns: tap ptap1: link nobridge: No such device" tap-add ptap1 --bridge nobridge
expect_fail "petrel-netsetup: --addr: address '10.0.0.1': no /prefix (write e.g. 10.0.0.1/24)" bridge-add pbr1 --addr 10.0.0.1
inns ip link show ptap1 >/dev/null 2>&1 && fail "a failed tap-add left ptap1 behind"
inns ip link show pbr1 >/dev/null 2>&1 && fail "a failed bridge-add left pbr1 behind"
inns ip link del pveth0

ns_run tap-del ptap0 || fail "tap-del"
ns_run tap-del ptap0 || fail "tap-del of an absent tap"
ns_run bridge-del pbr0 || fail "bridge-del"
ns_run bridge-del pbr0 || fail "bridge-del of an absent bridge"
listing >"$T/after"
diff -u "$T/before" "$T/after" || fail "links or qdiscs left behind"
echo "bridge and tap: made, idempotent, refused clearly, removed"
