#!/bin/bash
# The container lifecycle through the agent in a real guest: output and exit
# statuses (0, 3, 137 for a KILL from another connection), stdin relayed with
# its end of file, stderr kept apart, a large output delivered whole before the
# exit, a second create refused, and a shutdown that leaves the disk clean.
. "$(dirname "$0")/helpers.bash"
agent_prepare
boot_agent

expect_run 0 "$T/echo" run -- echo hello
assert_eq "$(cat "$T/echo")" "hello" "echo's output"

expect_run 3 "$T/exit3" run -- sh -c 'exit 3'

expect_run 0 "$T/stderr" run -- sh -c 'echo out; echo err >&2'
assert_eq "$(cat "$T/stderr")" "out" "stdout"
assert_eq "$(cat "$T/stderr.err")" "err" "stderr"

step "stdin relayed to cat"
printf 'line one\nline two\n' >"$T/input"
client run -- sh -c 'cat; echo after-eof' <"$T/input" >"$T/cat" || fail "cat through stdin failed"
assert_eq "$(cat "$T/cat")" "$(printf 'line one\nline two\nafter-eof')" "stdin relayed to cat"

# 2.4 MB of output, which is more than any queue between the process and us.
expect_run 0 "$T/yes" run -- sh -c 'yes 0123456789 | head -n 220000'
assert_eq "$(wc -l <"$T/yes")" "220000" "lines of output received before the exit"

# A long-running container, killed from a second connection: 128 + 9.
step "a container killed from a second connection"
client run -- sh -c 'echo started; exec sleep 600' >"$T/sleep" 2>&1 </dev/null &
run_pid=$!
for i in $(seq 1 100); do grep -q started "$T/sleep" && break; sleep 0.2; done
assert_contains "$T/sleep" "started"
expect_run 125 "$T/second" run -- true
assert_contains "$T/second.err" "a container already exists in this VM (running)"
client kill KILL || fail "kill request failed"
rc=0
wait "$run_pid" || rc=$?
assert_eq "$rc" "137" "the status of a container killed with SIGKILL"

# What the container writes is on the disk after the shutdown, which unmounts it.
expect_run 0 "$T/write" run -- sh -c 'echo persisted > /data.txt'
shutdown_agent
assert_contains "$T/console.log" "EXT4-fs (vda): unmounting filesystem"
if command -v debugfs >/dev/null; then
	assert_eq "$(debugfs -R 'cat /data.txt' "$T/rootfs.ext4" 2>/dev/null)" "persisted" "/data.txt on the disk"
	e2fsck -fn "$T/rootfs.ext4" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "the root disk is not clean after shutdown"; }
fi
