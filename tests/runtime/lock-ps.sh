#!/bin/bash
# Concurrent commands on one container id are serialised (a per-id lock under
# --root): two deletes and a kill at once, and a delete that arrives while
# create is still booting the VM, leave no VMM, no state and no error beyond
# runc's texts. `petrel ps` lists the VMM and the host process of every
# running exec (foreground and detached).
. "$(dirname "$0")/helpers.bash"
runtime_prepare
need_cmd python3

vmm_of() { pgrep -f "petrel-vmm.*$ROOT/$1/" || true; }

step "ps: the VMM, then each exec's host process"
make_bundle "$T/b" '["sh", "-c", "echo ready; exec sleep 600"]'
p create --bundle "$T/b" c1 </dev/null >"$T/c1.out" 2>"$T/c1.err" || { cat "$T/c1.err"; fail "create c1"; }
p start c1
wait_file "$T/c1.out" "ready"
vmm=$(state_field c1 pid)
assert_eq "$(p ps --format json c1)" "[$vmm]" "ps before any exec"
# Not through the p function: $! must be petrel's own pid, not a subshell's.
"$PETREL" --root "$ROOT" exec c1 sh -c 'echo fg-running; sleep 120' >"$T/fg.out" 2>&1 </dev/null &
fg=$!
p exec --detach --pid-file "$T/d.pid" c1 sleep 120 </dev/null >/dev/null 2>&1 || fail "exec --detach"
wait_file "$T/fg.out" "fg-running"
dpid=$(cat "$T/d.pid")
ps_json=$(p ps --format json c1)
echo "ps: $ps_json (vmm $vmm, foreground $fg, detached $dpid)"
python3 - "$ps_json" "$vmm" "$fg" "$dpid" <<'PY' || fail "ps --format json"
import json, sys
pids = json.loads(sys.argv[1])
vmm, fg, d = map(int, sys.argv[2:5])
assert pids[0] == vmm, pids
assert sorted(pids[1:]) == sorted([fg, d]), pids
PY
p ps c1 >"$T/ps.txt"
assert_contains "$T/ps.txt" "petrel exec"
kill -TERM "$fg" 2>/dev/null || true
wait "$fg" 2>/dev/null || true
for i in $(seq 1 100); do
	[ "$(p ps --format json c1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] && break
	sleep 0.2
done
assert_eq "$(p ps --format json c1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 2 "ps after the foreground exec ended"

step "two deletes and a kill at the same time"
pids=()
p delete --force c1 >"$T/d1" 2>&1 & pids+=($!)
p delete --force c1 >"$T/d2" 2>&1 & pids+=($!)
p kill c1 KILL >"$T/k1" 2>&1 & pids+=($!)
rcs=""
for pid in "${pids[@]}"; do rc=0; wait "$pid" || rc=$?; rcs="$rcs $rc"; done
cat "$T/d1" "$T/d2" "$T/k1"
echo "statuses:$rcs"
set -- $rcs
assert_eq "$1" 0 "first delete --force"
assert_eq "$2" 0 "second delete --force"
# The kill ran before the deletes (0) or after them (the container is gone).
[ "$3" = 0 ] || grep -qE "container does not exist|container not running" "$T/k1" ||
	fail "kill during delete: $(cat "$T/k1")"
[ -z "$(vmm_of c1)" ] || fail "c1's VMM still runs"

step "delete while create is booting the VM"
p create --bundle "$T/b" c2 </dev/null >"$T/c2.out" 2>"$T/c2.err" &
cpid=$!
for i in $(seq 1 300); do [ -e "$ROOT/c2/state.json" ] && break; sleep 0.05; done
[ -e "$ROOT/c2/state.json" ] || fail "create never made its state directory"
rc=0; p delete --force c2 >"$T/d3" 2>&1 || rc=$?
crc=0; wait "$cpid" || crc=$?
cat "$T/c2.err" "$T/d3"
assert_eq "$crc" 0 "create (the delete waited for it)"
assert_eq "$rc" 0 "delete --force after create"
[ -z "$(vmm_of c2)" ] || fail "c2's VMM still runs"
assert_root_empty
echo "lock-ps: ok"
