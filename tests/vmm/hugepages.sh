#!/bin/bash
# -mem-path DIR on hugetlbfs: guest RAM takes its huge pages before the guest
# starts (HugePages_Free drops by the VM's size while it runs, and comes back
# after), the file is unlinked (DIR stays empty); a size that is not a
# multiple of the huge page size, too few free pages and a directory that is
# not hugetlbfs are refused with a message naming DIR, leaving nothing behind.
. "$(dirname "$0")/../lib/common.sh"
need_kvm
need_vmm
[ "$(id -u)" = 0 ] || skip "needs root to mount hugetlbfs and reserve huge pages"
grep -q hugetlbfs /proc/filesystems || skip "the kernel has no hugetlbfs"
page_kib=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
[ "$page_kib" = 2048 ] || skip "default huge page size is ${page_kib} KiB, this test assumes 2 MiB"

orig=$(cat /proc/sys/vm/nr_hugepages)
on_exit "echo $orig >/proc/sys/vm/nr_hugepages"
echo 200 >/proc/sys/vm/nr_hugepages
[ "$(cat /proc/sys/vm/nr_hugepages)" -ge 200 ] || skip "could not reserve 200 huge pages"
huge=$T/huge
mkdir "$huge"
mount -t hugetlbfs -o pagesize=2M none "$huge"
on_exit "umount '$huge'"
hp_free() { awk '/^HugePages_Free:/ {print $2}' /proc/meminfo; }
free0=$(hp_free)
echo "HugePages_Free before: $free0"
[ "$free0" -ge 128 ] || skip "only $free0 huge pages free"

# A VM of 256 MiB: 128 pages of 2 MiB, taken while it runs.
vmm_run_script 'echo MEM-UP; sleep 4; echo MEM-DONE' -m 256 -mem-path "$huge" &
job=$!
for ((i = 0; i < 1500; i++)); do
	grep -qa MEM-UP "$T/console" 2>/dev/null && break
	kill -0 $job 2>/dev/null || break
	sleep 0.1
done
running_free=$(hp_free)
in_dir=$(ls -A "$huge")
rc=0
wait $job || rc=$?
[ $rc = 0 ] || fail "-mem-path: petrel-vmm exited with status $rc"
assert_console MEM-DONE
echo "HugePages_Free while running: $running_free, after: $(hp_free)"
assert_eq "$running_free" $((free0 - 128)) "HugePages_Free while a 256 MiB VM runs"
assert_eq "$in_dir" "" "the hugetlbfs directory's listing while the VM runs"
assert_eq "$(hp_free)" "$free0" "HugePages_Free after the VM"

# refused SIZE-MiB MESSAGE [DIR]: the start fails with MESSAGE, nothing is left.
refused() {
	local dir=${3:-$huge} rc=0
	"$VMM" -machine microvm -m "$1" -kernel "$KERNEL" -mem-path "$dir" </dev/null >"$T/out" 2>"$T/err" || rc=$?
	[ $rc = 1 ] || { cat "$T/err"; fail "-m $1 -mem-path $dir: status $rc, expected 1"; }
	assert_contains "$T/err" "$2" "petrel-vmm's error for -m $1"
	assert_eq "$(ls -A "$huge")" "" "the hugetlbfs directory after a refused start"
	assert_eq "$(hp_free)" "$free0" "HugePages_Free after a refused start"
}
refused 257 "-mem-path $huge: -m 257 MiB is not a multiple of the huge page size (2 MiB)"
refused 512 "-mem-path $huge: 512 MiB needs 256 huge pages of 2 MiB, $free0 are free"
refused 256 "-mem-path $T: not a hugetlbfs mount" "$T"
refused 256 "-mem-path $T/absent: No such file or directory" "$T/absent"
