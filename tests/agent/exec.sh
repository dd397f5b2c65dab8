#!/bin/bash
# exec runs more processes inside the running container: in its pid, uts and
# mount namespaces, with its own stdio, status and terminal; and not once the
# container is gone.
. "$(dirname "$0")/helpers.bash"
agent_prepare
boot_agent

step "start a long-running container"
client run --hostname exec-box -- sh -c 'echo started; echo inside > /tmp/mark; exec sleep 600' \
	>"$T/init" 2>&1 </dev/null &
run_pid=$!
for i in $(seq 1 100); do grep -q started "$T/init" && break; sleep 0.2; done
assert_contains "$T/init" "started"

expect_run 0 "$T/ns" exec -- sh -c 'cat /tmp/mark; hostname; cat /proc/1/comm; echo pid=$$'
assert_eq "$(sed -n 1p "$T/ns")" "inside" "a file the init wrote, seen by exec"
assert_eq "$(sed -n 2p "$T/ns")" "exec-box" "the hostname seen by exec"
assert_eq "$(sed -n 3p "$T/ns")" "sleep" "pid 1 seen by exec (the container's init)"
pid_line=$(sed -n 4p "$T/ns")
[ "$pid_line" != "pid=1" ] || fail "exec ran as pid 1"

expect_run 7 "$T/exit7" exec -- sh -c 'echo to-stderr >&2; exit 7'
assert_eq "$(cat "$T/exit7.err")" "to-stderr" "exec's stderr"

expect_run 0 "$T/user" exec --user 1000:1000 -- id -u
assert_eq "$(cat "$T/user")" "1000" "exec's uid"

expect_run 0 "$T/tty" exec --tty --size 25x81 -- sh -c 'tty; stty size'
assert_contains "$T/tty" "/dev/pts/"
assert_contains "$T/tty" "25 81"

expect_run 125 "$T/missing" exec -- no-such-program
assert_contains "$T/missing.err" 'exec: "no-such-program": executable file not found in $PATH'

client exec -- sh -c 'echo ready; exec sleep 600' >"$T/second" 2>&1 </dev/null &
exec_pid=$!
for i in $(seq 1 100); do grep -q ready "$T/second" && break; sleep 0.2; done
step "kill --all KILL, then wait for both processes"
# kill --all reaches every process in the container's pid namespace, exec'd ones included.
client kill --all KILL || fail "kill --all failed"
rc=0
wait "$run_pid" || rc=$?
assert_eq "$rc" "137" "the init's status after kill --all KILL"
rc=0
wait "$exec_pid" || rc=$?
assert_eq "$rc" "137" "the exec'd process's status after kill --all KILL"

expect_run 125 "$T/late" exec -- true
assert_contains "$T/late.err" "not running"
shutdown_agent
