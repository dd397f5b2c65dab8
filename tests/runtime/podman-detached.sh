#!/bin/bash
# A long-running podman container with the runtime under test: run -d, ps
# shows it, exec runs more processes in it (status and output), pause and
# unpause, stop sends
# TERM and, when the container ignores it, KILL after the timeout; kill, wait
# and rm; podman reports each exit code.
. "$(dirname "$0")/../lib/common.sh"
. "$PROJ/tests/lib/images.sh"
need_runtime podman
podman_setup
podman_image
name=petrel-detached-$$
stubborn=petrel-stubborn-$$
on_exit "podman --runtime '$RUNTIME' rm -f -t 0 $name $stubborn >/dev/null 2>&1"

# The trap makes TERM end the container's init (pid 1 ignores signals it has no handler for).
expect_status 0 "$T/id" pm run -d --name "$name" --network none "$IMAGE" \
	sh -c 'trap "echo got-term; exit 0" TERM; echo started; while :; do sleep 1; done'
# logs_started NAME [N]: the container's log has N (default 1) "started" lines.
# (No grep -q in a pipe: with pipefail, podman's SIGPIPE would read as a failure.)
logs_started() { [ "$(pm logs "$1" 2>/dev/null | grep -c started)" -ge "${2:-1}" ]; }
wait_for logs_started "$name" || { pm logs "$name"; fail "the detached container did not print 'started'"; }

expect_status 0 "$T/ps" pm ps --format '{{.Names}} {{.Status}}'
grep -q "^$name Up" "$T/ps" || { cat "$T/ps"; fail "podman ps does not show $name as Up"; }

expect_status 0 "$T/exec" pm exec "$name" sh -c 'echo exec-ok; cat /proc/1/cmdline | tr "\0" " "; echo'
assert_eq "$(sed -n 1p "$T/exec")" "exec-ok" "podman exec's output"
assert_contains "$T/exec" "sh -c trap" "pid 1 seen by podman exec"
expect_status 4 "$T/exec4" pm exec "$name" sh -c 'exit 4'
expect_status 0 "$T/exec-i" pm exec -i "$name" echo with-i
assert_eq "$(cat "$T/exec-i")" "with-i" "podman exec -i's output"

expect_status 0 "$T/pause" pm pause "$name"
expect_status 0 "$T/paused" pm inspect --format '{{.State.Status}}' "$name"
assert_eq "$(cat "$T/paused")" "paused" "the state after podman pause"
expect_status 0 "$T/unpause" pm unpause "$name"
expect_status 0 "$T/exec-after" pm exec "$name" echo after-unpause
assert_eq "$(cat "$T/exec-after")" "after-unpause" "podman exec after unpause"

expect_status 0 "$T/stop" pm stop -t 30 "$name"
expect_status 0 "$T/code" pm inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$name"
assert_eq "$(cat "$T/code")" "exited 0" "the state after podman stop (TERM handled)"
pm logs "$name" >"$T/logs" 2>&1
assert_contains "$T/logs" "got-term" "the container's log"
expect_status 0 "$T/rm" pm rm "$name"
expect_status 0 "$T/ps-a" pm ps -a --format '{{.Names}}'
assert_not_contains "$T/ps-a" "$name" "podman ps -a after rm"

# TERM ignored: podman stop sends KILL after the timeout.
expect_status 0 "$T/id2" pm run -d --name "$stubborn" --network none "$IMAGE" \
	sh -c 'trap "" TERM; echo started; while :; do sleep 1; done'
wait_for logs_started "$stubborn" || fail "the second container did not print 'started'"
start=$(date +%s)
expect_status 0 "$T/stop2" pm stop -t 3 "$stubborn"
secs=$(($(date +%s) - start))
[ "$secs" -ge 3 ] || fail "podman stop -t 3 returned after ${secs}s: TERM was not ignored"
expect_status 0 "$T/code2" pm inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$stubborn"
assert_eq "$(cat "$T/code2")" "exited 137" "the state after podman stop (KILL after the timeout)"

# start again, then podman kill (KILL) and wait.
expect_status 0 "$T/restart" pm start "$stubborn"
wait_for logs_started "$stubborn" 2 || { pm logs "$stubborn"; fail "the restarted container did not print 'started'"; }
expect_status 0 "$T/kill" pm kill "$stubborn"
expect_status 0 "$T/wait" pm wait "$stubborn"
assert_eq "$(cat "$T/wait")" "137" "podman wait after podman kill"
expect_status 0 "$T/rm2" pm rm "$stubborn"
assert_runtime_root_empty "$(runtime_default_root)"
