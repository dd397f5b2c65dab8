#!/bin/bash
# VM templates (docs/runtime.md): the first create of a VM shape makes a
# template (a snapshot of a booted guest whose agent waits), later creates
# restore it (petrel-vmm -incoming) instead of booting. A restored container
# has its own root disk, the host's clock and its own random bytes; another
# initrd is another template; a template that cannot be restored fails that
# create with a clear message and is removed, and the next create works; a
# container the agent refuses fails with its own error and keeps the template;
# vm_templates = off boots every guest.
. "$(dirname "$0")/helpers.bash"
runtime_prepare
export PETREL_VM_TEMPLATE_CACHE=$T/templates

templates() { ls "$PETREL_VM_TEMPLATE_CACHE" | grep -E '^[0-9a-f]{16}$' | sed "s|^|$PETREL_VM_TEMPLATE_CACHE/|"; }
vmm_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline"; }

make_rootfs "$T/rootfs"
echo "marker-from-the-bundle" >"$T/rootfs/etc/marker"
ln -sf busybox "$T/rootfs/bin/date"
ln -sf busybox "$T/rootfs/bin/head"
ln -sf busybox "$T/rootfs/bin/od"
make_bundle "$T/b" '["sh", "-c", "date +%s; head -c 16 /dev/urandom | od -An -tx1 | tr -d \" \\n\"; echo; cat /etc/marker; hostname"]'
make_bundle "$T/bs" '["sh", "-c", "echo up; exec sleep 600"]'

step "the first create makes a template"
p run --bundle "$T/b" t1 </dev/null >"$T/t1.out" 2>"$T/t1.err" || { cat "$T/t1.err"; fail "run t1 failed"; }
assert_contains "$T/t1.out" "marker-from-the-bundle"
[ "$(templates | wc -l)" = 1 ] || { cat "$T/t1.err"; ls -la "$PETREL_VM_TEMPLATE_CACHE"; fail "expected one template, have: $(templates)"; }
tpl=$(templates)
for f in state memory key; do [ -s "$tpl/$f" ] || fail "the template has no $f"; done
[ -z "$(find "$PETREL_VM_TEMPLATE_CACHE" -maxdepth 1 -name 'build.*')" ] || fail "a template build directory is left"

step "the next create restores it"
p create --bundle "$T/bs" t2 </dev/null >"$T/t2.out" 2>"$T/t2.err" || { cat "$T/t2.err"; fail "create t2 failed"; }
pid=$(state_field t2 pid)
vmm_cmdline "$pid" | grep -q -- "-incoming file:$tpl " || fail "t2's VMM does not restore the template: $(vmm_cmdline "$pid")"
p start t2 || fail "start t2 failed"
wait_file "$T/t2.out" "up"
p kill t2 KILL
wait_status t2 stopped 60
p delete t2 || fail "delete t2 failed"

step "restored containers: their own disk, the host's clock, their own random bytes"
for c in t3 t4; do
	p run --bundle "$T/b" "$c" </dev/null >"$T/$c.out" 2>"$T/$c.err" || { cat "$T/$c.err"; fail "run $c failed"; }
	assert_contains "$T/$c.out" "marker-from-the-bundle"
	assert_contains "$T/$c.out" "petrel-test"
	guest=$(head -n1 "$T/$c.out")
	now=$(date +%s)
	[ $((now - guest)) -lt 30 ] && [ $((guest - now)) -lt 5 ] ||
		fail "$c's clock reads $guest, the host's $now"
done
r3=$(sed -n 2p "$T/t3.out") r4=$(sed -n 2p "$T/t4.out")
[ ${#r3} = 32 ] || fail "no random bytes from t3: '$r3'"
[ "$r3" != "$r4" ] || fail "two restored containers read the same random bytes ($r3)"
[ "$(templates)" = "$tpl" ] || fail "restores made another template: $(templates)"

step "another initrd is another template"
cp "$AGENT_INITRD" "$T/initrd2.gz"
sed -i "s|^initrd = .*|initrd = $T/initrd2.gz|" "$PETREL_CONF"
p run --bundle "$T/b" t5 </dev/null >"$T/t5.out" 2>&1 || { cat "$T/t5.out"; fail "run t5 failed"; }
[ "$(templates | wc -l)" = 2 ] || fail "expected two templates, have: $(templates)"
tpl2=$(templates | grep -v "^$tpl$")

step "a template that cannot be restored: a clear error, removed, the next create works"
truncate -s 100 "$tpl2/state"
expect_fail "$T/t6" "restoring VM template $tpl2 (removed)" run --bundle "$T/b" t6
[ ! -e "$tpl2" ] || fail "the broken template is still there"
assert_root_empty
p run --bundle "$T/b" t7 </dev/null >"$T/t7.out" 2>&1 || { cat "$T/t7.out"; fail "run t7 after a broken template failed"; }
assert_contains "$T/t7.out" "marker-from-the-bundle"
[ -s "$tpl2/state" ] || fail "the template was not made again"

step "a container the agent cannot start: its own error, the template stays"
make_bundle "$T/bx" '["no-such-program"]'
expect_fail "$T/t9" "no-such-program" create --bundle "$T/bx" t9
assert_not_contains "$T/t9" "VM template" "the error of a container the agent refused"
[ -s "$tpl2/state" ] || fail "a container's own error removed the template"
assert_root_empty

step "vm_templates = off boots the guest"
echo "vm_templates = off" >>"$PETREL_CONF"
p create --bundle "$T/bs" t8 </dev/null >"$T/t8.out" 2>&1 || { cat "$T/t8.out"; fail "create t8 failed"; }
pid=$(state_field t8 pid)
vmm_cmdline "$pid" | grep -q -- "-incoming" && fail "vm_templates = off, yet t8 restores a template"
p delete --force t8 || fail "delete t8 failed"
assert_root_empty
