#!/bin/bash
# virtio-console: the guest's hvc0 on a unix socket chardev, both ways. The
# guest writes a line on /dev/hvc0 that the host reads from the socket, and
# reads back a line the host sends (echoed on ttyS0 as "got:<line>").
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
need_cmd python3
script='exec 3<>/dev/hvc0
stty -F /dev/hvc0 raw -echo 2>/dev/null || stty raw -echo <&3
echo hvc0-open
echo "from-guest:hello" >&3
read -r line <&3
echo "got:$line"
echo "guest-saw:$line" >&3
sleep 1'
timeout 150 "$VMM" -machine microvm -m 256 -smp 1 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-append "$GUEST_APPEND petrel.script=$(b64 "$script")" -serial stdio \
	-chardev socket,id=con0,path="$T/con.sock",server \
	-device virtio-serial-device -device virtconsole,chardev=con0,id=console0 \
	</dev/null >"$T/console" 2>"$T/stderr" &
vmm=$!
on_exit "kill -9 $vmm 2>/dev/null"
# Without nowait the guest starts when the host side connects, so no output is lost.
timeout 120 python3 - "$T/con.sock" <<'PY' >"$T/hostside" || { cat "$T/hostside"; tail -n 20 "$T/console"; cat "$T/stderr"; fail "console conversation failed"; }
import socket, sys, time
path = sys.argv[1]
deadline = time.time() + 30
while True:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        break
    except OSError:
        s.close()
        assert time.time() < deadline, "no console socket"
        time.sleep(0.1)
s.settimeout(110)
buf = b""
def wait_for(text):
    global buf
    while text not in buf:
        chunk = s.recv(4096)
        assert chunk, "console socket closed; got %r" % buf
        buf += chunk
wait_for(b"from-guest:hello")
print("host got the guest's line")
s.sendall(b"ping-from-host-42\n")
wait_for(b"guest-saw:ping-from-host-42")
print("guest got the host's line")
PY
wait $vmm
rc=$?
[ $rc = 0 ] || { cat "$T/stderr"; tail -n 20 "$T/console"; fail "petrel-vmm exited with status $rc"; }
assert_console "got:ping-from-host-42"
assert_console "PETREL-TEST-EXIT=0"
