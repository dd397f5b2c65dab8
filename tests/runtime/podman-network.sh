#!/bin/bash
# podman's default network (netavark's bridge, 10.88.0.0/16) with the runtime
# under test: the container gets an address on it and reaches the host's end.
. "$(dirname "$0")/../lib/common.sh"
. "$PROJ/tests/lib/images.sh"
need_runtime podman
[ -x /usr/lib/podman/netavark ] || skip "netavark is not installed (run 'make deps')"
podman_setup
podman_image
testbed_modprobe nf_tables nft_compat nft_chain_nat xt_MARK xt_mark xt_nat xt_tcpudp xt_multiport \
	xt_MASQUERADE xt_conntrack xt_addrtype xt_comment br_netfilter

rc=0
pm run --rm --cap-add NET_RAW "$IMAGE" sh -c 'ip -4 addr show; ip route; ping -c 1 -W 10 10.88.0.1' >"$T/net" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$T/net"; fail "podman run on the default network exited with $rc"; }
assert_contains "$T/net" "inet 10.88." "the container's addresses"
assert_contains "$T/net" "1 packets received" "ping of the bridge"
