#!/bin/bash
# terminal=true: the process gets a pty from the container's devpts as its
# controlling terminal and stdio, with the console size, resizes, and its status.
. "$(dirname "$0")/helpers.bash"
agent_prepare
boot_agent

expect_run 0 "$T/tty" run --tty --size 40x100 -- sh -c 'tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; readlink /proc/self/fd/0; ls /dev/console'
tr -d '\r' <"$T/tty" >"$T/tty.txt"
assert_contains "$T/tty.txt" "/dev/pts/0"
assert_contains "$T/tty.txt" "40 100"
assert_contains "$T/tty.txt" "all-ttys"
assert_contains "$T/tty.txt" "/dev/console"

expect_run 0 "$T/resize" run --tty --size 24x80 --resize 30x90 -- sh -c 'sleep 2; stty size'
tr -d '\r' <"$T/resize" >"$T/resize.txt"
assert_contains "$T/resize.txt" "30 90"

expect_run 5 "$T/exit5" run --tty -- sh -c 'exit 5'
shutdown_agent
