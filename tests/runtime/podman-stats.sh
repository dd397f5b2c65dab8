#!/bin/bash
# podman with --cgroup-manager=cgroupfs passes a cgroupsPath: the VMM lives in
# that cgroup, so `podman stats` reads the VM's memory and CPU, `podman top`
# lists the container's host process, and `podman update --cpus` reaches
# cpu.max. The cgroup is gone after rm.
. "$(dirname "$0")/../lib/common.sh"
. "$PROJ/tests/lib/images.sh"
need_runtime podman
is_petrel || skip "petrel's host cgroup"
[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] || skip "no cgroup v2"
podman_setup
podman_image
name=petrel-stats-$$
on_exit "podman --runtime '$RUNTIME' rm -f -t 0 $name >/dev/null 2>&1"

expect_status 0 "$T/id" pm run -d --name "$name" --network none --cpus 1 "$IMAGE" sh -c 'echo started; exec sleep 600'
started() { [ "$(pm logs "$1" 2>/dev/null | grep -c started)" -ge 1 ]; }
wait_for started "$name" || { pm logs "$name"; fail "the container did not start"; }
pid=$(pm inspect --format '{{.State.Pid}}' "$name")
cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
echo "the VMM $pid is in $cg"
[ -n "$cg" ] && [ "$cg" != / ] || fail "the VMM is in the root cgroup"
case "$cg" in *"$(cat "$T/id" | head -c 12)"*) ;; *) fail "the VMM's cgroup $cg is not the container's" ;; esac
assert_eq "$(cat "/sys/fs/cgroup$cg/cpu.max")" "100000 100000" "cpu.max from --cpus 1"

expect_status 0 "$T/stats" pm stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.CPUPerc}}' "$name"
cat "$T/stats"
grep -q "^$name [0-9.]*[kMG]*i*B" "$T/stats" || fail "podman stats shows no memory usage"

expect_status 0 "$T/top" pm top "$name"
cat "$T/top"
[ "$(wc -l <"$T/top")" -ge 2 ] || fail "podman top lists nothing"

pm update --cpus 0.5 "$name" >"$T/update" 2>&1 || { cat "$T/update"; fail "podman update --cpus"; }
assert_eq "$(cat "/sys/fs/cgroup$cg/cpu.max")" "50000 100000" "cpu.max after podman update --cpus 0.5"

pm rm -f -t 0 "$name" >/dev/null
[ ! -d "/sys/fs/cgroup$cg" ] || fail "/sys/fs/cgroup$cg is left after rm"
echo "podman-stats: ok"
