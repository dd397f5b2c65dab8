#!/bin/bash
# Bad input fails with runc's texts or a message naming the field, and a failed
# create leaves nothing behind: no state dir, no image, no VMM. Podman's bind
# mounts of small files are copied into the disk; directory binds are refused.
. "$(dirname "$0")/helpers.bash"
runtime_prepare

make_bundle "$T/b" '["sh", "-c", "cat /etc/hosts /etc/hostname; exec sleep 600"]' false \
	'"annotations": {"org.example": "yes"}'
step "bad id, missing bundle, malformed config"
expect_fail "$T/e1" 'invalid container id "a/b"' create --bundle "$T/b" 'a/b'
expect_fail "$T/e2" 'invalid container id ".hidden": starts with a dot' create --bundle "$T/b" .hidden
expect_fail "$T/e3" "--bundle $T/nope: No such file or directory" create --bundle "$T/nope" c1
mkdir -p "$T/bad" && echo '{"ociVersion": "1.0.2", "root": {"path": "rootfs"},' >"$T/bad/config.json"
expect_fail "$T/e4" "config.json: line" create --bundle "$T/bad" c1
make_bundle "$T/cwd" '["true"]'
sed -i 's|"cwd": "/"|"cwd": "relative"|' "$T/cwd/config.json"
expect_fail "$T/e5" 'process.cwd: "relative" is not an absolute path' create --bundle "$T/cwd" c1
MOUNTS="[{\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"$T\", \"options\": [\"rbind\"]}]" \
	make_bundle "$T/dirbind" '["true"]'
expect_fail "$T/e6" "bind mount of host directory \"$T\" on \"/data\" is not supported" create --bundle "$T/dirbind" c1
assert_root_empty

step "a process the agent cannot run: create fails in the guest, nothing is left"
make_bundle "$T/nf" '["/bin/nope"]'
expect_fail "$T/e7" '/bin/nope' create --bundle "$T/nf" --pid-file "$T/nf.pid" c1
[ ! -e "$T/nf.pid" ] || fail "a failed create wrote the pid file"
assert_root_empty

step "podman's bind mounts of files are copied into the disk"
echo "10.1.2.3 from-the-host" >"$T/hosts"
echo "copied-hostname" >"$T/hostname"
MOUNTS="[{\"destination\": \"/etc/hosts\", \"type\": \"bind\", \"source\": \"$T/hosts\", \"options\": [\"rbind\", \"ro\"]},
	 {\"destination\": \"/etc/hostname\", \"type\": \"bind\", \"source\": \"$T/hostname\", \"options\": [\"bind\"]},
	 {\"destination\": \"/run/.containerenv\", \"type\": \"bind\", \"source\": \"$T/hostname\", \"options\": [\"bind\"]},
	 {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"}]" \
	make_bundle "$T/pm" '["sh", "-c", "cat /etc/hosts /etc/hostname /run/.containerenv; echo done"]'
rc=0; p run --bundle "$T/pm" pm </dev/null >"$T/pm.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$T/pm.out"; fail "run with file bind mounts exited $rc"; }
assert_contains "$T/pm.out" "10.1.2.3 from-the-host"
assert_eq "$(grep -c copied-hostname "$T/pm.out")" 2 "copies of /etc/hostname and /run/.containerenv"
assert_root_empty

step "an existing id; delete of a running container needs --force"
p create --bundle "$T/b" c1 </dev/null >"$T/c1.out" 2>"$T/c1.err" || { cat "$T/c1.err"; fail "create"; }
assert_eq "$(state_field c1 annotations | tr -d "'{} ")" "org.example:yes" "annotations in state"
expect_fail "$T/e8" "container with id exists" create --bundle "$T/b" c1
p start c1
expect_fail "$T/e9" "cannot delete container c1 that is not stopped: running" delete c1
expect_fail "$T/e10" "cannot start an already running container" start c1
echo '{"memory": {"limit": 1048576}}' >"$T/res.json"
expect_fail "$T/e12" "linux.resources.memory.limit cannot be changed" update --resources "$T/res.json" c1
echo '{}' | p update --resources - c1 || fail "an empty update is a no-op"

step "pause and resume through QMP"
p pause c1 || fail "pause"
assert_eq "$(state_field c1 status)" "paused" "status after pause"
expect_fail "$T/e13" "container already paused" pause c1
p resume c1 || fail "resume"
assert_eq "$(state_field c1 status)" "running" "status after resume"

p delete --force c1 || fail "delete --force"
p delete --force c1 || fail "delete --force of a missing container"
assert_root_empty
expect_fail "$T/e14" "container does not exist" delete c1
expect_fail "$T/e15" "container does not exist" kill c1 TERM
