#!/bin/bash
# No leaks: PETREL_LEAK_CYCLES (default 12; `make soak` runs 100)
# create/delete cycles of a networked container, rotating through the three
# network modes: a namespace with a path made here (veth + tc redirect), a
# namespace without a path (a new one, made by the runtime) and no namespace
# (bridge mode). Every PETREL_LEAK_KILL_EVERY-th (default 4) cycle ends with
# kill -9 of the VMM before delete. Afterwards the listings of links, taps,
# bridge ports, qdiscs, filters, namespaces, open tun/netns fds, mounts and
# the files under --root are what they were before the first cycle.
. "$(dirname "$0")/../runtime/helpers.bash"
[ "$(id -u)" = 0 ] || skip "needs root for namespaces and the bridge"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
need_cmd ip
need_cmd tc
need_cmd bridge
need_cmd python3
runtime_prepare
CYCLES=${PETREL_LEAK_CYCLES:-12}
KILL_EVERY=${PETREL_LEAK_KILL_EVERY:-4}

BR=ptl$$
BR_ADDR=10.124.$((RANDOM % 200 + 20)).1/24
cat >>"$PETREL_CONF" <<CONF
bridge = $BR
bridge_address = $BR_ADDR
CONF
on_exit "ip link del $BR 2>/dev/null"
host=petrel-lh-$$
ct=petrel-lc-$$
ip netns add "$host" || skip "cannot create a network namespace (ip netns add)"
on_exit "ip netns del $host 2>/dev/null"
ip netns add "$ct"
on_exit "ip netns del $ct 2>/dev/null"
ip link add vh0 netns "$host" type veth peer name eth0 netns "$ct"
ip -n "$host" link set vh0 up
ip -n "$host" addr add 10.98.0.1/24 dev vh0
ip -n "$ct" link set eth0 up
ip -n "$ct" addr add 10.98.0.2/24 dev eth0
ip -n "$ct" route add default via 10.98.0.1

# One disk for every cycle (io.petrel.rootfs): the cycles measure the network.
make_rootfs "$T/rootfs"
mke2fs -q -t ext4 -d "$T/rootfs" "$T/rootfs.ext4" 64M || fail "mke2fs"
mkdir -p "$ROOT"
# bundle DIR MODE: MODE is path, new or bridge.
bundle() {
	local netns=
	make_bundle "$1" '["sleep", "600"]'
	case "$2" in path) netns=/run/netns/$ct ;; new) netns=new ;; esac
	bundle_network "$1/config.json" "$netns" "$T/rootfs.ext4"
}
modes=(path new bridge)
for m in "${modes[@]}"; do bundle "$T/b-$m" "$m"; done
# The bridge exists from the first bridge-mode container on: make it now, so
# that the listings compare what the cycles leave. (Its IPv6 link-local
# address comes with the first port's carrier, and stays: global addresses
# only.)
"$BIN/petrel-netsetup" bridge-add "$BR" --addr "$BR_ADDR" || fail "bridge-add"

listing() {
	local n dev
	for n in "" "$ct" "$host"; do
		echo "== netns ${n:-host}"
		ip ${n:+-n "$n"} -o link show | sed -E 's/^[0-9]+: ([^:]+):.*/\1/' | sort
		ip ${n:+-n "$n"} -o link show type tun | sed -E 's/^[0-9]+: ([^:]+):.*/tun \1/' | sort
		bridge ${n:+-n "$n"} -o link show | sed -E 's/^[0-9]+: ([^:]+):.*master ([^ ]+).*/port \1 \2/' | sort
		tc ${n:+-n "$n"} qdisc show | sort
		for dev in $(ip ${n:+-n "$n"} -o link show | sed -E 's/^[0-9]+: ([^:@]+).*/\1/'); do
			tc ${n:+-n "$n"} filter show dev "$dev" ingress | sed "s/^/$dev: /"
		done
		ip ${n:+-n "$n"} -o addr show scope global | awk '{print $2, $3, $4}' | sort
	done
	echo "== namespaces"
	ip netns list | sort
	readlink /proc/[0-9]*/ns/net 2>/dev/null | sort -u
	echo "== fds on tun or a namespace"
	ls -l /proc/[0-9]*/fd 2>/dev/null | grep -c -e '/dev/net/tun' -e 'net:\[' || true
	echo "== mounts"
	awk '{print $5, $9}' /proc/self/mountinfo | sort
	echo "== files under --root"
	(cd "$ROOT" && find . | sort)
	echo "== petrel-vmm processes"
	pgrep -c -f "petrel-vmm.*$ROOT" || true
}
listing >"$T/before"

start=$(date +%s)
for i in $(seq 1 "$CYCLES"); do
	m=${modes[$(((i - 1) % 3))]}
	id=leak$i
	t0=$(date +%s.%N)
	p create --bundle "$T/b-$m" --pid-file "$T/$id.pid" "$id" </dev/null >/dev/null 2>"$T/$id.err" ||
		{ cat "$T/$id.err"; fail "cycle $i ($m): create"; }
	case $m in
	path) ip -n "$ct" link show tap0 >/dev/null 2>&1 || fail "cycle $i: no tap0 in the namespace" ;;
	new) [ "$(readlink "/proc/$(cat "$T/$id.pid")/ns/net")" != "$(readlink /proc/self/ns/net)" ] ||
		fail "cycle $i: the VMM is not in a namespace of its own" ;;
	bridge) [ "$(ip -o link show master "$BR" | wc -l)" = 1 ] || fail "cycle $i: no port on $BR" ;;
	esac
	how=delete
	if [ $((i % KILL_EVERY)) = 0 ]; then
		how="kill -9, delete"
		kill -9 "$(cat "$T/$id.pid")"
		wait_status "$id" stopped 30
	fi
	p delete "$id" 2>"$T/$id.err" || { cat "$T/$id.err"; fail "cycle $i ($m): delete"; }
	[ ! -s "$T/$id.err" ] || { cat "$T/$id.err"; fail "cycle $i ($m): delete warned"; }
	echo "cycle $i: $m, $how: $(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo ?) s"
done
elapsed=$(($(date +%s) - start))
# A namespace's last reference goes asynchronously (cleanup_net): give it a moment.
for _ in $(seq 1 10); do listing >"$T/after"; cmp -s "$T/before" "$T/after" && break; sleep 0.5; done
diff -u "$T/before" "$T/after" || fail "$CYCLES cycles left something behind"
echo "$CYCLES create/delete cycles in $elapsed s ($((elapsed / CYCLES)) s each), every ${KILL_EVERY}th by kill -9: nothing left"
