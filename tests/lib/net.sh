# Sourced by the tests/net suites, after common.sh (or agent/helpers.bash):
# scratch network namespaces, the veth pair a container runtime leaves, a
# tap for petrel-vmm to open by name, and the host end of an 8 MiB transfer
# each way between the host and a test guest.

# net_need_root_tun [WHAT]: root and /dev/net/tun, or skip. WHAT is what
# else root is needed for ("taps").
net_need_root_tun() {
	[ "$(id -u)" = 0 ] || skip "needs root to make network namespaces${1:+ and $1}"
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
}

# net_need_netsetup: sets NETSETUP to the petrel-netsetup under test; root, ip.
net_need_netsetup() {
	NETSETUP=${PETREL_NETSETUP:-$BIN/petrel-netsetup}
	[ -x "$NETSETUP" ] || skip "petrel-netsetup is not built ($NETSETUP; run make)"
	net_need_root_tun
	need_cmd ip
}

# net_need_vmm_guest: what the petrel-vmm virtio-net tests need to boot the test guest.
net_need_vmm_guest() {
	net_need_root_tun taps
	need_kvm
	need_vmm
	need_cmd ip
	need_cmd python3
	{ [ -f "$KERNEL" ] && [ -f "$TEST_INITRD" ]; } ||
		skip "no guest kernel or test initramfs in $GUEST (run make guest)"
}

# net_netns_add NAME: a scratch network namespace, deleted on exit.
net_netns_add() {
	ip netns add "$1" || skip "cannot create a network namespace (ip netns add)"
	on_exit "ip netns del $1 2>/dev/null"
}

# net_container_netns HOST CT: the host side's namespace and the container's,
# as a runtime makes them; CT is the container's namespace path.
net_container_netns() {
	host=$1
	ct=$2
	net_netns_add "$host"
	net_netns_add "$ct"
	CT=/run/netns/$ct
}

ipn() { local n=$1; shift; ip -n "$n" "$@"; }

# net_container_veth [MTU]: what a CNI bridge plugin leaves: vh0 10.99.0.1/24
# in $host, its peer eth0 10.99.0.2/24 in $ct with a default route to it.
net_container_veth() {
	local mtu=${1:+mtu $1}
	ip link add vh0 netns "$host" type veth peer name eth0 netns "$ct"
	# shellcheck disable=SC2086 # $mtu is "mtu N" or nothing
	ipn "$host" link set vh0 $mtu up
	ipn "$host" addr add 10.99.0.1/24 dev vh0
	# shellcheck disable=SC2086
	ipn "$ct" link set eth0 $mtu up
	ipn "$ct" addr add 10.99.0.2/24 dev eth0
	ipn "$ct" route add default via 10.99.0.1
}

# net_container_listing: what container-cleanup must restore in $ct: links,
# qdiscs, eth0's ingress filters.
net_container_listing() {
	ip -n "$ct" -o link show | sed -E 's/^[0-9]+: //' | cut -d' ' -f1
	tc -n "$ct" qdisc show
	tc -n "$ct" filter show dev eth0 ingress
}

# net_container_mac: eth0's MAC in $ct, which the guest takes over.
net_container_mac() {
	ip -n "$ct" -o link show eth0 | sed -n 's|.*link/ether \([0-9a-f:]*\) .*|\1|p'
}

# net_tap_netns NS ADDR/LEN: a namespace with lo up and a persistent tap0 whose
# host end is ADDR, so that it is configured before the VMM attaches.
net_tap_netns() {
	net_netns_add "$1"
	ip -n "$1" link set lo up
	ip -n "$1" tuntap add dev tap0 mode tap
	ip -n "$1" addr add "$2" dev tap0
	ip -n "$1" link set tap0 up
}

# net_transfer_start NS ADDR: in NS, a host-side server on ADDR that sends
# 8 MiB of random data on port 5002 and saves what it receives on port 5001
# in $T/up.bin; returns once it listens. Sets net_server (its pid) and
# net_down_sum (the checksum of what it sends).
net_transfer_start() {
	head -c 8M /dev/urandom >"$T/down.bin"
	net_down_sum=$(sha256sum <"$T/down.bin" | cut -d' ' -f1)
	ip netns exec "$1" python3 "$PROJ/tests/lib/net-transfer.py" "$2" "$T/down.bin" "$T/up.bin" \
		"$T/listening" &
	net_server=$!
	on_exit "kill $net_server 2>/dev/null"
	# A loaded testbed may take seconds to start python: the guest must not
	# find the ports closed.
	for _ in $(seq 1 120); do [ -e "$T/listening" ] && break; sleep 0.5; done
	[ -e "$T/listening" ] || fail "the host-side server did not start"
}

# net_transfer_guest ADDR: the guest's side, for vmm_run_script (after eth0
# is up): fetch the 8 MiB, send 8 MiB back, print both checksums.
net_transfer_guest() {
	printf '%s\n' "nc $1 5002 </dev/null >/tmp/down || exit 2" \
		'echo "DOWN-SUM $(sha256sum /tmp/down | cut -d" " -f1)"' \
		'head -c 8388608 /dev/urandom >/tmp/up' \
		'echo "UP-SUM $(sha256sum /tmp/up | cut -d" " -f1)"' \
		"nc $1 5001 </tmp/up || exit 3"
}

# net_transfer_check: both directions arrived whole.
net_transfer_check() {
	wait "$net_server" || fail "the host side of the transfer failed"
	assert_console "DOWN-SUM $net_down_sum"
	local up_sum
	up_sum=$(sed -n 's/^UP-SUM \([0-9a-f]*\).*/\1/p' "$T/console" | tr -d '\r')
	[ -n "$up_sum" ] || fail "the guest printed no UP-SUM"
	assert_eq "$(sha256sum <"$T/up.bin" | cut -d' ' -f1)" "$up_sum" "the checksum of what the guest sent"
}

# net_ns_links_listing NS: what must be as before in NS after a teardown:
# its links, qdiscs and every link's ingress filters.
net_ns_links_listing() {
	local dev
	ip -n "$1" -o link show | sed -E 's/^[0-9]+: //' | cut -d' ' -f1
	tc -n "$1" qdisc show
	for dev in $(ip -n "$1" -o link show | sed -E 's/^[0-9]+: ([^:@]+).*/\1/'); do
		tc -n "$1" filter show dev "$dev" ingress | sed "s/^/$dev: /"
	done
}

# net_expect_fail MESSAGE ARGS...: petrel-netsetup ARGS fails with exactly
# the one line MESSAGE on stderr; its stdout is left in $T/out.
net_expect_fail() {
	local want=$1
	shift
	if "$NETSETUP" "$@" >"$T/out" 2>"$T/err"; then fail "'petrel-netsetup $*' succeeded"; fi
	[ "$(wc -l <"$T/err")" = 1 ] || fail "'petrel-netsetup $*' printed more than one line: $(cat "$T/err")"
	assert_eq "$(cat "$T/err")" "$want" "the message of 'petrel-netsetup $*'"
}

# net_run_container SCRIPT [LOG]: runs SCRIPT as a container through
# petrel-agent (vsock cid $CID) with the network object in $T/network.json;
# its output is in $T/out. Unless it exits 0, fails showing the guest's
# console ($T/console.log) and LOG.
net_run_container() {
	local rc=0
	step "run the container"
	"$PROJ/tests/net/container-net-agent.py" "$CID" "$T/network.json" "$1" >"$T/out" 2>"$T/err" || rc=$?
	cat "$T/out" "$T/err"
	[ $rc = 0 ] || {
		tail -n 30 "$T/console.log"
		[ -z "${2:-}" ] || cat "$2"
		fail "the container exited with $rc"
	}
}
