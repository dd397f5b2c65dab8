#!/bin/bash
# podman runs containers with the runtime under test (petrel by default, see
# tests/lib/images.sh): the output of `podman run --rm`, exit statuses 0, 3
# (137 for a KILL is in podman-detached), stdin with -i, stderr kept apart,
# what podman puts in the spec, errors and their statuses, the runtime named
# in containers.conf, and nothing left behind by --rm.
. "$(dirname "$0")/../lib/common.sh"
. "$PROJ/tests/lib/images.sh"
need_runtime podman
podman_setup
podman_image

expect_status 0 "$T/hello" pm run --rm --network none "$IMAGE" echo hello
assert_eq "$(cat "$T/hello")" "hello" "the output of podman run echo hello"

expect_status 3 "$T/exit3" pm run --rm --network none "$IMAGE" sh -c 'exit 3'

expect_status 0 "$T/streams" pm run --rm --network none "$IMAGE" sh -c 'echo out; echo err >&2'
assert_eq "$(cat "$T/streams")" "out" "the container's stdout"
assert_contains "$T/streams.err" "err" "the container's stderr"

echo "[$(date +%T)] stdin with -i"
printf 'line one\nline two\n' | pm run --rm -i --network none "$IMAGE" sh -c 'cat; echo after-eof' >"$T/cat" 2>"$T/cat.err" ||
	{ cat "$T/cat.err"; fail "podman run -i cat failed"; }
assert_eq "$(cat "$T/cat")" "$(printf 'line one\nline two\nafter-eof')" "stdin relayed to cat"

# What podman puts in the spec: env, working directory, user, hostname, and
# the small files it bind-mounts (/etc/hostname, /etc/hosts).
expect_status 0 "$T/spec" pm run --rm --network none -e FOO=bar -w /tmp -u 65534:65534 --hostname box "$IMAGE" \
	sh -c 'echo "$FOO $(pwd) $(id -u):$(id -g) $(hostname) $(cat /etc/hostname)"; grep -c box /etc/hosts'
assert_eq "$(sed -n 1p "$T/spec")" "bar /tmp 65534:65534 box box" "env, cwd, user and hostname"
[ "$(sed -n 2p "$T/spec")" -ge 1 ] || { cat "$T/spec"; fail "/etc/hosts does not name the hostname"; }
expect_status 0 "$T/ro" pm run --rm --network none --read-only "$IMAGE" sh -c 'touch /x 2>/dev/null || echo read-only'
assert_eq "$(cat "$T/ro")" "read-only" "a --read-only root"
if is_petrel; then
	# --memory sizes the VM: the limit plus petrel's overhead (128 MiB by default).
	expect_status 0 "$T/mem" pm run --rm --network none --memory 512m "$IMAGE" awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo
	[ "$(cat "$T/mem")" -gt 512 ] || fail "the guest has $(cat "$T/mem") MiB with --memory 512m"
fi

# Errors reach the user through podman, with its exit statuses: 127 for a
# program that is not there (podman matches the runtime's message).
# podman 4.3 does not always remove a --rm container whose start failed: by name.
on_exit "podman --runtime '$RUNTIME' rm -f petrel-nope-$$ petrel-nope-path-$$ >/dev/null 2>&1"
expect_status 127 "$T/nope" pm run --rm --name "petrel-nope-$$" --network none "$IMAGE" /bin/nope
expect_status 127 "$T/nope-path" pm run --rm --name "petrel-nope-path-$$" --network none "$IMAGE" no-such-program
pm rm -f "petrel-nope-$$" "petrel-nope-path-$$" >/dev/null 2>&1 || true
if is_petrel; then
	# A host directory cannot be shared with the VM yet: petrel's message, through podman.
	mkdir -p "$T/hostdir"
	expect_status 126 "$T/bind" pm run --rm --network none -v "$T/hostdir:/data" "$IMAGE" true
	assert_contains "$T/bind.err" "is not supported (no filesystem is shared with the VM yet" "podman's error"
fi

# The runtime as users name it: an [engine.runtimes] entry in containers.conf.
expect_status 0 "$T/named" podman --runtime petrel run --rm --network none "$IMAGE" echo named-runtime
assert_eq "$(cat "$T/named")" "named-runtime" "the output with --runtime petrel"

expect_status 0 "$T/left" pm ps -a --format '{{.ID}}'
assert_eq "$(cat "$T/left")" "" "containers left after run --rm"
assert_runtime_root_empty "$(runtime_default_root)"
