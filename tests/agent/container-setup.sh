#!/bin/bash
# What the agent sets up around the process, one container after another in one
# guest: user and groups, capabilities, no_new_privs, rlimits, umask, cwd, env and
# HOME, hostname, namespaces, /dev, mounts, masked and read-only paths, a
# read-only root, sysctls; and bad configurations refused with the field named.
. "$(dirname "$0")/helpers.bash"
agent_prepare
boot_agent

expect_run 0 "$T/id" run --user 1000:1000:10,20 -- id
assert_eq "$(cat "$T/id")" "uid=1000(user) gid=1000(user) groups=10,20" "id"

expect_run 0 "$T/caps" run --user 1000:1000 --cap CAP_NET_BIND_SERVICE -- grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status
assert_contains "$T/caps" "CapEff:	0000000000000400"
assert_contains "$T/caps" "CapBnd:	0000000000000400"
assert_contains "$T/caps" "CapAmb:	0000000000000400"

expect_run 0 "$T/nocaps" run --no-caps --nnp -- grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status
assert_contains "$T/nocaps" "CapEff:	0000000000000000"
assert_contains "$T/nocaps" "CapBnd:	0000000000000000"
assert_contains "$T/nocaps" "NoNewPrivs:	1"

expect_run 0 "$T/limits" run --rlimit RLIMIT_NOFILE=100:200 --umask 077 -- sh -c 'ulimit -n; ulimit -Hn; umask'
assert_eq "$(tr '\n' ' ' <"$T/limits")" "100 200 0077 " "rlimits and umask"

expect_run 0 "$T/env" run --cwd /work/dir --env FOO=bar --env PATH=/bin -- sh -c 'pwd; echo $FOO $HOME'
assert_eq "$(tr '\n' ' ' <"$T/env")" "/work/dir bar /root " "cwd (made when missing), env and HOME"

expect_run 0 "$T/ns" run --hostname box -- sh -c 'hostname; echo pid=$$; ip link show lo | grep -c UP'
assert_eq "$(tr '\n' ' ' <"$T/ns")" "box pid=1 1 " "hostname, pid namespace, lo up"

expect_run 0 "$T/dev" run -- sh -c 'ls /dev; readlink /dev/ptmx; grep -E " /dev(/pts|/shm)? " /proc/mounts | cut -d" " -f2,3'
for want in null zero full random urandom tty ptmx pts shm fd stdin; do
	grep -qx "$want" "$T/dev" || { cat "$T/dev"; fail "/dev lacks $want"; }
done
assert_contains "$T/dev" "pts/ptmx"
assert_contains "$T/dev" "/dev tmpfs"
assert_contains "$T/dev" "/dev/pts devpts"
assert_contains "$T/dev" "/dev/shm tmpfs"

expect_run 0 "$T/mount" run --mount /data:tmpfs:size=1m,mode=700,nosuid --mount /run/mq:mqueue -- \
	sh -c 'grep -E " /data | /run/mq " /proc/mounts | cut -d" " -f2,3; stat -c %a /data'
assert_contains "$T/mount" "/data tmpfs"
assert_contains "$T/mount" "/run/mq mqueue"
assert_contains "$T/mount" "700"

expect_run 0 "$T/mask" run --mask /etc/motd --mask /root --ro /etc -- \
	sh -c 'echo "[$(cat /etc/motd)]"; ls /root | wc -l; touch /etc/new 2>/dev/null || echo etc-ro; touch /ok && echo root-rw'
assert_eq "$(tr '\n' ' ' <"$T/mask")" "[] 0 etc-ro root-rw " "masked and read-only paths"

expect_run 0 "$T/roroot" run --readonly-root --mount /tmp:tmpfs -- \
	sh -c 'touch /x 2>/dev/null || echo root-ro; touch /tmp/x && echo tmp-rw'
assert_eq "$(tr '\n' ' ' <"$T/roroot")" "root-ro tmp-rw " "a read-only root with a tmpfs"

expect_run 0 "$T/sysctl" run --sysctl kernel.domainname=petrel.test -- cat /proc/sys/kernel/domainname
assert_eq "$(cat "$T/sysctl")" "petrel.test" "a sysctl in the container's uts namespace"

# Refusals name the field, and the guest serves the next container after them.
expect_run 125 "$T/bind" run --mount /etc/hosts:bind -- true
assert_contains "$T/bind.err" "mounts[0] (/etc/hosts): bind mounts of host paths are not supported"
expect_run 125 "$T/nf" run -- /bin/nope
assert_contains "$T/nf.err" 'process.args[0]: exec: "/bin/nope": No such file or directory'
expect_run 125 "$T/cwd" run --cwd relative -- true
assert_contains "$T/cwd.err" 'process.cwd: "relative" is not an absolute path'
expect_run 125 "$T/dev2" run --device /dev/vdz -- true
assert_contains "$T/dev2.err" "root.device: mount /dev/vdz"
expect_run 0 "$T/after" run -- echo still-serving
assert_eq "$(cat "$T/after")" "still-serving" "a container after the refusals"
shutdown_agent
