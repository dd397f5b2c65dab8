#!/bin/bash
# virtio-balloon with -m 1G: the guest touches 400 MiB (tmpfs, then freed),
# QMP balloon to 512 MiB: BALLOON_CHANGED reaches 512 MiB, query-balloon says
# so, the guest's MemTotal drops by about 512 MiB, and the VMM's RSS falls.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
need_cmd python3
script='memtotal() { sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo; }
before=$(memtotal)
echo "memtotal-before=$before"
mkdir -p /mnt/fill && mount -t tmpfs -o size=600m tmpfs /mnt/fill
dd if=/dev/zero of=/mnt/fill/blob bs=1M count=400 2>/dev/null
rm /mnt/fill/blob
echo balloon-guest-filled
i=0
# The whole 512 MiB (524288 kB), give or take what the guest rounds.
while [ "$(memtotal)" -gt $((before - 510000)) ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i + 1)); done
echo "memtotal-after=$(memtotal)"'
timeout 300 "$VMM" -machine microvm -m 1G -smp 1 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-append "$GUEST_APPEND petrel.halt=none petrel.script=$(b64 "$script")" -serial stdio \
	-device virtio-balloon-device,id=balloon0 -qmp unix:"$T/qmp.sock",server,nowait \
	</dev/null >"$T/console" 2>"$T/stderr" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
PYTHONPATH=$PROJ/tests/lib timeout 280 python3 - "$T/qmp.sock" "$T/console" "$vmm" <<'PY' ||
import sys, time
from qmpclient import QMP, wait_for_text
sock, console, pid = sys.argv[1], sys.argv[2], sys.argv[3]
MiB = 1 << 20

def wait_console(text):
    wait_for_text(console, text, 200)

# pid is timeout's; petrel-vmm is its child.
pid = open("/proc/%s/task/%s/children" % (pid, pid)).read().split()[0]
assert "petrel-vmm" in open("/proc/%s/cmdline" % pid).read(), pid

def rss_kib():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

wait_console("balloon-guest-filled")
before = rss_kib()
print("VmRSS before: %d KiB" % before)
assert before > 400 * 1024, "the guest's 400 MiB do not show in the RSS (%d KiB)" % before
q = QMP(sock)
q.negotiate()
r = q.cmd("query-balloon")
assert r == {"return": {"actual": 1024 * MiB}}, r
r = q.cmd("balloon", {"value": 2 * 1024 * MiB})
assert r["error"]["class"] == "GenericError" and "1073741824" in r["error"]["desc"], r
r = q.cmd("balloon", {"value": 512 * MiB})
assert r == {"return": {}}, r
deadline = time.time() + 200
actual = None
while actual != 512 * MiB:
    ev = q.wait_event("BALLOON_CHANGED", timeout=max(1, deadline - time.time()))
    actual = ev["data"]["actual"]
    print("BALLOON_CHANGED actual=%d MiB" % (actual // MiB))
r = q.cmd("query-balloon")
assert r == {"return": {"actual": 512 * MiB}}, r
after = rss_kib()
print("VmRSS after: %d KiB" % after)
assert after < before - 100 * 1024, "RSS fell only from %d to %d KiB" % (before, after)
wait_console("memtotal-after=")
r = q.cmd("quit")
assert r == {"return": {}}, r
print("balloon ok")
PY
	{ cat "$T/stderr"; tail -n 20 "$T/console"; fail "balloon conversation failed"; }
wait $vmm || true
before=$(sed -n 's/^memtotal-before=\([0-9]*\).*/\1/p' "$T/console" | tr -d '\r')
after=$(sed -n 's/^memtotal-after=\([0-9]*\).*/\1/p' "$T/console" | tr -d '\r')
echo "guest MemTotal: $before kB -> $after kB"
[ -n "$before" ] && [ -n "$after" ] || fail "no MemTotal lines on the console"
drop=$((before - after))
# 512 MiB = 524288 kB left the guest.
[ "$drop" -ge 500000 ] && [ "$drop" -le 540000 ] || fail "MemTotal dropped by $drop kB, expected about 524288"
