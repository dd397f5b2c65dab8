#!/bin/bash
# The VMM's host cgroup (cgroup v2): linux.cgroupsPath (cgroupfs, and the
# systemd slice:prefix:name form) holds the VMM with memory.max = guest memory
# + 64 MiB, cpu.max from the quota and cpu.weight from the shares; delete
# removes it. update applies cpu changes to it and refuses, by name, what a
# running VM cannot take.
. "$(dirname "$0")/helpers.bash"
runtime_prepare
[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] || skip "no cgroup v2 at /sys/fs/cgroup"
CG=/sys/fs/cgroup/petrel-test-$$
on_exit "rmdir $CG/c1 $CG/c2 $CG 2>/dev/null; rmdir /sys/fs/cgroup/petreltest$$.slice/petrel-c3.scope /sys/fs/cgroup/petreltest$$.slice 2>/dev/null || true"

# bundle DIR CGROUPS_PATH
bundle() {
	make_bundle "$1" '["sh", "-c", "echo ready; exec sleep 600"]'
	python3 - "$1/config.json" "$2" <<'PY'
import json, sys
path, cg = sys.argv[1:3]
c = json.load(open(path))
c["linux"]["cgroupsPath"] = cg
c["linux"]["resources"] = {"memory": {"limit": 67108864},
                           "cpu": {"quota": 50000, "period": 100000, "shares": 1024},
                           "pids": {"limit": 100}}
json.dump(c, open(path, "w"), indent=1)
PY
}

step "cgroupfs path"
bundle "$T/b1" "/petrel-test-$$/c1"
p create --bundle "$T/b1" c1 </dev/null >"$T/c1.out" 2>"$T/c1.err" || { cat "$T/c1.err"; fail "create c1"; }
p start c1
wait_file "$T/c1.out" "ready"
vmm=$(state_field c1 pid)
grep -qx "$vmm" "$CG/c1/cgroup.procs" || { cat "$CG/c1/cgroup.procs"; fail "the VMM $vmm is not in $CG/c1"; }
# guest = 64 MiB limit + 128 MiB memory_overhead, at least 256 MiB; host = guest + 64 MiB
assert_eq "$(cat "$CG/c1/memory.max")" $(((256 + 64) << 20)) "memory.max"
assert_eq "$(cat "$CG/c1/cpu.max")" "50000 100000" "cpu.max"
assert_eq "$(cat "$CG/c1/cpu.weight")" 39 "cpu.weight (shares 1024)"

step "update: cpu applies, the rest is refused by name"
echo '{"cpu": {"quota": 20000, "period": 50000}}' | p update --resources - c1 || fail "update cpu"
assert_eq "$(cat "$CG/c1/cpu.max")" "20000 50000" "cpu.max after update"
echo '{"cpu": {"quota": -1}}' | p update --resources - c1 || fail "update cpu unlimited"
assert_eq "$(cat "$CG/c1/cpu.max")" "max 50000" "cpu.max unlimited"
echo '{"memory": {"limit": 33554432}}' >"$T/mem.json"
expect_fail "$T/e1" "linux.resources.memory.limit" update --resources "$T/mem.json" c1
assert_contains "$T/e1" "balloon"
echo '{"pids": {"limit": 10}}' >"$T/pids.json"
expect_fail "$T/e2" "linux.resources.pids.limit" update --resources "$T/pids.json" c1
echo '{"cpu": {"cpus": "0"}}' >"$T/cpus.json"
expect_fail "$T/e3" "linux.resources.cpu.cpus" update --resources "$T/cpus.json" c1
# What the VM already is: accepted.
echo '{"memory": {"limit": 67108864, "swap": 134217728}, "devices": [{"allow": false, "access": "rwm"}]}' |
	p update --resources - c1 || fail "an update to the current memory size"

step "podman stats reads this: memory.current and cpu.stat exist"
[ -r "$CG/c1/memory.current" ] && [ -r "$CG/c1/cpu.stat" ] || fail "no memory.current / cpu.stat"

step "delete removes the cgroup"
p delete --force c1
[ ! -d "$CG/c1" ] || fail "$CG/c1 is still there"

step "--systemd-cgroup slice:prefix:name"
bundle "$T/b3" "petreltest$$.slice:petrel:c3"
"$PETREL" --root "$ROOT" --systemd-cgroup create --bundle "$T/b3" c3 </dev/null >"$T/c3.out" 2>"$T/c3.err" ||
	{ cat "$T/c3.err"; fail "create c3"; }
vmm=$(state_field c3 pid)
scope=/sys/fs/cgroup/petreltest$$.slice/petrel-c3.scope
grep -qx "$vmm" "$scope/cgroup.procs" || fail "the VMM $vmm is not in $scope"
p delete --force c3
[ ! -d "$scope" ] || fail "$scope is still there"

step "a container without cgroupsPath refuses cpu updates by name"
make_bundle "$T/b4" '["sh", "-c", "echo ready; exec sleep 600"]'
p create --bundle "$T/b4" c4 </dev/null >"$T/c4.out" 2>"$T/c4.err" || { cat "$T/c4.err"; fail "create c4"; }
p start c4
echo '{"cpu": {"quota": 20000}}' >"$T/cpu.json"
expect_fail "$T/e4" "no host cgroup" update --resources "$T/cpu.json" c4
p delete --force c4
assert_root_empty
echo "cgroup-update: ok"
