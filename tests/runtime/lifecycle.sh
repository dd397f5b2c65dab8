#!/bin/bash
# The container lifecycle through the petrel CLI with real guests: create ->
# created, start -> running, kill -> stopped, delete leaves nothing; run's
# exit statuses 0, 3 and 137; a VMM killed with SIGKILL reads as stopped;
# the relay's announcement socket is gone once it is connected.
. "$(dirname "$0")/helpers.bash"
runtime_prepare

step "create"
make_bundle "$T/b1" '["sh", "-c", "echo started; hostname; exec sleep 600"]'
p create --bundle "$T/b1" --pid-file "$T/c1.pid" c1 </dev/null >"$T/c1.out" 2>"$T/c1.err" ||
	{ cat "$T/c1.err"; fail "create failed"; }
assert_eq "$(state_field c1 status)" "created" "status after create"
pid=$(cat "$T/c1.pid")
[ "$(tail -c1 "$T/c1.pid" | od -An -c | tr -d ' ')" != '\n' ] || fail "the pid file ends in a newline"
assert_eq "$(state_field c1 pid)" "$pid" "state's pid and the pid file"
assert_eq "$(state_field c1 bundle)" "$T/b1" "state's bundle"
[ "$(stat -c %a "$ROOT/c1")" = 700 ] || fail "the state dir is not 0700"
grep -q "petrel-vmm" "/proc/$pid/cmdline" || fail "pid $pid is not petrel-vmm"
# The relay removes its announcement socket once it is connected to the agent
# (docs/agent-protocol.md; a guest restored from a VM template announced itself
# before its snapshot: tests/runtime/vm-template.sh).
[ -S "$ROOT/c1/agent.sock" ] || fail "no agent.sock in the state dir"
[ ! -e "$ROOT/c1/agent.sock_1025" ] || fail "agent.sock_1025 is still there after create"
# With quiet (petrel's guest command line) the agent writes no info lines to the console.
# (A guest restored from a VM template may have written nothing to it yet.)
[ -f "$ROOT/c1/console.log" ] || fail "no guest console log in the state dir"
assert_not_contains "$ROOT/c1/console.log" "listening on vsock port" "the guest console"
p list | grep -q "^c1 .*created" || { p list; fail "list does not show c1 created"; }

step "start"
p start c1 || fail "start failed"
assert_eq "$(state_field c1 status)" "running" "status after start"
wait_file "$T/c1.out" "started"
assert_contains "$T/c1.out" "petrel-test"
p ps --format json c1 | grep -q "\[$pid\]" || fail "ps does not list the VMM"

step "kill KILL, then delete"
p kill c1 KILL || fail "kill failed"
wait_status c1 stopped 60
assert_eq "$(state_field c1 pid)" "0" "a stopped container's pid"
expect_fail "$T/kill-stopped" "container not running" kill c1
p delete c1 || fail "delete of a stopped container failed"
assert_root_empty
expect_fail "$T/state-gone" "container does not exist" state c1

step "run: exit statuses"
make_bundle "$T/b0" '["true"]'
rc=0; p run --bundle "$T/b0" r0 </dev/null >"$T/r0.out" 2>&1 || rc=$?
assert_eq "$rc" 0 "run true"
make_bundle "$T/b3" '["sh", "-c", "echo three; exit 3"]'
rc=0; p run --bundle "$T/b3" r3 </dev/null >"$T/r3.out" 2>&1 || rc=$?
assert_eq "$rc" 3 "run exit 3"
assert_contains "$T/r3.out" "three"
make_bundle "$T/b9" '["sh", "-c", "echo up; exec sleep 600"]'
p run --bundle "$T/b9" r9 </dev/null >"$T/r9.out" 2>&1 &
run_pid=$!
wait_file "$T/r9.out" "up"
p kill r9 KILL || fail "kill r9 failed"
rc=0; wait "$run_pid" || rc=$?
assert_eq "$rc" 137 "run killed with KILL"
assert_root_empty

step "a VMM killed with SIGKILL"
make_bundle "$T/b4" '["sleep", "600"]'
p create --bundle "$T/b4" --pid-file "$T/c4.pid" c4 </dev/null >/dev/null 2>"$T/c4.err" || { cat "$T/c4.err"; fail "create c4"; }
p start c4
kill -9 "$(cat "$T/c4.pid")"
wait_status c4 stopped 30
p delete c4 || fail "delete after the VMM died"
assert_root_empty

step "delete of a created container"
p create --bundle "$T/b4" c5 </dev/null >/dev/null 2>"$T/c5.err" || { cat "$T/c5.err"; fail "create c5"; }
p delete c5 || fail "plain delete of a created container"
assert_root_empty
