#!/bin/bash
# Disk hot plug over QMP: with a boot disk (vda), blockdev-add + device_add
# virtio-blk-mmio put a disk with a known pattern into a replaceable slot; the
# guest binds the slot's platform device and reads the pattern from /dev/vdb.
# device_del while the guest's driver holds the disk only marks it: the disk
# leaves (DEVICE_DELETED) when the guest unbinds the driver, and /dev/vdb is
# gone. See docs/vmm.md "Hotplug".
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
need_cmd python3
boot=$T/boot.img
hot=$T/hot.img
truncate -s 8M "$boot"
truncate -s 16M "$hot"
printf 'HOTPLUG-PATTERN-42' | dd of="$hot" conv=notrunc status=none

# The guest: bind any unbound virtio-mmio platform device until vdb shows up,
# read the pattern, wait for the host's go (sector 8 of the disk, read with
# O_DIRECT to bypass the page cache), unbind vdb's driver.
script='bind_all() {
	for d in /sys/bus/platform/devices/virtio-mmio.*; do
		[ -e "$d/driver" ] || echo "${d##*/}" >/sys/bus/platform/drivers/virtio-mmio/bind 2>/dev/null
	done
}
echo hp-booted
i=0
while [ ! -b /dev/vdb ] && [ $i -lt 600 ]; do bind_all; sleep 0.5; i=$((i + 1)); done
[ -b /dev/vdb ] || { echo hp-no-vdb; exit 1; }
echo "hp-pattern=$(head -c 18 /dev/vdb)"
slot=$(basename "$(readlink -f /sys/block/vdb/device/..)")
echo "hp-slot=$slot"
i=0
until dd if=/dev/vdb bs=512 skip=8 count=1 iflag=direct 2>/dev/null | grep -q GO-UNBIND; do
	[ $i -lt 600 ] || { echo hp-no-go; exit 1; }
	sleep 0.5; i=$((i + 1))
done
echo "$slot" >/sys/bus/platform/drivers/virtio-mmio/unbind
[ -e /dev/vdb ] || [ -e /sys/block/vdb ] || echo hp-vdb-gone
echo hp-guest-done
sleep 600'
timeout 400 "$VMM" -machine microvm -m 256 -smp 1 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-append "$GUEST_APPEND petrel.script=$(b64 "$script")" -serial stdio \
	-drive id=rootfs,file="$boot",direct=off -device virtio-blk-device,drive=rootfs \
	-qmp unix:"$T/qmp.sock",server,nowait </dev/null >"$T/console" 2>"$T/stderr" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
PYTHONPATH=$PROJ/tests/lib timeout 380 python3 - "$T/qmp.sock" "$T/console" "$hot" <<'PY' ||
import sys, time
from qmpclient import QMP, QMPError, wait_for_text
sock, console, hot = sys.argv[1:4]

def wait_console(text, timeout=300):
    wait_for_text(console, text, timeout, give_up="hp-no-")

q = QMP(sock)
q.negotiate()
wait_console("hp-booted")
ok = {"return": {}}
# Errors first: they must change nothing.
r = q.cmd("device_add", {"driver": "virtio-blk-mmio", "id": "disk1", "drive": "d1"})
assert r["error"]["class"] == "GenericError" and "not found" in r["error"]["desc"], r
r = q.cmd("device_del", {"id": "rootfs"})
assert "present at boot" in r["error"]["desc"], r
r = q.cmd("blockdev-add", {"node-name": "d1", "file": {"driver": "file", "filename": hot},
                           "cache": {"direct": False}, "read-only": False})
assert r == ok, r
r = q.cmd("device_add", {"driver": "virtio-net-mmio", "id": "disk1", "netdev": "d1"})
assert "is a drive" in r["error"]["desc"], r
r = q.cmd("device_add", {"driver": "virtio-blk-mmio", "id": "disk1", "drive": "d1"})
assert r == ok, r
wait_console("hp-pattern=")
r = q.cmd("device_del", {"id": "disk1"})
assert r == ok, r
try:
    ev = q.wait_event("DEVICE_DELETED", timeout=3)
    raise AssertionError("DEVICE_DELETED before the guest let go of the disk: %r" % ev)
except QMPError:
    pass
r = q.cmd("blockdev-del", {"node-name": "d1"})
assert "busy" in r["error"]["desc"], r
with open(hot, "r+b") as f:
    f.seek(4096)
    f.write(b"GO-UNBIND")
ev = q.wait_event("DEVICE_DELETED", timeout=300)
assert ev["data"]["device"] == "disk1", ev
print("DEVICE_DELETED:", ev)
wait_console("hp-guest-done")
r = q.cmd("blockdev-del", {"node-name": "d1"})
assert r == ok, r
r = q.cmd("quit")
assert r == ok, r
print("hotplug-blk ok")
PY
	{ cat "$T/stderr"; tail -n 30 "$T/console"; fail "hotplug conversation failed"; }
wait $vmm || true
assert_console "hp-pattern=HOTPLUG-PATTERN-42"
assert_console "hp-vdb-gone"
