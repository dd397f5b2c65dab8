#!/bin/bash
# io.petrel.vm.hugepages=2M: the guest's RAM comes from huge pages (the host's
# free count drops by the VM's size while it runs), from a hugetlbfs mounted in
# the state directory and gone after delete; too few free pages fail create
# with the counts named, leaving nothing.
. "$(dirname "$0")/helpers.bash"
runtime_prepare
pool=/sys/kernel/mm/hugepages/hugepages-2048kB
[ -w "$pool/nr_hugepages" ] || skip "no 2 MiB huge page pool here"
orig=$(cat "$pool/nr_hugepages")
on_exit "echo $orig > $pool/nr_hugepages"
echo $((orig + 160)) >"$pool/nr_hugepages"
free_before=$(cat "$pool/free_hugepages")
[ "$free_before" -ge 128 ] || skip "could not reserve 128 huge pages of 2 MiB (got $free_before free)"

make_bundle "$T/b" '["sh", "-c", "echo up; exec sleep 600"]' false \
	'"annotations": {"io.petrel.vm.hugepages": "2M", "io.petrel.vm.memory": "256M"}'
step "a container on huge pages"
p create --bundle "$T/b" hp </dev/null >"$T/hp.out" 2>"$T/hp.err" || { cat "$T/hp.err"; fail "create"; }
p start hp
wait_file "$T/hp.out" "up"
free_during=$(cat "$pool/free_hugepages")
[ $((free_before - free_during)) -ge 128 ] ||
	fail "free huge pages went from $free_before to $free_during, expected a drop of 128 (256 MiB)"
grep -q " $ROOT/hp/hugepages hugetlbfs " /proc/mounts || fail "no hugetlbfs at $ROOT/hp/hugepages"
grep -q -- "-mem-path $ROOT/hp/hugepages" "/proc/$(state_field hp pid)/cmdline" 2>/dev/null ||
	tr '\0' ' ' <"/proc/$(state_field hp pid)/cmdline" | grep -q -- "-mem-path $ROOT/hp/hugepages" ||
	fail "the VMM was not given -mem-path"
p delete --force hp
! grep -q "$ROOT/hp" /proc/mounts || { grep "$ROOT" /proc/mounts; fail "the hugetlbfs mount outlived delete"; }
assert_root_empty
for i in $(seq 1 50); do [ "$(cat "$pool/free_hugepages")" -ge "$free_before" ] && break; sleep 0.1; done
assert_eq "$(cat "$pool/free_hugepages")" "$free_before" "free huge pages after delete"

step "too few free pages"
make_bundle "$T/big" '["true"]' false \
	'"annotations": {"io.petrel.vm.hugepages": "2M", "io.petrel.vm.memory": "4G"}'
expect_fail "$T/e1" "need 2048 huge pages of 2M, $free_before are free" create --bundle "$T/big" big
! grep -q "$ROOT" /proc/mounts || fail "a mount was left"
assert_root_empty
make_bundle "$T/bad" '["true"]' false '"annotations": {"io.petrel.vm.hugepages": "3M"}'
expect_fail "$T/e2" '"3M" is not a huge page size; allowed: 2M, 1G' create --bundle "$T/bad" bad
