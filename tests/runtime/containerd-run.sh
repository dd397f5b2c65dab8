#!/bin/bash
# containerd's runc v2 shim drives the runtime under test (ctr --runc-binary):
# output and exit statuses 0 and 3 of `ctr run --rm`, `ctr run -t` on a
# terminal, a detached task that exec reaches, paused and resumed, killed
# with `ctr task kill` and deleted, and nothing left under the runtime's
# --root afterwards.
. "$(dirname "$0")/../lib/common.sh"
. "$PROJ/tests/lib/images.sh"
need_runtime containerd
containerd_start
containerd_image
root=$T/runtime-root
mkdir -p "$root"
# What every ctr run here passes: the shim runs RUNTIME with --root ROOT/<namespace>.
rt=(--runtime io.containerd.runc.v2 --runc-binary "$RUNTIME" --runc-root "$root")
id=petrel-$$
on_exit "ctr -a '$CTR_SOCK' -n $CTR_NS task delete -f $id-d >/dev/null 2>&1; ctr -a '$CTR_SOCK' -n $CTR_NS container rm $id-d $id-echo $id-exit3 $id-tty >/dev/null 2>&1"

expect_status 0 "$T/hello" ctr_ run --rm "${rt[@]}" "$IMAGE" "$id-echo" echo hello
assert_eq "$(tr -d '\r' <"$T/hello")" "hello" "the output of ctr run echo hello"

expect_status 3 "$T/exit3" ctr_ run --rm "${rt[@]}" "$IMAGE" "$id-exit3" sh -c 'exit 3'

# A terminal: ctr run -t on a real one (script makes the pty).
need_cmd script
ctrq=$(printf '%q ' ctr -a "$CTR_SOCK" -n "$CTR_NS" run --rm -t "${rt[@]}" "$IMAGE" "$id-tty")
echo "[$(date +%T)] ctr run -t"
# ctr sends the terminal's size after the task has started: the sleep lets it land.
script -qec "stty rows 30 cols 90; $ctrq sh -c 'tty; sleep 2; stty size; exit 2'" /dev/null </dev/null >"$T/tty" 2>&1 && rc=0 || rc=$?
tr -d '\r' <"$T/tty" >"$T/tty.txt"
assert_eq "$rc" "2" "the exit status of ctr run -t"
assert_contains "$T/tty.txt" "/dev/pts/" "the tty of ctr run -t"
assert_contains "$T/tty.txt" "30 90" "the terminal size in ctr run -t"

expect_status 0 "$T/detached" ctr_ run -d "${rt[@]}" "$IMAGE" "$id-d" \
	sh -c 'trap "exit 0" TERM; echo started >/tmp/mark; while :; do sleep 1; done'
# Predicates read all of ctr's output (no grep -q: with pipefail a SIGPIPE fails them).
task_running() { ctr_ task ls | grep -E "^$1 +[0-9]+ +RUNNING" >/dev/null; }
wait_for task_running "$id-d" || { ctr_ task ls; fail "the detached task is not RUNNING"; }
marked() { ctr_ task exec --exec-id "probe$RANDOM" "$id-d" cat /tmp/mark | grep started >/dev/null; }
wait_for marked || fail "the detached task did not write /tmp/mark"
expect_status 0 "$T/exec" ctr_ task exec --exec-id e1 "$id-d" sh -c 'echo exec-ok; cat /proc/1/cmdline | tr "\0" " "; echo'
assert_eq "$(sed -n 1p "$T/exec" | tr -d '\r')" "exec-ok" "ctr task exec's output"
assert_contains "$T/exec" "sh -c trap" "pid 1 seen by ctr task exec"
expect_status 4 "$T/exec4" ctr_ task exec --exec-id e2 "$id-d" sh -c 'exit 4'

expect_status 0 "$T/pause" ctr_ task pause "$id-d"
task_paused() { ctr_ task ls | grep -E "^$1 +[0-9]+ +PAUSED" >/dev/null; }
wait_for task_paused "$id-d" || { ctr_ task ls; fail "the task is not PAUSED after ctr task pause"; }
expect_status 0 "$T/resume" ctr_ task resume "$id-d"
wait_for task_running "$id-d" || { ctr_ task ls; fail "the task is not RUNNING after ctr task resume"; }

expect_status 0 "$T/kill" ctr_ task kill "$id-d"
task_stopped() { ctr_ task ls | grep -E "^$1 +[0-9]+ +STOPPED" >/dev/null; }
wait_for task_stopped "$id-d" || { ctr_ task ls; fail "the task is not STOPPED after ctr task kill (TERM)"; }
expect_status 0 "$T/delete" ctr_ task delete "$id-d"
expect_status 0 "$T/rm" ctr_ container rm "$id-d"

# A task that ignores TERM: ctr task kill -s KILL; delete reports 137 (as a warning).
expect_status 0 "$T/detached2" ctr_ run -d "${rt[@]}" "$IMAGE" "$id-d" sh -c 'trap "" TERM; while :; do sleep 1; done'
wait_for task_running "$id-d" || { ctr_ task ls; fail "the second detached task is not RUNNING"; }
expect_status 0 "$T/kill9" ctr_ task kill -s KILL "$id-d"
wait_for task_stopped "$id-d" || { ctr_ task ls; fail "the task is not STOPPED after ctr task kill -s KILL"; }
expect_status 0 "$T/delete2" ctr_ task delete "$id-d"
assert_contains "$T/delete2.err" "exit code 137" "ctr task delete's report"
expect_status 0 "$T/rm2" ctr_ container rm "$id-d"

expect_status 0 "$T/tasks" ctr_ task ls -q
assert_eq "$(cat "$T/tasks")" "" "tasks left in containerd"
assert_runtime_root_empty "$root" 2
