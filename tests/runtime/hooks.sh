#!/bin/bash
# OCI hooks on the host: prestart, createRuntime, poststart and poststop each get
# the state on stdin; a failing or timed-out hook fails create and leaves nothing.
. "$(dirname "$0")/helpers.bash"
runtime_prepare
need_cmd python3

hook() { # NAME -> a hook that saves its stdin in $T/hook-NAME.json
	printf '{"path": "/bin/sh", "args": ["sh", "-c", "cat > %s/hook-%s.json"]}' "$T" "$1"
}
make_bundle "$T/b" '["sh", "-c", "echo up; exec sleep 600"]' false \
	"\"hooks\": {\"prestart\": [$(hook prestart)], \"createRuntime\": [$(hook createRuntime)],
	 \"poststart\": [$(hook poststart)], \"poststop\": [$(hook poststop)]}"

step "every stage gets the state on stdin"
p create --bundle "$T/b" --pid-file "$T/pid" h1 </dev/null >"$T/h1.out" 2>"$T/h1.err" ||
	{ cat "$T/h1.err"; fail "create"; }
for h in prestart createRuntime; do
	python3 - "$T/hook-$h.json" "$(cat "$T/pid")" "$T/b" <<'PY' || fail "$h hook's state"
import json, sys
st = json.load(open(sys.argv[1]))
assert st["id"] == "h1" and st["status"] == "creating", st
assert st["pid"] == int(sys.argv[2]) and st["bundle"] == sys.argv[3], st
PY
done
[ ! -e "$T/hook-poststart.json" ] || fail "poststart ran before start"
p start h1
grep -q '"status": "running"' "$T/hook-poststart.json" || { cat "$T/hook-poststart.json"; fail "poststart's state"; }
p delete --force h1
grep -q '"status": "stopped"' "$T/hook-poststop.json" || { cat "$T/hook-poststop.json"; fail "poststop's state"; }
assert_root_empty

step "a failing prestart hook aborts create"
make_bundle "$T/bad" '["true"]' false \
	'"hooks": {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}'
expect_fail "$T/e1" "hooks.prestart[0] (/bin/sh): exit status 3" create --bundle "$T/bad" --pid-file "$T/bad.pid" h2
[ ! -e "$T/bad.pid" ] || fail "the pid file was written"
assert_root_empty

step "a hook that outlives its timeout"
make_bundle "$T/slow" '["true"]' false \
	'"hooks": {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "timeout": 1}]}'
expect_fail "$T/e2" "hooks.createRuntime[0] (/bin/sh): timed out after 1 s" create --bundle "$T/slow" h3
assert_root_empty

step "hooks that would run inside the container are refused"
make_bundle "$T/cc" '["true"]' false \
	'"hooks": {"createContainer": [{"path": "/bin/true"}]}'
expect_fail "$T/e3" "hooks.createContainer: not supported" create --bundle "$T/cc" h4
assert_root_empty
