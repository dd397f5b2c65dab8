#!/bin/bash
# Bad command lines: non-zero exit, exactly one line "petrel-vmm: <option>: ...",
# and nothing left behind (no QMP socket, no pidfile, no log file).
. "$(dirname "$0")/../lib/common.sh"
need_vmm
cd "$T"
check_bad() { # expected-substring args...
	local want=$1
	shift
	rm -f out err
	if "$VMM" "$@" -qmp unix:"$T/q.sock",server,nowait -D "$T/vmm.log" >out 2>err </dev/null; then
		fail "petrel-vmm $* succeeded"
	fi
	[ "$(wc -l <err)" = 1 ] || { cat err; fail "petrel-vmm $* printed $(wc -l <err) lines on stderr, expected 1"; }
	grep -q "^petrel-vmm: .*$want" err || fail "petrel-vmm $*: stderr is '$(cat err)', expected '$want'"
	for f in q.sock vmm.log pid; do
		[ ! -e "$T/$f" ] || fail "petrel-vmm $* left $T/$f behind"
	done
}
k=(-kernel "$KERNEL")
check_bad "-smp: " "${k[@]}" -smp 255
check_bad "-smp: " "${k[@]}" -smp 0
check_bad "-m: " "${k[@]}" -m 128M
check_bad "-m: " "${k[@]}" -m 513G
check_bad "-name: " "${k[@]}" -name "$(printf 'x%.0s' $(seq 256))"
check_bad "-machine: " "${k[@]}" -machine type=pc-q99
check_bad "-drive: " "${k[@]}" -drive id=d0
check_bad "-device: " "${k[@]}" -device virtio-blk-device,drive=missing
check_bad "-pidfile: " "${k[@]}" -pidfile "$T/pid"
check_bad "-nosuch: " "${k[@]}" -nosuch
check_bad "-kernel: " -kernel "$T/no-such-kernel"
check_bad "-drive d0: .*No such file" "${k[@]}" -drive id=d0,file="$T/no-such-disk" -device virtio-blk-device,drive=d0
# A disk beyond the limit of 6.
args=("${k[@]}")
for i in 0 1 2 3 4 5 6; do
	truncate -s 1M "$T/d$i"
	args+=(-drive "id=d$i,file=$T/d$i" -device "virtio-blk-device,drive=d$i")
done
check_bad "-device: " "${args[@]}"
# The device set of issue 4: bad values at parse time.
check_bad "-netdev: unknown type 'user'" "${k[@]}" -netdev user,id=n0
check_bad "-netdev: .*exactly one of ifname=, fd=, fds=" "${k[@]}" -netdev tap,id=n0
check_bad "-device: netdev 'n9' does not exist" "${k[@]}" -device virtio-net-device,netdev=n9
check_bad "-device: .*mac '01:00:00:00:00:00' is not valid" "${k[@]}" -netdev tap,id=n0,ifname=pt0 -device virtio-net-device,netdev=n0,mac=01:00:00:00:00:00
check_bad "-device: guest-cid=2 is out of range; allowed: 3 to 4294967295" "${k[@]}" -device vhost-vsock-device,id=v0,guest-cid=2
check_bad "-device: a second vhost-vsock-device" "${k[@]}" -device vhost-vsock-device,id=v0,guest-cid=3 -device vhost-vsock-device,id=v1,guest-cid=4
check_bad "-device: virtconsole 'c0' needs a virtio-serial-device" "${k[@]}" -device virtconsole,chardev=x,id=c0
check_bad "-device: rng 'r0' does not exist" "${k[@]}" -device virtio-rng-device,rng=r0
check_bad "-object: too many iothreads; allowed: at most 8" "${k[@]}" $(for i in 0 1 2 3 4 5 6 7 8; do echo -object iothread,id=io$i; done)
check_bad "-mem-path: .*not an absolute path" "${k[@]}" -mem-path hugepages
check_bad "-device: virtio-balloon-device cannot be used with -mem-path" "${k[@]}" -mem-path /dev/hugepages -device virtio-balloon-device
