#!/bin/bash
# virtio-balloon deflate-on-oom=true: after QMP balloon to 256 MiB (of 512),
# the guest allocates 64 MiB more than it has free. It succeeds, without the
# OOM killer, because the guest takes pages back from the balloon, and the
# balloon's actual grows back (BALLOON_CHANGED, query-balloon).
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
need_cmd python3
script='memfree() { sed -n "s/^MemFree: *\([0-9]*\) kB/\1/p" /proc/meminfo; }
echo "memfree-before=$(memfree)"
echo balloon-oom-guest-up
i=0
while [ "$(memfree)" -gt 300000 ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i + 1)); done
sleep 3
free=$(memfree)
n=$((free / 1024 + 64))
echo "memfree-inflated=$free allocating=${n}M"
mkdir -p /mnt/fill && mount -t tmpfs -o size=1g tmpfs /mnt/fill
dd if=/dev/zero of=/mnt/fill/blob bs=1M count=$n 2>/dev/null && echo "oom-alloc-ok=$(du -m /mnt/fill/blob | cut -f1)M"
echo oom-alloc-done'
timeout 400 "$VMM" -machine microvm -m 512M -smp 1 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-append "$GUEST_APPEND petrel.halt=none petrel.script=$(b64 "$script")" -serial stdio \
	-device virtio-balloon-device,id=balloon0,deflate-on-oom=true \
	-qmp unix:"$T/qmp.sock",server,nowait </dev/null >"$T/console" 2>"$T/stderr" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
PYTHONPATH=$PROJ/tests/lib timeout 380 python3 - "$T/qmp.sock" "$T/console" <<'PY' ||
import sys, time
from qmpclient import QMP, wait_for_text
sock, console = sys.argv[1], sys.argv[2]
MiB = 1 << 20

def wait_console(text):
    wait_for_text(console, text, 300)

wait_console("balloon-oom-guest-up")
q = QMP(sock)
q.negotiate()
r = q.cmd("balloon", {"value": 256 * MiB})
assert r == {"return": {}}, r
actual = None
while actual != 256 * MiB:
    actual = q.wait_event("BALLOON_CHANGED", timeout=200)["data"]["actual"]
print("inflated: actual=%d MiB" % (actual // MiB))
wait_console("oom-alloc-done")
grown = None
deadline = time.time() + 30
while time.time() < deadline:
    r = q.cmd("query-balloon")
    grown = r["return"]["actual"]
    if grown > 256 * MiB + 16 * MiB:
        break
    time.sleep(0.5)
print("after the allocation: actual=%d MiB" % (grown // MiB))
assert grown > 256 * MiB + 16 * MiB, "the balloon did not deflate: actual %d" % grown
ev = q.wait_event("BALLOON_CHANGED", timeout=10)
assert ev["data"]["actual"] > 256 * MiB, ev
r = q.cmd("quit")
assert r == {"return": {}}, r
print("deflate-on-oom ok")
PY
	{ cat "$T/stderr"; tail -n 30 "$T/console"; fail "deflate-on-oom conversation failed"; }
wait $vmm || true
assert_console "oom-alloc-ok="
assert_not_contains "$T/console" "Killed process" "the guest console"
assert_not_contains "$T/console" "Out of memory" "the guest console"
