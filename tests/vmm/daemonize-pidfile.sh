#!/bin/bash
# -daemonize -pidfile: the command returns at once, the pidfile names the running
# VMM (a decimal, no newline); SIGTERM ends it cleanly and removes pidfile and socket.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
timeout 60 "$VMM" -machine microvm -m 256 -kernel "$KERNEL" -initrd "$TEST_INITRD" \
	-append "$GUEST_APPEND petrel.halt=none petrel.script=$(b64 'echo daemon-guest-up')" \
	-serial file,path="$T/console" -qmp unix:"$T/qmp.sock",server,nowait \
	-daemonize -pidfile "$T/vmm.pid" </dev/null >"$T/out" 2>&1 || fail "petrel-vmm -daemonize exited with status $?: $(cat "$T/out")"
[ -s "$T/vmm.pid" ] || fail "no pidfile"
pid=$(cat "$T/vmm.pid")
[[ $pid =~ ^[0-9]+$ ]] || fail "the pidfile holds '$pid', not a decimal pid"
[ "$(tail -c1 "$T/vmm.pid" | od -An -c | tr -d ' ')" != '\n' ] || fail "the pidfile ends with a newline"
on_exit "kill -9 $pid 2>/dev/null"
[ "$(readlink /proc/$pid/exe)" = "$(readlink -f "$VMM")" ] || fail "pid $pid is not petrel-vmm"
[ "$(awk '{print $7}' /proc/$pid/stat)" = 0 ] || fail "the daemon still has a controlling terminal"
for _ in $(seq 120); do grep -q daemon-guest-up "$T/console" 2>/dev/null && break; sleep 0.5; done
assert_console "daemon-guest-up"
[ -S "$T/qmp.sock" ] || fail "no QMP socket while running"
kill -TERM "$pid"
for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
! kill -0 "$pid" 2>/dev/null || fail "petrel-vmm did not exit on SIGTERM"
[ ! -e "$T/vmm.pid" ] || fail "the pidfile is left behind"
[ ! -e "$T/qmp.sock" ] || fail "the QMP socket is left behind"
