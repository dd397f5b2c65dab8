#!/bin/bash
# QMP on a running guest: stop -> query-status "paused" -> cont -> "running" ->
# quit, with the STOP, RESUME and SHUTDOWN events; a second client after the
# first disconnects gets a fresh greeting; malformed JSON keeps the connection.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
need_cmd python3
timeout 120 "$VMM" -machine microvm -m 256 -smp 2 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-append "$GUEST_APPEND petrel.halt=none petrel.script=$(b64 'echo qmp-guest-up')" \
	-serial stdio -qmp unix:"$T/qmp.sock",server,nowait </dev/null >"$T/console" 2>"$T/stderr" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
PYTHONPATH=$PROJ/tests/lib timeout 100 python3 - "$T/qmp.sock" "$T/console" <<'PY' || fail "QMP conversation failed"
import sys, time
from qmpclient import QMP
sock, console = sys.argv[1], sys.argv[2]
deadline = time.time() + 90
while "qmp-guest-up" not in open(console, errors="replace").read():
    assert time.time() < deadline, "guest did not come up"
    time.sleep(0.2)

q = QMP(sock)
assert q.greeting["QMP"]["version"]["qemu"]["major"] >= 0, q.greeting
r = q.cmd("query-status")
assert r["error"]["class"] == "CommandNotFound", r      # before negotiation
q.negotiate()
r = q.cmd("query-status", id="a1")
assert r["id"] == "a1" and r["return"]["status"] == "running" and r["return"]["running"] is True, r
r = q.cmd("stop")
assert r == {"return": {}}, r
q.wait_event("STOP")
r = q.cmd("query-status")
assert r["return"]["status"] == "paused" and r["return"]["running"] is False, r
r = q.cmd("cont", id=7)
assert r == {"return": {}, "id": 7}, r
q.wait_event("RESUME")
r = q.cmd("query-status")
assert r["return"]["status"] == "running", r
r = q.cmd("query-cpus-fast")
assert len(r["return"]) == 2 and all(c["thread-id"] > 0 for c in r["return"]), r
r = q.cmd("no-such-command")
assert r["error"]["class"] == "CommandNotFound", r
q.send_raw('{"execute": query-status}\n')
r = q.reply()
assert "error" in r and r["error"]["class"] == "GenericError", r
r = q.cmd("query-version")
assert "return" in r, r
q.close()

q = QMP(sock)                     # one after another: a fresh greeting
q.negotiate()
r = q.cmd("quit")
assert r == {"return": {}}, r
ev = q.wait_event("SHUTDOWN")
assert ev["data"]["reason"] == "host-qmp-quit" and ev["data"]["guest"] is False, ev
print("qmp ok")
PY
wait $vmm
rc=$?
assert_eq "$rc" 0 "petrel-vmm's exit status after quit"
[ ! -e "$T/qmp.sock" ] || fail "the QMP socket is left behind"
