#!/bin/bash
# virtio-rng: the guest's hwrng is virtio_rng, and /dev/hwrng gives bytes from
# the host's rng-random file, also with a rate limit.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
script='echo "rng_current=$(cat /sys/class/misc/hw_random/rng_current)"
n=$(head -c 512 /dev/hwrng | wc -c)
echo "hwrng-bytes=$n"
distinct=$(head -c 256 /dev/hwrng | od -An -v -tx1 | tr " " "\n" | grep . | sort -u | wc -l)
echo "hwrng-distinct=$distinct"'
vmm_run_script "$script" -object rng-random,id=rng0,filename=/dev/urandom \
	-device virtio-rng-device,rng=rng0,id=rng-dev0 ||
	fail "petrel-vmm exited with status $?"
assert_console "rng_current=virtio_rng"
assert_console "hwrng-bytes=512"
distinct=$(sed -n 's/^hwrng-distinct=\([0-9]*\).*/\1/p' "$T/console" | tr -d '\r')
[ -n "$distinct" ] && [ "$distinct" -gt 100 ] || fail "256 bytes from /dev/hwrng have only '$distinct' distinct values"

# max-bytes=4096 per 1000 ms: 12 KiB take at least about 2 s (the kernel's own
# reads share the quota, which only makes it slower).
script='start=$(cut -d. -f1 /proc/uptime)
n=$(head -c 12288 /dev/hwrng | wc -c)
end=$(cut -d. -f1 /proc/uptime)
echo "limited-bytes=$n seconds=$((end - start))"'
vmm_run_script "$script" -object rng-random,id=rng0,filename=/dev/urandom \
	-device virtio-rng-device,rng=rng0,max-bytes=4096,period=1000 ||
	fail "petrel-vmm exited with status $?"
assert_console "limited-bytes=12288"
secs=$(sed -n 's/^limited-bytes=12288 seconds=\([0-9]*\).*/\1/p' "$T/console" | tr -d '\r')
[ -n "$secs" ] && [ "$secs" -ge 2 ] || fail "12 KiB at 4 KiB/s took '$secs' s, expected at least 2"
