#!/bin/bash
# linux.seccomp reaches the guest: a profile that makes mkdir fail with EPERM
# (SCMP_ACT_ERRNO) applies to the container's init and to exec'd processes,
# with and without noNewPrivileges; an unknown syscall name is skipped as runc
# skips it; an unknown action fails create naming the JSON path.
. "$(dirname "$0")/helpers.bash"
runtime_prepare

profile() { # profile ACTION: mkdir and mkdirat get ACTION, with errnoRet 1 (EPERM)
	cat <<JSON
"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  "syscalls": [
    {"names": ["mkdir", "mkdirat", "no_such_syscall_petrel"], "action": "$1", "errnoRet": 1},
    {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
      {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}
  ]}
JSON
}

# make_seccomp_bundle DIR ARGS NNP ACTION
make_seccomp_bundle() {
	make_bundle "$1" "$2"
	python3 - "$1/config.json" "$3" "$(profile "$4")" <<'PY'
import json, sys
path, nnp, prof = sys.argv[1], sys.argv[2] == "true", sys.argv[3]
c = json.load(open(path))
c["linux"].update(json.loads("{" + prof + "}"))
c["process"]["noNewPrivileges"] = nnp
json.dump(c, open(path, "w"), indent=1)
PY
}

step "run: mkdir fails with EPERM, other syscalls work (noNewPrivileges false)"
make_seccomp_bundle "$T/b1" '["sh", "-c", "mkdir /tmp/x; echo mkdir-rc=$?; echo still-here; ls -d /tmp/x || echo no-dir"]' false SCMP_ACT_ERRNO
rc=0; p run --bundle "$T/b1" s1 >"$T/s1.out" 2>&1 </dev/null || rc=$?
cat "$T/s1.out"
assert_eq "$rc" 0 "run's status"
assert_contains "$T/s1.out" "Operation not permitted"
assert_contains "$T/s1.out" "mkdir-rc=1"
assert_contains "$T/s1.out" "still-here"
assert_contains "$T/s1.out" "no-dir"

step "exec gets the container's profile too (noNewPrivileges true)"
make_seccomp_bundle "$T/b2" '["sh", "-c", "echo ready; exec sleep 600"]' true SCMP_ACT_ERRNO
p create --bundle "$T/b2" s2 </dev/null >"$T/s2.out" 2>"$T/s2.err" || { cat "$T/s2.err"; fail "create s2"; }
p start s2
wait_file "$T/s2.out" "ready"
rc=0; p exec s2 sh -c 'mkdir /tmp/y; echo exec-mkdir-rc=$?' >"$T/x.out" 2>&1 </dev/null || rc=$?
cat "$T/x.out"
assert_eq "$rc" 0 "exec's status"
assert_contains "$T/x.out" "exec-mkdir-rc=1"
assert_contains "$T/x.out" "Operation not permitted"
p delete --force s2

step "an unknown action fails create, naming the field"
make_seccomp_bundle "$T/b3" '["true"]' false SCMP_ACT_FLY
expect_fail "$T/e3" "linux.seccomp.syscalls[0].action" create --bundle "$T/b3" s3
assert_contains "$T/e3" "SCMP_ACT_FLY"
assert_root_empty

step "features lists seccomp"
p features >"$T/features.json"
python3 - "$T/features.json" <<'PY' || fail "features: seccomp"
import json, sys
f = json.load(open(sys.argv[1]))["linux"]["seccomp"]
assert f["enabled"] is True, f
assert "SCMP_ACT_ERRNO" in f["actions"] and "SCMP_CMP_MASKED_EQ" in f["operators"], f
assert "SCMP_ARCH_X86_64" in f["archs"], f
PY
echo "seccomp: ok"
