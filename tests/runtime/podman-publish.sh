#!/bin/bash
# `podman run -p 8080:80` with the runtime under test: busybox httpd in the
# container serves a generated file on port 80 of the guest's eth0 (netavark's
# veth, redirected to the VM's tap), podman publishes it on the host's port
# 8080, and the host fetches it through 127.0.0.1 and through its own address
# and compares it byte for byte.
. "$(dirname "$0")/../lib/common.sh"
. "$PROJ/tests/lib/images.sh"
need_runtime podman
[ -x /usr/lib/podman/netavark ] || skip "netavark is not installed (run 'make deps')"
need_cmd wget
podman_setup
podman_image
testbed_modprobe nf_tables nft_compat nft_chain_nat xt_MARK xt_mark xt_nat xt_tcpudp xt_multiport \
	xt_MASQUERADE xt_conntrack xt_addrtype xt_comment br_netfilter

seq 1 30000 >"$T/want"
name=petrel-publish-$$
on_exit "podman --runtime '$RUNTIME' rm -f -t 0 $name >/dev/null 2>&1"
expect_status 0 "$T/run" pm run -d --name "$name" -p 8080:80 "$IMAGE" \
	sh -c 'mkdir -p /www && seq 1 30000 >/www/index.html && exec httpd -f -v -p 80 -h /www'

# fetch URL: the page, retried while the VM boots (TCG is slow).
fetch() {
	local i
	for i in $(seq 1 240); do
		wget -q -T 10 -O "$T/got" "$1" 2>/dev/null && return 0
		sleep 1
		[ "$(pm inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
	done
	return 1
}
echo "[$(date +%T)] fetch http://127.0.0.1:8080/"
if ! fetch http://127.0.0.1:8080/index.html; then
	pm ps -a
	pm logs "$name" | tail -n 20
	fail "the host could not fetch the published page from 127.0.0.1:8080"
fi
cmp "$T/want" "$T/got" || fail "the page from 127.0.0.1:8080 is not the container's file"
addr=$(ip -4 -o addr show scope global | awk '$2 !~ /^(podman|cni|veth|pt)/ {print $4; exit}' | cut -d/ -f1)
if [ -n "$addr" ]; then
	echo "[$(date +%T)] fetch http://$addr:8080/"
	fetch "http://$addr:8080/index.html" || fail "the host could not fetch the published page from $addr:8080"
	cmp "$T/want" "$T/got" || fail "the page from $addr:8080 is not the container's file"
fi
pm logs "$name" >"$T/logs" 2>&1 || true
expect_status 0 "$T/rm" pm rm -f -t 0 "$name"
expect_status 0 "$T/left" pm ps -a --format '{{.ID}}'
assert_eq "$(cat "$T/left")" "" "containers left after rm"
assert_runtime_root_empty "$(runtime_default_root)"
echo "podman run -p 8080:80: the host fetched $(wc -c <"$T/want") bytes from httpd in the VM via 127.0.0.1${addr:+ and $addr}"
