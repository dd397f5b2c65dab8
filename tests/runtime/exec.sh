#!/bin/bash
# exec: in the foreground (stdio and the exit status through petrel) and
# detached (a host process of its own, reaped by a subreaper as containerd's
# shim does, with the process's status).
. "$(dirname "$0")/helpers.bash"
runtime_prepare
need_cmd python3

make_bundle "$T/b" '["sh", "-c", "echo inside > /tmp/mark; echo ready; exec sleep 600"]'
p create --bundle "$T/b" c1 </dev/null >"$T/c1.out" 2>"$T/c1.err" || { cat "$T/c1.err"; fail "create"; }
expect_fail "$T/e0" "container not running" exec c1 true
p start c1
wait_file "$T/c1.out" "ready"

step "foreground exec"
rc=0; p exec c1 sh -c 'cat /tmp/mark; echo to-stderr >&2; exit 7' >"$T/x.out" 2>"$T/x.err" </dev/null || rc=$?
assert_eq "$rc" 7 "exec's status"
assert_eq "$(cat "$T/x.out")" "inside" "exec's stdout"
assert_eq "$(cat "$T/x.err")" "to-stderr" "exec's stderr"
rc=0; printf 'one\ntwo\n' | p exec -e FOO=bar --cwd /tmp c1 sh -c 'cat; echo $FOO; pwd' >"$T/y.out" 2>&1 || rc=$?
assert_eq "$rc" 0 "exec with stdin"
assert_eq "$(tr '\n' ' ' <"$T/y.out")" "one two bar /tmp " "stdin, -e and --cwd"

step "exec --process"
cat >"$T/proc.json" <<JSON
{"args": ["sh", "-c", "echo from-process-json; exit 4"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
JSON
rc=0; p exec --process "$T/proc.json" c1 >"$T/z.out" 2>&1 </dev/null || rc=$?
assert_eq "$rc" 4 "exec --process status"
assert_contains "$T/z.out" "from-process-json"

step "detached exec, reaped by a subreaper"
python3 - "$PETREL" "$ROOT" "$T" >"$T/py" 2>&1 <<'PY' || { cat "$T/py"; fail "detached exec"; }
import ctypes, os, subprocess, sys, time
petrel, root, t = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
out = open(t + "/d.out", "wb")
rc = subprocess.call([petrel, "--root", root, "exec", "--detach", "--pid-file", t + "/d.pid",
                      "c1", "sh", "-c", "echo detached-out; sleep 1; exit 5"],
                     stdin=subprocess.DEVNULL, stdout=out, stderr=out)
assert rc == 0, "exec --detach exited %d" % rc
pid_text = open(t + "/d.pid").read()
assert not pid_text.endswith("\n"), "pid file ends in a newline"
pid = int(pid_text)
deadline = time.time() + 120
while True:
    p, status = os.waitpid(-1, os.WNOHANG)
    if p == pid:
        break
    assert time.time() < deadline, "the detached exec never exited"
    time.sleep(0.1)
code = os.waitstatus_to_exitcode(status)
assert code == 5, "detached exec status %d" % code
print("detached status", code)
PY
assert_contains "$T/d.out" "detached-out"

p kill c1 KILL
wait_status c1 stopped 60
expect_fail "$T/e1" "container not running" exec c1 true
p delete c1
assert_root_empty
