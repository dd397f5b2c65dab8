#!/bin/bash
# A reader that stalls does not stall the VMM: `petrel run`'s output goes into
# a pipe nobody reads for a while; meanwhile QMP query-status answers promptly
# (the VMM's main loop is not blocked in a write), and afterwards every byte
# arrives intact (checksum).
. "$(dirname "$0")/helpers.bash"
runtime_prepare
need_cmd python3
need_cmd sha256sum

# 8 MiB of numbered lines: far more than a pipe (64 KiB) and the relay's queue.
make_bundle "$T/b" '["sh", "-c", "i=0; while [ $i -lt 4096 ]; do printf \"%2047d\\n\" $i; i=$((i+1)); done; echo END"]'
expected=$(i=0; while [ $i -lt 4096 ]; do printf "%2047d\n" $i; i=$((i+1)); done; echo END)
expected_sum=$(printf '%s\n' "$expected" | sha256sum | cut -d' ' -f1)

step "run into a stalled reader"
PYTHONPATH=$PROJ/tests/lib timeout 600 python3 - "$PETREL" "$ROOT" "$T" "$expected_sum" <<'PY' || fail "back-pressure"
import fcntl, hashlib, os, struct, subprocess, sys, termios, time
from qmpclient import QMP
petrel, root, t, want = sys.argv[1:5]
r, w = os.pipe()
proc = subprocess.Popen([petrel, "--root", root, "run", "--bundle", t + "/b", "bp"],
                        stdin=subprocess.DEVNULL, stdout=w, stderr=open(t + "/run.err", "wb"))
os.close(w)
qmp_path = root + "/bp/qmp.sock"
deadline = time.time() + 400
while not os.path.exists(qmp_path):
    assert time.time() < deadline, "no QMP socket"
    assert proc.poll() is None, "run exited: " + open(t + "/run.err").read()
    time.sleep(0.2)
# Wait until the pipe is full: from then on the VMM's writes would block.
def pending():
    return struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0\0\0\0"))[0]
while pending() < 65536:
    assert time.time() < deadline, "the pipe never filled (%d bytes)" % pending()
    assert proc.poll() is None, "run exited: " + open(t + "/run.err").read()
    time.sleep(0.2)
time.sleep(2)
q = QMP(qmp_path, timeout=30)
q.cmd("qmp_capabilities")
worst = 0.0
for i in range(20):
    t0 = time.time()
    q.cmd("query-status")
    worst = max(worst, time.time() - t0)
    time.sleep(0.25)
print("worst query-status latency while stalled: %.3f s" % worst)
assert worst < 2.0, "QMP answered in %.1f s while output was stalled" % worst
assert proc.poll() is None, "the container finished without its output being read"
h = hashlib.sha256()
n = 0
while True:
    b = os.read(r, 65536)
    if not b:
        break
    h.update(b)
    n += len(b)
rc = proc.wait(timeout=300)
print("read %d bytes, run exited %d" % (n, rc))
assert rc == 0, "run exited %d: %s" % (rc, open(t + "/run.err").read())
assert h.hexdigest() == want, "checksum mismatch after %d bytes" % n
PY
echo "output-backpressure: ok"
