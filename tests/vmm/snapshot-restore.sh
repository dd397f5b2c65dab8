#!/bin/bash
# QMP migrate to file:DIR and -incoming file:DIR (docs/vmm.md, "Snapshots"): a
# running guest is stopped, saved and its VMM quits; a new petrel-vmm restores
# it and the same guest goes on (its counter continues, it does not boot
# again), with another disk behind the same virtio-blk device: the snapshot's
# empty disk becomes a 1 MiB one through a config-change interrupt, and the
# guest reads the new disk's data. Bad requests change nothing: migrate while
# running, a bad URI, a restore with another -m, a corrupted state file.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
need_cmd python3
: >"$T/empty.img"
truncate -s 1M "$T/data.img"
printf 'SECOND-DISK-DATA' | dd of="$T/data.img" conv=notrunc status=none
script='echo snap-guest-up; i=0
while :; do i=$((i+1)); echo "tick-$i size=$(cat /sys/block/vda/size) data=$(head -c 16 /dev/vda)"; sleep 0.3; done'
args=(-machine microvm -m 256 -smp 1 -kernel "$KERNEL" -initrd "$TEST_INITRD"
	-append "$GUEST_APPEND petrel.halt=none petrel.script=$(b64 "$script")")
timeout 120 "$VMM" "${args[@]}" -drive id=d0,file="$T/empty.img" -device virtio-blk-device,drive=d0 \
	-serial file,path="$T/console" -qmp unix:"$T/qmp.sock",server,nowait \
	</dev/null >"$T/stdout" 2>"$T/stderr" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
PYTHONPATH=$PROJ/tests/lib timeout 100 python3 - "$T/qmp.sock" "$T/console" "$T/snap" <<'PY' ||
import sys, time
from qmpclient import QMP
sock, console, snap = sys.argv[1:4]
deadline = time.time() + 90
while "tick-3 " not in open(console, errors="replace").read():
    assert time.time() < deadline, "guest did not come up"
    time.sleep(0.2)
q = QMP(sock)
q.negotiate()
r = q.cmd("migrate", {"uri": "file:" + snap})
assert r["error"]["class"] == "GenericError" and "paused" in r["error"]["desc"], r
r = q.cmd("stop")
assert r == {"return": {}}, r
r = q.cmd("migrate", {"uri": "tcp:localhost:4444"})
assert r["error"]["class"] == "GenericError" and "file:DIR" in r["error"]["desc"], r
r = q.cmd("migrate", {"uri": "file:" + snap})
assert r == {"return": {}}, r
r = q.cmd("quit")
assert r == {"return": {}}, r
print("saved")
PY
	fail "saving the snapshot failed"
wait $vmm
assert_eq "$?" 0 "the first petrel-vmm's exit status"
[ -s "$T/snap/state" ] && [ -f "$T/snap/memory" ] || fail "the snapshot directory is incomplete"
assert_eq "$(stat -c %s "$T/snap/memory")" $((256 << 20)) "the memory file's size"
used=$(du -k "$T/snap/memory" | cut -f1)
[ "$used" -lt $((200 << 10)) ] || fail "the memory file is not sparse ($used KiB used)"
last=$(grep -o 'tick-[0-9]*' "$T/console" | tail -1 | cut -d- -f2)
grep -q 'tick-1 size=0 ' "$T/console" || fail "the saved guest did not see an empty disk"

# Another machine shape is refused, and leaves nothing behind.
timeout 30 "$VMM" -machine microvm -m 512 -smp 1 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-drive id=d0,file="$T/data.img" -device virtio-blk-device,drive=d0 -serial file,path="$T/c2" \
	-qmp unix:"$T/qmp2.sock",server,nowait -incoming file:"$T/snap" 2>"$T/err-mem" &&
	fail "a restore with another -m succeeded"
assert_contains "$T/err-mem" "256 MiB" "the error for another -m"
[ ! -e "$T/qmp2.sock" ] || fail "a failed restore left its QMP socket"
cp -r "$T/snap" "$T/bad"
truncate -s -100 "$T/bad/state"
timeout 30 "$VMM" "${args[@]}" -drive id=d0,file="$T/data.img" -device virtio-blk-device,drive=d0 \
	-incoming file:"$T/bad" 2>"$T/err-bad" && fail "a truncated snapshot was restored"
assert_contains "$T/err-bad" "truncated" "the error for a truncated snapshot"

# The restore: the same guest goes on, with the new disk.
timeout 120 "$VMM" "${args[@]}" -drive id=d0,file="$T/data.img" -device virtio-blk-device,drive=d0 \
	-serial file,path="$T/console2" -qmp unix:"$T/qmp3.sock",server,nowait \
	-incoming file:"$T/snap" </dev/null >"$T/stdout2" 2>"$T/stderr2" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
for _ in $(seq 100); do
	grep -q 'data=SECOND-DISK-DATA' "$T/console2" 2>/dev/null && break
	kill -0 $vmm 2>/dev/null || fail "the restored VMM exited: $(cat "$T/stderr2")"
	sleep 0.3
done
assert_contains "$T/console2" "size=2048 data=SECOND-DISK-DATA" "the restored guest's view of the new disk"
assert_not_contains "$T/console2" "snap-guest-up"
first=$(grep -o 'tick-[0-9]*' "$T/console2" | head -1 | cut -d- -f2)
[ "$first" -gt "$last" ] || fail "the restored guest's counter restarted (tick-$first after tick-$last)"
PYTHONPATH=$PROJ/tests/lib timeout 30 python3 - "$T/qmp3.sock" <<'PY' || fail "QMP on the restored VM"
import sys
from qmpclient import QMP
q = QMP(sys.argv[1]); q.negotiate()
r = q.cmd("query-status")
assert r["return"]["status"] == "running", r
assert q.cmd("quit") == {"return": {}}
PY
wait $vmm
assert_eq "$?" 0 "the restored petrel-vmm's exit status"
echo "restored: tick-$last -> tick-$first"
