#!/bin/bash
# The 8250's backends other than stdio, both ways: -serial pty (the path is
# printed), -chardev socket server (nowait, and waiting for its client) and
# -serial file. The guest prints a marker, reads a line from ttyS0 and echoes it.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
need_cmd python3
# The marker repeats until a line arrives: with nowait, a client may connect
# after the first one went out (output without a client is dropped). One
# reader without a timeout: a read that times out mid-line (slow under TCG)
# would drop the bytes it had taken.
script='(read -r line </dev/ttyS0; echo "got:$line") &
reader=$!
while kill -0 $reader 2>/dev/null; do echo SERIAL-MARK-OUT; sleep 2; done
wait $reader'
vmm_bg() { # petrel-vmm args...: starts the VMM in the background, pid in $vmm_pid
	"$VMM" -machine microvm -m 256 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
		-append "$GUEST_APPEND petrel.script=$(b64 "$script")" "$@" </dev/null >"$T/out" 2>"$T/stderr" &
	vmm_pid=$!
	on_exit "kill -9 $vmm_pid 2>/dev/null"
}
# talk PATH-KIND PATH: opens the pty or connects to the socket, waits for the
# marker, sends a line, waits for the echo; prints what it saw.
talk() {
	python3 - "$1" "$2" <<'PY'
import os, socket, sys, time, termios, tty
kind, path = sys.argv[1], sys.argv[2]
if kind == "pty":
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    rd = lambda: os.read(fd, 4096)
    wr = lambda b: os.write(fd, b)
else:
    s = socket.socket(socket.AF_UNIX)
    for _ in range(200):
        try:
            s.connect(path); break
        except OSError:
            time.sleep(0.1)
    s.settimeout(120)
    rd = lambda: s.recv(4096)
    wr = lambda b: s.sendall(b)
buf = b""
deadline = time.time() + 150
sent = False
while time.time() < deadline:
    try:
        data = rd()
    except (TimeoutError, socket.timeout):
        break
    if not data:
        break
    buf += data
    if not sent and b"SERIAL-MARK-OUT" in buf:
        time.sleep(0.5)
        wr(b"hello-from-host\r")
        sent = True
    if b"got:hello-from-host" in buf:
        break
sys.stdout.write(buf.decode(errors="replace"))
PY
}
wait_vmm() {
	local rc=0
	timeout 150 tail --pid="$vmm_pid" -f /dev/null || true
	wait "$vmm_pid" || rc=$?
	return $rc
}

# -serial pty: the path is printed on stderr, as QEMU does.
vmm_bg -serial pty
for _ in $(seq 100); do grep -q 'char device redirected to' "$T/stderr" && break; sleep 0.1; done
pty=$(sed -n 's/^char device redirected to \(\/dev\/pts\/[0-9]*\) .*/\1/p' "$T/stderr")
[ -n "$pty" ] || { cat "$T/stderr"; fail "petrel-vmm -serial pty printed no pty path"; }
talk pty "$pty" >"$T/console"
assert_console "SERIAL-MARK-OUT"
assert_console "got:hello-from-host"
wait_vmm || fail "petrel-vmm -serial pty exited with status $?"

# -chardev socket,server,nowait: the guest runs without a client; a client
# that connects later gets the output from then on and can type.
vmm_bg -chardev socket,id=s0,path="$T/con.sock",server,nowait -serial chardev:s0
talk socket "$T/con.sock" >"$T/console" || true
assert_console "got:hello-from-host"
wait_vmm || fail "petrel-vmm with a socket chardev exited with status $?"
[ ! -e "$T/con.sock" ] || fail "the socket $T/con.sock was left behind"

# -chardev socket,server (no nowait): the guest starts only once a client is
# there, so the client sees the whole console from the first line.
vmm_bg -chardev socket,id=s0,path="$T/con2.sock",server -serial chardev:s0
sleep 2
grep -q 'waiting for a client' "$T/stderr" "$T/out" 2>/dev/null || true
talk socket "$T/con2.sock" >"$T/console" || true
assert_console "PETREL-GUEST-READY"
assert_console "got:hello-from-host"
wait_vmm || fail "petrel-vmm with a waiting socket chardev exited with status $?"

# -serial file,path=: output only.
script='echo SERIAL-FILE-MARK'
vmm_bg -serial file,path="$T/serial.txt"
wait_vmm || fail "petrel-vmm -serial file exited with status $?"
assert_contains "$T/serial.txt" "SERIAL-FILE-MARK" "the serial file"
assert_contains "$T/serial.txt" "PETREL-TEST-EXIT=0" "the serial file"
