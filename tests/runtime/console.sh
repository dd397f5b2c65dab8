#!/bin/bash
# --console-socket: a listener receives the pty master by SCM_RIGHTS, sees the
# container's output through it, and a resize on the master reaches the
# container (stty size).
. "$(dirname "$0")/helpers.bash"
runtime_prepare
need_cmd python3

make_bundle "$T/b" '["sh", "-c", "stty size; tty; echo mark; sleep 4; stty size"]' true
start_listener() { # SOCKET OUT [listener args...]
	local sock=$1 out=$2 i
	shift 2
	python3 "$(dirname "$0")/console-listener.py" "$sock" "$out" "$sock.ready" "$@" >"$sock.log" 2>&1 &
	on_exit "kill $! 2>/dev/null"
	for i in $(seq 1 100); do [ -e "$sock.ready" ] && return 0; sleep 0.1; done
	cat "$sock.log"
	fail "the console listener did not start"
}
# pty_text_when OUT LINE: what the listener saved in OUT, without the pty's
# CRs, once it has the line LINE (or after 30 s).
pty_text_when() {
	local i
	for i in $(seq 1 150); do
		tr -d '\r' <"$1" | grep -qx "$2" && break
		sleep 0.2
	done
	tr -d '\r' <"$1"
}
start_listener "$T/console.sock" "$T/console.out" 30x100 mark 40x120

step "create with --console-socket"
expect_fail "$T/e1" "cannot allocate tty if petrel will detach without setting console socket" create --bundle "$T/b" c0
p create --bundle "$T/b" --console-socket "$T/console.sock" c1 </dev/null >"$T/c1.out" 2>"$T/c1.err" ||
	{ cat "$T/c1.err"; fail "create"; }
p start c1
wait_file "$T/console.out" "mark" 120
step "resize, then the container's second stty size"
pty_text_when "$T/console.out" "40 120" >"$T/console.txt"
assert_contains "$T/console.txt" "30 100"
assert_contains "$T/console.txt" "/dev/pts/"
assert_contains "$T/console.txt" "40 120"
wait_status c1 stopped 60
p delete c1
assert_root_empty

step "exec --tty --detach with its own console socket"
make_bundle "$T/b2" '["sh", "-c", "echo ready; exec sleep 600"]'
p create --bundle "$T/b2" c2 </dev/null >"$T/c2.out" 2>"$T/c2.err" || { cat "$T/c2.err"; fail "create c2"; }
p start c2
wait_file "$T/c2.out" "ready"
start_listener "$T/exec.sock" "$T/exec.out" - mark 25x75
cat >"$T/proc.json" <<JSON
{"terminal": true, "consoleSize": {"height": 20, "width": 70}, "args": ["sh", "-c", "tty; stty size; echo mark; sleep 4; stty size; exit 6"],
 "env": ["PATH=/bin", "TERM=xterm"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
JSON
p exec --detach --pid-file "$T/exec.pid" --console-socket "$T/exec.sock" --process "$T/proc.json" c2 ||
	fail "exec --detach --console-socket"
wait_file "$T/exec.out" "mark" 60
pty_text_when "$T/exec.out" "25 75" >"$T/exec.txt"
assert_contains "$T/exec.txt" "/dev/pts/"
assert_contains "$T/exec.txt" "20 70"
assert_contains "$T/exec.txt" "25 75"
p delete --force c2
assert_root_empty
