#!/bin/bash
# podman run -t, exec -t and run -it with the runtime under test, on a real
# terminal (script makes the pty): the process's stdio is a tty of the
# terminal's size, follows its resizes, what is typed reaches it, and podman
# reports its exit code.
. "$(dirname "$0")/../lib/common.sh"
. "$PROJ/tests/lib/images.sh"
need_runtime podman
need_cmd script
podman_setup
podman_image
pmq=$(printf '%q ' podman --runtime "$RUNTIME")

echo "[$(date +%T)] run -t"
script -qec "stty rows 30 cols 90; $pmq run --rm -t --network none $IMAGE sh -c 'tty; stty size; [ -t 0 ] && [ -t 1 ] && echo all-ttys'" \
	/dev/null </dev/null >"$T/tty" 2>&1 || { cat "$T/tty"; fail "podman run -t failed"; }
tr -d '\r' <"$T/tty" >"$T/tty.txt"
assert_contains "$T/tty.txt" "/dev/pts/" "the tty of podman run -t"
assert_contains "$T/tty.txt" "30 90" "the terminal size in the container"
assert_contains "$T/tty.txt" "all-ttys" "stdin and stdout as ttys"

echo "[$(date +%T)] exec -t"
name=petrel-tty-$$
on_exit "podman --runtime '$RUNTIME' rm -f -t 0 $name >/dev/null 2>&1"
expect_status 0 "$T/id" pm run -d --name "$name" --network none "$IMAGE" sleep 600
script -qec "stty rows 25 cols 81; $pmq exec -t $name sh -c 'tty; stty size; exit 6'" /dev/null </dev/null >"$T/exec-t" 2>&1 &&
	rc=0 || rc=$?
tr -d '\r' <"$T/exec-t" >"$T/exec-t.txt"
assert_eq "$rc" "6" "the exit status of podman exec -t"
assert_contains "$T/exec-t.txt" "/dev/pts/" "the tty of podman exec -t"
assert_contains "$T/exec-t.txt" "25 81" "the terminal size in podman exec -t"
expect_status 0 "$T/rm" pm rm -f -t 0 "$name"

echo "[$(date +%T)] run -it, typed input and exit 5"
mkfifo "$T/typed"
script -qec "$pmq run --rm -it --network none $IMAGE sh" /dev/null <"$T/typed" >"$T/it" 2>&1 &
script_pid=$!
exec 3>"$T/typed"
on_exit "exec 3>&-; kill $script_pid 2>/dev/null"
seen() { tr -d '\r' <"$T/it" | grep "$1" >/dev/null; }
wait_for seen '# ' || { cat "$T/it"; fail "no shell prompt from podman run -it"; }
printf 'echo typed-$((6*7))\n' >&3
wait_for seen 'typed-42' || { cat "$T/it"; fail "a command typed into podman run -it did not run"; }
# A resize of podman's terminal reaches the container (podman, conmon, the runtime).
tty_of_podman() {
	local p
	for p in $(pgrep -x podman); do
		case "$(readlink /proc/"$p"/fd/0)" in /dev/pts/*) readlink /proc/"$p"/fd/0; return 0 ;; esac
	done
	return 1
}
outer=$(tty_of_podman) || fail "cannot find the terminal of podman run -it"
stty -F "$outer" rows 40 cols 100
sleep 2
printf 'stty size\n' >&3
wait_for seen '^40 100' || { cat "$T/it"; fail "the resize of podman's terminal did not reach the container"; }
printf 'exit 5\n' >&3
rc=0
wait "$script_pid" || rc=$?
assert_eq "$rc" "5" "the exit status of podman run -it"
