/*
 * oci/: config.json as `runc spec` writes it, every validation error by the
 * exact line a user reads, hostile JSON (huge numbers, deep nesting, NUL),
 * and the state document's round trip.
 *
 * JSON is written with single quotes for readability; J() turns them into
 * double quotes (no test value contains an apostrophe).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/oci.h"
#include "tests/unit/unit.h"

static struct perr err;

static char jbuf[64 * 1024];

static const char *J(const char *text)
{
	size_t n = strlen(text);
	if (n >= sizeof(jbuf))
		n = sizeof(jbuf) - 1;
	for (size_t i = 0; i < n; i++)
		jbuf[i] = text[i] == '\'' ? '"' : text[i];
	jbuf[n] = '\0';
	return jbuf;
}

/* A minimal valid config with process and the rest replaced. */
static const char *with(const char *process, const char *rest)
{
	static char raw[32 * 1024];
	snprintf(raw, sizeof(raw), "{'ociVersion': '1.0.2', 'root': {'path': 'rootfs'}%s%s%s%s}",
		 process ? ", 'process': " : "", process ? process : "", rest ? ", " : "",
		 rest ? rest : "");
	return J(raw);
}

#define PROC "{'cwd': '/', 'args': ['sh']}"

static int parse(const char *json)
{
	struct oci_config *cfg = NULL;
	perr_clear(&err);
	int r = oci_config_parse(json, strlen(json), &cfg, &err);
	if (r == 0 && !cfg)
		return -1000;
	if (r != 0 && cfg)
		return -1001;
	oci_config_free(cfg);
	return r;
}

#define ASSERT_REFUSED(json, message)                \
	do {                                         \
		UNIT_ASSERT(parse(json) < 0);        \
		UNIT_ASSERT_STREQ(err.msg, message); \
	} while (0)

#define ASSERT_ACCEPTED(json)                              \
	do {                                               \
		int r_ = parse(json);                      \
		if (r_ != 0)                               \
			UNIT_FAIL("refused: %s", err.msg); \
	} while (0)

/* `runc spec` (runc 1.1), plus hooks, annotations, resources, seccomp. */
static const char runc_spec[] =
    "{\n"
    "  'ociVersion': '1.0.2-dev',\n"
    "  'process': {\n"
    "    'terminal': true,\n"
    "    'consoleSize': {'height': 24, 'width': 80},\n"
    "    'user': {'uid': 1000, 'gid': 1000, 'umask': 18, 'additionalGids': [5, 4294967295]},\n"
    "    'args': ['sh', '-c', 'echo hi'],\n"
    "    'env': [\n"
    "      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',\n"
    "      'TERM=xterm',\n"
    "      'EMPTY='\n"
    "    ],\n"
    "    'cwd': '/work',\n"
    "    'capabilities': {\n"
    "      'bounding': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],\n"
    "      'effective': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],\n"
    "      'inheritable': [],\n"
    "      'permitted': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],\n"
    "      'ambient': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']\n"
    "    },\n"
    "    'rlimits': [\n"
    "      {'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 1024},\n"
    "      {'type': 'RLIMIT_MEMLOCK', 'hard': 18446744073709551615, 'soft': 65536}\n"
    "    ],\n"
    "    'noNewPrivileges': true,\n"
    "    'apparmorProfile': 'petrel-default',\n"
    "    'oomScoreAdj': -500,\n"
    "    'selinuxLabel': 'system_u:system_r:container_t:s0:c1,c2'\n"
    "  },\n"
    "  'root': {'path': 'rootfs', 'readonly': true},\n"
    "  'hostname': 'runc',\n"
    "  'domainname': 'example.org',\n"
    "  'mounts': [\n"
    "    {'destination': '/proc', 'type': 'proc', 'source': 'proc'},\n"
    "    {'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs',\n"
    "     'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},\n"
    "    {'destination': '/dev/pts', 'type': 'devpts', 'source': 'devpts',\n"
    "     'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', "
    "'gid=5']},\n"
    "    {'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm',\n"
    "     'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},\n"
    "    {'destination': '/dev/mqueue', 'type': 'mqueue', 'source': 'mqueue',\n"
    "     'options': ['nosuid', 'noexec', 'nodev']},\n"
    "    {'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs',\n"
    "     'options': ['nosuid', 'noexec', 'nodev', 'ro']},\n"
    "    {'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup',\n"
    "     'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']}\n"
    "  ],\n"
    "  'hooks': {\n"
    "    'createRuntime': [\n"
    "      {'path': '/usr/bin/netns-setup', 'args': ['netns-setup', 'up'],\n"
    "       'env': ['DEBUG=1'], 'timeout': 10}\n"
    "    ],\n"
    "    'poststop': [\n"
    "      {'path': '/usr/bin/cleanup'},\n"
    "      {'path': '/usr/bin/notify', 'args': ['notify', 'stopped']}\n"
    "    ]\n"
    "  },\n"
    "  'annotations': {\n"
    "    'org.opencontainers.image.os': 'linux',\n"
    "    'io.petrel.vm.memory': '256M'\n"
    "  },\n"
    "  'linux': {\n"
    "    'uidMappings': [{'containerID': 0, 'hostID': 100000, 'size': 65536}],\n"
    "    'gidMappings': [{'containerID': 0, 'hostID': 100000, 'size': 65536}],\n"
    "    'sysctl': {'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1'},\n"
    "    'resources': {\n"
    "      'devices': [{'allow': false, 'access': 'rwm'},\n"
    "                  {'allow': true, 'type': 'c', 'major': 1, 'minor': 3, 'access': 'rw'}],\n"
    "      'memory': {'limit': 536870912, 'reservation': 268435456, 'swap': -1,\n"
    "                 'swappiness': 10},\n"
    "      'cpu': {'shares': 1024, 'quota': 200000, 'period': 100000, 'cpus': '0-1',\n"
    "              'mems': '0'},\n"
    "      'pids': {'limit': 512},\n"
    "      'hugepageLimits': [{'pageSize': '2MB', 'limit': 209715200}],\n"
    "      'blockIO': {'weight': 10}\n"
    "    },\n"
    "    'cgroupsPath': '/petrel/c1',\n"
    "    'namespaces': [\n"
    "      {'type': 'pid'}, {'type': 'network', 'path': '/var/run/netns/cni-1'},\n"
    "      {'type': 'ipc'}, {'type': 'uts'}, {'type': 'mount'}, {'type': 'cgroup'},\n"
    "      {'type': 'user'}\n"
    "    ],\n"
    "    'devices': [\n"
    "      {'type': 'c', 'path': '/dev/fuse', 'major': 10, 'minor': 229,\n"
    "       'fileMode': 438, 'uid': 0, 'gid': 0},\n"
    "      {'type': 'p', 'path': '/dev/myfifo'}\n"
    "    ],\n"
    "    'seccomp': {\n"
    "      'defaultAction': 'SCMP_ACT_ERRNO', 'defaultErrnoRet': 1,\n"
    "      'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],\n"
    "      'flags': ['SECCOMP_FILTER_FLAG_LOG'],\n"
    "      'syscalls': [\n"
    "        {'names': ['read', 'write', 'exit_group'], 'action': 'SCMP_ACT_ALLOW'},\n"
    "        {'names': ['personality'], 'action': 'SCMP_ACT_ALLOW',\n"
    "         'args': [{'index': 0, 'value': 4294967295, 'op': 'SCMP_CMP_EQ'},\n"
    "                  {'index': 1, 'value': 8, 'valueTwo': 8, 'op': 'SCMP_CMP_MASKED_EQ'}]},\n"
    "        {'names': ['ptrace'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 38}\n"
    "      ]\n"
    "    },\n"
    "    'maskedPaths': ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys',\n"
    "                    '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',\n"
    "                    '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],\n"
    "    'readonlyPaths': ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys',\n"
    "                      '/proc/sysrq-trigger'],\n"
    "    'rootfsPropagation': 'rslave',\n"
    "    'mountLabel': 'system_u:object_r:container_file_t:s0:c1,c2'\n"
    "  },\n"
    "  'vm': {'hypervisor': {'path': '/ignored'}},\n"
    "  'futureTopLevelKey': [1, 2, {'x': null}]\n"
    "}\n";

static struct oci_config *parse_runc_spec(void)
{
	const char *json = J(runc_spec);
	struct oci_config *cfg = NULL;
	perr_clear(&err);
	if (oci_config_parse(json, strlen(json), &cfg, &err) != 0)
		return NULL;
	return cfg;
}

UNIT_TEST(test_config_reads_every_field_of_a_runc_spec)
{
	struct oci_config *cfg = parse_runc_spec();
	if (!cfg)
		UNIT_FAIL("refused: %s", err.msg);
	const struct oci_process *p = &cfg->process;
	int fail = 0;
#define CHECK(cond)                                                      \
	do {                                                             \
		if (!(cond) && !fail++)                                  \
			snprintf(err.msg, sizeof(err.msg), "%s", #cond); \
	} while (0)
	CHECK(strcmp(cfg->oci_version, "1.0.2-dev") == 0);
	CHECK(strcmp(cfg->root.path, "rootfs") == 0 && cfg->root.readonly);
	CHECK(p->terminal && p->has_console_size && p->console_height == 24 &&
	      p->console_width == 80);
	CHECK(p->user.uid == 1000 && p->user.gid == 1000 && p->user.has_umask &&
	      p->user.umask == 022);
	CHECK(p->user.n_additional_gids == 2 && p->user.additional_gids[1] == 4294967295u);
	CHECK(p->args.n == 3 && strcmp(p->args.v[2], "echo hi") == 0 && p->args.v[3] == NULL);
	CHECK(p->env.n == 3 && strcmp(p->env.v[1], "TERM=xterm") == 0 && !p->env.v[3]);
	CHECK(strcmp(p->cwd, "/work") == 0);
	CHECK(p->capabilities.present && p->capabilities.bounding.names.n == 3);
	CHECK(p->capabilities.bounding.mask ==
	      ((1ULL << CAP_AUDIT_WRITE) | (1ULL << CAP_KILL) | (1ULL << CAP_NET_BIND_SERVICE)));
	CHECK(p->capabilities.inheritable.names.v && p->capabilities.inheritable.names.n == 0 &&
	      p->capabilities.inheritable.mask == 0);
	CHECK(p->capabilities.ambient.mask == p->capabilities.permitted.mask);
	CHECK(p->n_rlimits == 2 && p->rlimits[0].resource == RLIMIT_NOFILE &&
	      p->rlimits[0].soft == 1024 && p->rlimits[0].hard == 1024);
	CHECK(p->rlimits[1].resource == RLIMIT_MEMLOCK && p->rlimits[1].hard == UINT64_MAX &&
	      strcmp(p->rlimits[1].name, "RLIMIT_MEMLOCK") == 0);
	CHECK(p->no_new_privileges && strcmp(p->apparmor_profile, "petrel-default") == 0);
	CHECK(p->has_oom_score_adj && p->oom_score_adj == -500);
	CHECK(strcmp(p->selinux_label, "system_u:system_r:container_t:s0:c1,c2") == 0);
	CHECK(strcmp(cfg->hostname, "runc") == 0 && strcmp(cfg->domainname, "example.org") == 0);
	CHECK(cfg->n_mounts == 7 && strcmp(cfg->mounts[2].destination, "/dev/pts") == 0 &&
	      strcmp(cfg->mounts[2].type, "devpts") == 0 && cfg->mounts[2].options.n == 6 &&
	      strcmp(cfg->mounts[2].options.v[5], "gid=5") == 0);
	CHECK(cfg->mounts[0].options.v == NULL && cfg->mounts[0].options.n == 0);
	CHECK(cfg->hooks[OCI_HOOK_CREATE_RUNTIME].n == 1 && cfg->hooks[OCI_HOOK_POSTSTOP].n == 2 &&
	      cfg->hooks[OCI_HOOK_PRESTART].n == 0);
	const struct oci_hook *h = &cfg->hooks[OCI_HOOK_CREATE_RUNTIME].items[0];
	CHECK(strcmp(h->path, "/usr/bin/netns-setup") == 0 && h->args.n == 2 && h->env.n == 1 &&
	      h->has_timeout && h->timeout == 10);
	CHECK(!cfg->hooks[OCI_HOOK_POSTSTOP].items[0].has_timeout);
	CHECK(cfg->annotations.n == 2 &&
	      strcmp(cfg->annotations.items[0].key, "org.opencontainers.image.os") == 0);
	const struct oci_linux *lx = &cfg->linux_;
	CHECK(lx->present && lx->n_uid_mappings == 1 && lx->uid_mappings[0].host_id == 100000 &&
	      lx->gid_mappings[0].size == 65536);
	CHECK(lx->sysctl.n == 2 && strcmp(lx->sysctl.items[1].key, "kernel.shm_rmid_forced") == 0);
	CHECK(lx->has_resources && lx->resources.n_devices == 2 &&
	      !lx->resources.devices[0].allow && lx->resources.devices[0].type == 0 &&
	      lx->resources.devices[1].type == 'c' && lx->resources.devices[1].minor.value == 3);
	CHECK(lx->resources.memory.limit.set && lx->resources.memory.limit.value == 536870912 &&
	      lx->resources.memory.swap.value == -1 && lx->resources.memory.swappiness.value == 10);
	CHECK(lx->resources.cpu.quota.value == 200000 && lx->resources.cpu.period.value == 100000 &&
	      strcmp(lx->resources.cpu.cpus, "0-1") == 0 && lx->resources.cpu.shares.set);
	CHECK(lx->resources.pids.limit.set && lx->resources.pids.limit.value == 512);
	CHECK(lx->resources.n_hugepage_limits == 1 &&
	      lx->resources.hugepage_limits[0].limit == 209715200);
	CHECK(strcmp(lx->cgroups_path, "/petrel/c1") == 0);
	CHECK(lx->n_namespaces == 7 && lx->namespaces[1].type == OCI_NS_NETWORK &&
	      strcmp(lx->namespaces[1].path, "/var/run/netns/cni-1") == 0);
	CHECK(lx->n_devices == 2 && lx->devices[0].type == 'c' && lx->devices[0].major == 10 &&
	      lx->devices[0].has_file_mode && lx->devices[0].file_mode == 0666 &&
	      lx->devices[1].type == 'p');
	CHECK(lx->seccomp && strcmp(lx->seccomp->default_action, "SCMP_ACT_ERRNO") == 0 &&
	      lx->seccomp->has_default_errno_ret && lx->seccomp->default_errno_ret == 1);
	if (lx->seccomp) {
		CHECK(lx->seccomp->architectures.n == 3 && lx->seccomp->flags.n == 1 &&
		      lx->seccomp->n_syscalls == 3);
		CHECK(lx->seccomp->syscalls[1].n_args == 2 &&
		      lx->seccomp->syscalls[1].args[0].value == 4294967295u &&
		      strcmp(lx->seccomp->syscalls[1].args[1].op, "SCMP_CMP_MASKED_EQ") == 0 &&
		      lx->seccomp->syscalls[1].args[1].value_two == 8);
		CHECK(lx->seccomp->syscalls[2].has_errno_ret &&
		      lx->seccomp->syscalls[2].errno_ret == 38);
	}
	CHECK(lx->masked_paths.n == 10 && lx->readonly_paths.n == 5);
	CHECK(strcmp(lx->rootfs_propagation, "rslave") == 0 && lx->mount_label);
#undef CHECK
	oci_config_free(cfg);
	if (fail)
		UNIT_FAIL("%s", err.msg);
}

UNIT_TEST(test_config_helpers_find_annotations_namespaces_and_hooks)
{
	struct oci_config *cfg = parse_runc_spec();
	if (!cfg)
		UNIT_FAIL("refused: %s", err.msg);
	const char *mem = oci_annotation(cfg, "io.petrel.vm.memory");
	const char *none = oci_annotation(cfg, "io.petrel.none");
	const struct oci_namespace *net = oci_find_namespace(cfg, OCI_NS_NETWORK);
	const struct oci_namespace *time_ns = oci_find_namespace(cfg, OCI_NS_TIME);
	size_t poststop = 0, prestart = 0;
	const char *last = NULL;
	oci_for_each_hook(cfg, OCI_HOOK_POSTSTOP, hook)
	{
		poststop++;
		last = hook->path;
	}
	oci_for_each_hook(cfg, OCI_HOOK_PRESTART, hook) prestart++;
	bool ok = mem && strcmp(mem, "256M") == 0 && !none && net && net->path && !time_ns &&
		  poststop == 2 && prestart == 0 && last && strcmp(last, "/usr/bin/notify") == 0 &&
		  oci_hooks(cfg, OCI_HOOK__COUNT)->n == 0;
	oci_config_free(cfg);
	UNIT_ASSERT(ok);
}

UNIT_TEST(test_names_map_both_ways)
{
	char buf[32];
	UNIT_ASSERT_EQ(oci_rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE);
	UNIT_ASSERT_EQ(oci_rlimit_from_name("RLIMIT_FOO"), -EINVAL);
	UNIT_ASSERT_STREQ(oci_rlimit_name(RLIMIT_STACK), "RLIMIT_STACK");
	UNIT_ASSERT(oci_rlimit_name(9999) == NULL);
	UNIT_ASSERT_EQ(oci_cap_from_name("CAP_SYS_ADMIN"), CAP_SYS_ADMIN);
	UNIT_ASSERT_EQ(oci_cap_from_name("CAP_CHOWN"), 0);
	UNIT_ASSERT_EQ(oci_cap_from_name("cap_chown"), -EINVAL);
	UNIT_ASSERT_EQ(oci_cap_from_name("CAP_CHOWN "), -EINVAL);
	UNIT_ASSERT_EQ(oci_cap_from_name("12"), -EINVAL);
	UNIT_ASSERT_EQ(oci_cap_from_name("CAP_"), -EINVAL);
	UNIT_ASSERT_EQ(oci_cap_name(CAP_NET_ADMIN, buf, sizeof(buf)), 0);
	UNIT_ASSERT_STREQ(buf, "CAP_NET_ADMIN");
	UNIT_ASSERT_EQ(oci_cap_name(CAP_NET_ADMIN, buf, 5), -ERANGE);
	UNIT_ASSERT_EQ(oci_cap_name(63, buf, sizeof(buf)), -EINVAL);
	UNIT_ASSERT_EQ(oci_cap_name(-1, buf, sizeof(buf)), -EINVAL);
	UNIT_ASSERT_EQ(oci_ns_type_from_name("network"), OCI_NS_NETWORK);
	UNIT_ASSERT_EQ(oci_ns_type_from_name("net"), -EINVAL);
	UNIT_ASSERT_STREQ(oci_ns_type_name(OCI_NS_TIME), "time");
	UNIT_ASSERT(oci_ns_type_name(OCI_NS__COUNT) == NULL);
	UNIT_ASSERT_EQ(oci_ns_clone_flag(OCI_NS_MOUNT), CLONE_NEWNS);
	UNIT_ASSERT_STREQ(oci_hook_kind_name(OCI_HOOK_CREATE_CONTAINER), "createContainer");
	UNIT_ASSERT_STREQ(oci_status_name(OCI_STATUS_PAUSED), "paused");
	UNIT_ASSERT_EQ(oci_status_from_name("stopped"), OCI_STATUS_STOPPED);
	UNIT_ASSERT_EQ(oci_status_from_name("dead"), -EINVAL);
}

UNIT_TEST(test_config_load_reads_bundle_config_json)
{
	char dir[] = "/tmp/petrel-test-oci-XXXXXX";
	char path[sizeof(dir) + 16];
	UNIT_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/config.json", dir);

	struct oci_config *cfg = NULL;
	int missing = oci_config_load(dir, &cfg, &err);
	char missing_msg[PERR_MSG_MAX];
	snprintf(missing_msg, sizeof(missing_msg), "%s", err.msg);

	const char *json = J(runc_spec);
	FILE *f = fopen(path, "we");
	bool written = f && fwrite(json, 1, strlen(json), f) == strlen(json);
	if (f)
		fclose(f);
	int loaded = oci_config_load(dir, &cfg, &err);
	bool ok = loaded == 0 && cfg && cfg->n_mounts == 7;
	oci_config_free(cfg);
	unlink(path);
	rmdir(dir);

	char expect[PERR_MSG_MAX];
	snprintf(expect, sizeof(expect), "open %s: No such file or directory", path);
	UNIT_ASSERT_EQ(missing, -ENOENT);
	UNIT_ASSERT_STREQ(missing_msg, expect);
	UNIT_ASSERT(written);
	UNIT_ASSERT(ok);
}

UNIT_TEST(test_config_load_refuses_a_directory)
{
	char dir[] = "/tmp/petrel-test-oci-XXXXXX";
	char path[sizeof(dir) + 16];
	UNIT_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	mkdir(path, 0700);
	struct oci_config *cfg = NULL;
	int r = oci_config_load(dir, &cfg, &err);
	rmdir(path);
	rmdir(dir);
	UNIT_ASSERT_EQ(r, -EINVAL);
	UNIT_ASSERT(cfg == NULL);
	UNIT_ASSERT_CONTAINS(err.msg, "config.json: not a regular file");
}

/* ---- required members ---- */

UNIT_TEST(test_config_requires_process)
{
	ASSERT_REFUSED(with(NULL, NULL),
		       "config.json: process: missing (required when the container is started)");
	ASSERT_REFUSED(with("null", NULL),
		       "config.json: process: missing (required when the container is started)");
}

UNIT_TEST(test_config_requires_args_with_one_element)
{
	ASSERT_REFUSED(with("{'cwd': '/'}", NULL), "config.json: process.args: missing");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': []}", NULL),
		       "config.json: process.args: must have at least one element");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['']}", NULL),
		       "config.json: process.args[0]: the program to run must not be empty");
}

UNIT_TEST(test_config_requires_absolute_cwd)
{
	ASSERT_REFUSED(with("{'args': ['sh']}", NULL), "config.json: process.cwd: missing");
	ASSERT_REFUSED(with("{'cwd': 'tmp', 'args': ['sh']}", NULL),
		       "config.json: process.cwd: \"tmp\" is not an absolute path");
	ASSERT_REFUSED(with("{'cwd': '', 'args': ['sh']}", NULL),
		       "config.json: process.cwd: \"\" is not an absolute path");
}

UNIT_TEST(test_config_requires_root_path)
{
	ASSERT_REFUSED(J("{'ociVersion': '1.0.2', 'process': " PROC "}"),
		       "config.json: root: missing");
	ASSERT_REFUSED(
	    J("{'ociVersion': '1.0.2', 'root': {'readonly': true}, 'process': " PROC "}"),
	    "config.json: root.path: missing");
	ASSERT_REFUSED(J("{'ociVersion': '1.0.2', 'root': {'path': ''}, 'process': " PROC "}"),
		       "config.json: root.path: must not be empty");
}

UNIT_TEST(test_config_requires_oci_version_1)
{
	ASSERT_REFUSED(J("{'root': {'path': 'r'}, 'process': " PROC "}"),
		       "config.json: ociVersion: missing");
	ASSERT_REFUSED(J("{'ociVersion': '2.0.0', 'root': {'path': 'r'}, 'process': " PROC "}"),
		       "config.json: ociVersion: \"2.0.0\" is not supported (petrel reads "
		       "runtime-spec 1.x)");
	ASSERT_REFUSED(J("{'ociVersion': '1', 'root': {'path': 'r'}, 'process': " PROC "}"),
		       "config.json: ociVersion: \"1\" is not supported (petrel reads runtime-spec "
		       "1.x)");
	ASSERT_REFUSED(J("{'ociVersion': 1.1, 'root': {'path': 'r'}, 'process': " PROC "}"),
		       "config.json: ociVersion: expected a string, got a number");
	ASSERT_ACCEPTED(J("{'ociVersion': '1.1.0', 'root': {'path': 'r'}, 'process': " PROC "}"));
	ASSERT_ACCEPTED(
	    J("{'ociVersion': '1.2.0-rc.1', 'root': {'path': 'r'}, 'process': " PROC "}"));
}

/* ---- types ---- */

UNIT_TEST(test_config_refuses_wrong_json_types)
{
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'terminal': 'yes'}", NULL),
		       "config.json: process.terminal: expected a boolean, got a string");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': 'sh'}", NULL),
		       "config.json: process.args: expected an array, got a string");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh', 1]}", NULL),
		       "config.json: process.args[1]: expected a string, got a number");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'user': {'uid': '0'}}", NULL),
		       "config.json: process.user.uid: expected an integer, got a string");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'user': {'uid': 1.5}}", NULL),
		       "config.json: process.user.uid: expected an integer, got 1.5");
	ASSERT_REFUSED(with("[]", NULL), "config.json: process: expected an object, got an array");
	ASSERT_REFUSED(with(PROC, "'mounts': {}"),
		       "config.json: mounts: expected an array, got an object");
	ASSERT_REFUSED(with(PROC, "'mounts': [[]]"),
		       "config.json: mounts[0]: expected an object, got an array");
	ASSERT_REFUSED(with(PROC, "'hostname': false"),
		       "config.json: hostname: expected a string, got a boolean");
	ASSERT_REFUSED(with(PROC, "'annotations': {'a': 1}"),
		       "config.json: annotations[\"a\"]: expected a string, got a number");
	ASSERT_REFUSED(with(PROC, "'annotations': {'org.example.x': true}"),
		       "config.json: annotations[\"org.example.x\"]: expected a string, got a "
		       "boolean");
	ASSERT_REFUSED(with(PROC, "'linux': {'resources': {'memory': {'limit': '1G'}}}"),
		       "config.json: linux.resources.memory.limit: expected an integer, got a "
		       "string");
}

UNIT_TEST(test_config_treats_null_as_absent)
{
	ASSERT_ACCEPTED(with("{'cwd': '/', 'args': ['sh'], 'terminal': null, 'env': null, "
			     "'capabilities': null, 'rlimits': null, 'user': null}",
			     "'mounts': null, 'hooks': null, 'annotations': null, 'linux': null, "
			     "'hostname': null"));
}

UNIT_TEST(test_config_ignores_unknown_keys)
{
	ASSERT_ACCEPTED(with("{'cwd': '/', 'args': ['sh'], 'ioPriority': {'class': 'x'}, "
			     "'scheduler': 7}",
			     "'solaris': {}, 'windows': 1, 'linux': {'intelRdt': {}, "
			     "'personality': {'domain': 'LINUX'}}, 'future': [[[]]]"));
}

UNIT_TEST(test_config_refuses_duplicate_keys)
{
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'cwd': '/tmp'}", NULL),
		       "config.json: process: duplicate key \"cwd\"");
	ASSERT_REFUSED(with(PROC, "'annotations': {'b': '1', 'a': '2', 'b': '3'}"),
		       "config.json: annotations: duplicate key \"b\"");
}

/* ---- values ---- */

UNIT_TEST(test_config_refuses_unknown_rlimit)
{
	ASSERT_REFUSED(
	    with("{'cwd': '/', 'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_NOFILE', 'hard': 1, "
		 "'soft': 1}, {'type': 'RLIMIT_CPU', 'hard': 1, 'soft': 1}, {'type': "
		 "'RLIMIT_FOO', 'hard': 1, 'soft': 1}]}",
		 NULL),
	    "config.json: process.rlimits[2].type: unknown rlimit \"RLIMIT_FOO\"; allowed: "
	    "RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_LOCKS, "
	    "RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, "
	    "RLIMIT_RSS, "
	    "RLIMIT_RTPRIO, RLIMIT_RTTIME, RLIMIT_SIGPENDING, RLIMIT_STACK");
}

UNIT_TEST(test_config_refuses_duplicate_or_inverted_rlimits)
{
	ASSERT_REFUSED(
	    with("{'cwd': '/', 'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_NOFILE', 'hard': 1, "
		 "'soft': 1}, {'type': 'RLIMIT_NOFILE', 'hard': 2, 'soft': 2}]}",
		 NULL),
	    "config.json: process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\", already in "
	    "[0]");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_NOFILE', "
			    "'hard': 1024, 'soft': 2048}]}",
			    NULL),
		       "config.json: process.rlimits[0]: soft limit 2048 is above hard limit 1024");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_NOFILE', "
			    "'hard': 1024}]}",
			    NULL),
		       "config.json: process.rlimits[0].soft: missing");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_NOFILE', "
			    "'hard': -1, 'soft': 0}]}",
			    NULL),
		       "config.json: process.rlimits[0].hard: -1 is out of range "
		       "(0..18446744073709551615)");
}

UNIT_TEST(test_config_refuses_unknown_capability)
{
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'capabilities': {'bounding': "
			    "['CAP_KILL', 'CAP_FOO']}}",
			    NULL),
		       "config.json: process.capabilities.bounding[1]: unknown capability "
		       "\"CAP_FOO\"");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'capabilities': {'ambient': "
			    "['cap_kill']}}",
			    NULL),
		       "config.json: process.capabilities.ambient[0]: unknown capability "
		       "\"cap_kill\"");
}

UNIT_TEST(test_config_refuses_unknown_namespace)
{
	ASSERT_REFUSED(with(PROC, "'linux': {'namespaces': [{'type': 'foo'}]}"),
		       "config.json: linux.namespaces[0].type: unknown namespace \"foo\"; allowed: "
		       "pid, network, mount, ipc, uts, user, cgroup, time");
	ASSERT_REFUSED(with(PROC, "'linux': {'namespaces': [{'path': '/proc/1/ns/net'}]}"),
		       "config.json: linux.namespaces[0].type: missing");
	ASSERT_REFUSED(with(PROC, "'linux': {'namespaces': [{'type': 'network', 'path': "
				  "'netns'}]}"),
		       "config.json: linux.namespaces[0].path: \"netns\" is not an absolute path");
}

UNIT_TEST(test_config_refuses_duplicate_namespace)
{
	ASSERT_REFUSED(with(PROC, "'linux': {'namespaces': [{'type': 'pid'}, {'type': 'mount'}, "
				  "{'type': 'pid', 'path': '/proc/1/ns/pid'}]}"),
		       "config.json: linux.namespaces[2].type: duplicate namespace \"pid\", "
		       "already in [0]");
}

UNIT_TEST(test_config_refuses_mappings_without_user_namespace)
{
	ASSERT_REFUSED(with(PROC, "'linux': {'uidMappings': [{'containerID': 0, 'hostID': 1000, "
				  "'size': 1}]}"),
		       "config.json: linux.uidMappings: set, but linux.namespaces has no user "
		       "namespace");
	ASSERT_REFUSED(with(PROC, "'linux': {'namespaces': [{'type': 'user'}], 'uidMappings': "
				  "[{'containerID': 0, 'size': 1}]}"),
		       "config.json: linux.uidMappings[0].hostID: missing");
}

UNIT_TEST(test_config_requires_absolute_mount_destination)
{
	ASSERT_REFUSED(with(PROC, "'mounts': [{'destination': '/proc', 'type': 'proc'}, "
				  "{'destination': 'dev', 'type': 'tmpfs'}]"),
		       "config.json: mounts[1].destination: \"dev\" is not an absolute path");
	ASSERT_REFUSED(with(PROC, "'mounts': [{'type': 'tmpfs'}]"),
		       "config.json: mounts[0].destination: missing");
}

UNIT_TEST(test_config_checks_hooks)
{
	ASSERT_REFUSED(
	    with(PROC, "'hooks': {'poststart': [{'path': 'bin/hook'}]}"),
	    "config.json: hooks.poststart[0].path: \"bin/hook\" is not an absolute path");
	ASSERT_REFUSED(with(PROC, "'hooks': {'prestart': [{'path': '/h', 'timeout': 0}]}"),
		       "config.json: hooks.prestart[0].timeout: 0 must be greater than zero");
	ASSERT_REFUSED(with(PROC, "'hooks': {'poststop': [{'path': '/h'}, {'path': '/h', "
				  "'timeout': -5}]}"),
		       "config.json: hooks.poststop[1].timeout: -5 must be greater than zero");
	ASSERT_REFUSED(with(PROC, "'hooks': {'createContainer': [{'path': '/h', 'env': ['A']}]}"),
		       "config.json: hooks.createContainer[0].env[0]: \"A\" is not NAME=VALUE");
	ASSERT_REFUSED(with(PROC, "'hooks': {'startContainer': [{'args': ['x']}]}"),
		       "config.json: hooks.startContainer[0].path: missing");
	ASSERT_ACCEPTED(with(PROC, "'hooks': {'unknownHookKind': [1], 'poststart': []}"));
}

UNIT_TEST(test_config_checks_uid_and_gid_range)
{
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'user': {'uid': 4294967296}}", NULL),
		       "config.json: process.user.uid: 4294967296 is out of range (0..4294967295)");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'user': {'gid': -1}}", NULL),
		       "config.json: process.user.gid: -1 is out of range (0..4294967295)");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'user': {'additionalGids': [1, "
			    "-2]}}",
			    NULL),
		       "config.json: process.user.additionalGids[1]: -2 is out of range "
		       "(0..4294967295)");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'user': {'umask': 512}}", NULL),
		       "config.json: process.user.umask: 512 (01000) is out of range (0..0777)");
	ASSERT_ACCEPTED(with("{'cwd': '/', 'args': ['sh'], 'user': {'uid': 4294967295, 'gid': "
			     "0}}",
			     NULL));
}

UNIT_TEST(test_config_requires_env_name_value)
{
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'env': ['A=1', 'NOEQUALS']}", NULL),
		       "config.json: process.env[1]: \"NOEQUALS\" is not NAME=VALUE");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'env': ['=1']}", NULL),
		       "config.json: process.env[0]: \"=1\" is not NAME=VALUE");
}

UNIT_TEST(test_config_checks_other_linux_values)
{
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'oomScoreAdj': 1001}", NULL),
		       "config.json: process.oomScoreAdj: 1001 is out of range (-1000..1000)");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'consoleSize': {'height': 24}}", NULL),
		       "config.json: process.consoleSize.width: missing");
	ASSERT_REFUSED(with(PROC, "'linux': {'maskedPaths': ['/proc/kcore', 'sys']}"),
		       "config.json: linux.maskedPaths[1]: \"sys\" is not an absolute path");
	ASSERT_REFUSED(with(PROC, "'linux': {'rootfsPropagation': 'weird'}"),
		       "config.json: linux.rootfsPropagation: unknown propagation \"weird\"; "
		       "allowed: private, rprivate, shared, rshared, slave, rslave, unbindable, "
		       "runbindable");
	ASSERT_REFUSED(with(PROC, "'linux': {'resources': {'devices': [{'allow': true, 'access': "
				  "'rwx'}]}}"),
		       "config.json: linux.resources.devices[0].access: \"rwx\" is not a "
		       "combination of r, w and m");
	ASSERT_REFUSED(with(PROC, "'linux': {'resources': {'devices': [{'access': 'r'}]}}"),
		       "config.json: linux.resources.devices[0].allow: missing");
	ASSERT_REFUSED(with(PROC, "'linux': {'resources': {'memory': {'limit': -2}}}"),
		       "config.json: linux.resources.memory.limit: -2 is neither -1 (unlimited) "
		       "nor a number of bytes");
	ASSERT_REFUSED(with(PROC, "'linux': {'devices': [{'type': 'c', 'path': '/dev/x'}]}"),
		       "config.json: linux.devices[0].major: missing (required for device type c, "
		       "b and u)");
	ASSERT_REFUSED(with(PROC, "'linux': {'devices': [{'type': 'x', 'path': '/dev/x'}]}"),
		       "config.json: linux.devices[0].type: unknown device type \"x\"; allowed: c, "
		       "b, u, p");
	ASSERT_REFUSED(with(PROC,
			    "'hostname': "
			    "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"),
		       "config.json: hostname: "
		       "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is "
		       "longer than 64 bytes");
}

UNIT_TEST(test_config_checks_seccomp_names)
{
	ASSERT_REFUSED(with(PROC, "'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_MAYBE'}}"),
		       "config.json: linux.seccomp.defaultAction: unknown action "
		       "\"SCMP_ACT_MAYBE\"; allowed: SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, "
		       "SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, "
		       "SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY");
	ASSERT_REFUSED(with(PROC, "'linux': {'seccomp': {'architectures': ['SCMP_ARCH_X86']}}"),
		       "config.json: linux.seccomp.defaultAction: missing");
	ASSERT_REFUSED(with(PROC, "'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', "
				  "'syscalls': [{'names': ['kill'], 'action': 'SCMP_ACT_ERRNO', "
				  "'args': [{'index': 6, 'value': 1, 'op': 'SCMP_CMP_EQ'}]}]}}"),
		       "config.json: linux.seccomp.syscalls[0].args[0].index: 6 is out of range "
		       "(0..5)");
	ASSERT_REFUSED(with(PROC, "'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', "
				  "'syscalls': [{'names': [], 'action': 'SCMP_ACT_ERRNO'}]}}"),
		       "config.json: linux.seccomp.syscalls[0].names: must have at least one "
		       "element");
	ASSERT_REFUSED(with(PROC, "'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', "
				  "'syscalls': [{'names': ['x'], 'action': 'SCMP_ACT_NOTIFY'}]}}"),
		       "config.json: linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY requires "
		       "linux.seccomp.listenerPath");
}

/* ---- hostile JSON ---- */

UNIT_TEST(test_config_reports_malformed_json_with_line_and_column)
{
	ASSERT_REFUSED("{\n  \"ociVersion\": \"1.0.2\",\n  \"root\" {\"path\": \"r\"}\n}",
		       "config.json: line 3, column 10: parse error: object key and value must be "
		       "separated by a colon (':')");
	ASSERT_REFUSED("{\"a\": 1,\n  3: 4}",
		       "config.json: line 2, column 3: parse error: invalid object key (must be a "
		       "string)");
	ASSERT_REFUSED("{\"a\": [1, 2,]}",
		       "config.json: line 1, column 13: parse error: unallowed token at this point "
		       "in JSON text");
	ASSERT_REFUSED("{\"a\": tru}",
		       "config.json: line 1, column 9: lexical error: invalid string in json text");
	ASSERT_REFUSED("{\"a\": 1,\n\"b\": ",
		       "config.json: line 2, column 6: parse error: premature EOF");
	ASSERT_REFUSED("{} {}", "config.json: line 1, column 4: parse error: trailing garbage");
	ASSERT_REFUSED("{/* comment */}",
		       "config.json: line 1, column 2: lexical error: probable comment found in "
		       "input text, comments are not enabled");
}

UNIT_TEST(test_config_refuses_empty_file)
{
	ASSERT_REFUSED("", "config.json: empty file (expected a JSON object)");
	ASSERT_REFUSED(" \n\t\r\n", "config.json: empty file (expected a JSON object)");
}

UNIT_TEST(test_config_refuses_non_object_document)
{
	ASSERT_REFUSED("[]", "config.json: expected an object at the top level, got an array");
	ASSERT_REFUSED("\"x\"", "config.json: expected an object at the top level, got a string");
	ASSERT_REFUSED("null", "config.json: expected an object at the top level, got null");
}

UNIT_TEST(test_config_refuses_huge_numbers_by_path)
{
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'user': {'uid': 1e400}}", NULL),
		       "config.json: process.user.uid: expected an integer, got 1e400");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'user': {'uid': "
			    "99999999999999999999999999}}",
			    NULL),
		       "config.json: process.user.uid: 99999999999999999999999999 is out of range "
		       "(0..4294967295)");
	ASSERT_REFUSED(with(PROC, "'linux': {'resources': {'pids': {'limit': "
				  "-99999999999999999999}}}"),
		       "config.json: linux.resources.pids.limit: -99999999999999999999 is out of "
		       "range (-9223372036854775808..9223372036854775807)");
	ASSERT_REFUSED(with("{'cwd': '/', 'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_CORE', "
			    "'hard': 18446744073709551616, 'soft': 0}]}",
			    NULL),
		       "config.json: process.rlimits[0].hard: 18446744073709551616 is out of "
		       "range (0..18446744073709551615)");

	/* A number of 100000 digits: judged by its path, and shortened. */
	size_t n = 100000;
	char *json = malloc(n + 256);
	UNIT_ASSERT(json);
	int off = snprintf(json, 256,
			   "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"r\"}, "
			   "\"process\": {\"cwd\": \"/\", \"args\": [\"sh\"], "
			   "\"oomScoreAdj\": ");
	memset(json + off, '7', n);
	memcpy(json + off + n, "}}", 3);
	int r = parse(json);
	free(json);
	UNIT_ASSERT(r < 0);
	UNIT_ASSERT_STREQ(err.msg,
			  "config.json: process.oomScoreAdj: "
			  "77777777777777777777777777777777777777777777... is out of range "
			  "(-1000..1000)");
}

UNIT_TEST(test_config_refuses_deep_nesting_without_recursing)
{
	/* An unknown key (ignored if shallow) nested 64 then 65 deep, then a
	 * million deep: the last must be refused fast and without a crash. */
	size_t depth = 1000000;
	char *json = malloc(2 * depth + 256);
	UNIT_ASSERT(json);
	for (size_t d = 63; d <= 64; d++) {
		int off = snprintf(json, 256, "{\"x\": ");
		memset(json + off, '[', d - 1);
		memset(json + off + d - 1, ']', d - 1);
		memcpy(json + off + 2 * (d - 1), "}", 2);
		int r = parse(json);
		/* Syntax passes; the document then lacks everything. */
		if (r == 0 || strcmp(err.msg, "config.json: ociVersion: missing") != 0) {
			free(json);
			UNIT_FAIL("%zu deep: %s", d, err.msg);
		}
	}
	int off = snprintf(json, 256, "{\"x\": ");
	memset(json + off, '[', 64);
	memcpy(json + off + 64, "]]", 3);
	parse(json);
	char at65[PERR_MSG_MAX];
	snprintf(at65, sizeof(at65), "%s", err.msg);

	memset(json + off, '[', depth);
	memset(json + off + depth, ']', depth);
	memcpy(json + off + 2 * depth, "}", 2);
	int r = parse(json);
	free(json);
	UNIT_ASSERT_STREQ(at65, "config.json: line 1, column 70: nested deeper than 64 levels");
	UNIT_ASSERT(r < 0);
	UNIT_ASSERT_STREQ(err.msg, "config.json: line 1, column 70: nested deeper than 64 levels");
}

UNIT_TEST(test_config_refuses_nul_in_strings)
{
	/* "\u0000" would end the C string early: "/bin/sh\0 -c evil" -> "/bin/sh". */
	ASSERT_REFUSED(
	    with("{'cwd': '/', 'args': ['/bin/sh\\u0000 -c evil']}", NULL),
	    "config.json: line 1, column 108: string contains a NUL character (\\u0000)");
	/* A raw NUL byte is a lexical error, not the end of the text. */
	char raw[] = "{\"ociVersion\": \"1.0.2\"\0}";
	perr_clear(&err);
	struct oci_config *cfg = NULL;
	int r = oci_config_parse(raw, sizeof(raw) - 1, &cfg, &err);
	UNIT_ASSERT(r < 0 && !cfg);
	UNIT_ASSERT_STREQ(err.msg, "config.json: line 1, column 23: lexical error: invalid char in "
				   "json text");
}

UNIT_TEST(test_config_errors_stay_on_one_line)
{
	ASSERT_REFUSED(with("{'cwd': 'a\\nb\\u0001', 'args': ['sh']}", NULL),
		       "config.json: process.cwd: \"a\\nb\\u0001\" is not an absolute path");
	ASSERT_REFUSED(with(PROC, "'annotations': {'a\\nb': 5}"),
		       "config.json: annotations[\"a\\nb\"]: expected a string, got a number");
	ASSERT_REFUSED(with(PROC, "'annotations': {'': 'x'}"),
		       "config.json: annotations[\"\"]: keys must not be empty");
}

UNIT_TEST(test_config_refuses_invalid_utf8)
{
	ASSERT_REFUSED(
	    "{\"ociVersion\": \"1.0\xff\"}",
	    "config.json: line 1, column 20: lexical error: invalid bytes in UTF8 string");
}

/* ---- what petrel does not support ---- */

static int check_supported(const char *json)
{
	struct oci_config *cfg = NULL;
	perr_clear(&err);
	int r = oci_config_parse(json, strlen(json), &cfg, &err);
	if (r)
		return -1000;
	r = oci_config_check_supported(cfg, &err);
	oci_config_free(cfg);
	return r;
}

UNIT_TEST(test_supported_accepts_runc_spec)
{
	int r = check_supported(J(runc_spec));
	if (r)
		UNIT_FAIL("refused: %s", err.msg);
}

UNIT_TEST(test_supported_refuses_bind_mounts)
{
	UNIT_ASSERT_EQ(check_supported(with(PROC, "'mounts': [{'destination': '/etc/hosts', "
						  "'type': 'bind', 'source': '/etc/hosts', "
						  "'options': ['rbind', 'ro']}]")),
		       -ENOTSUP);
	UNIT_ASSERT_STREQ(err.msg, "config.json: mounts[0]: bind mount of host path "
				   "\"/etc/hosts\" on \"/etc/hosts\" is not supported (no "
				   "filesystem is shared with the VM yet)");
	UNIT_ASSERT_EQ(check_supported(with(PROC, "'mounts': [{'destination': '/proc', 'type': "
						  "'proc'}, {'destination': '/data', 'source': "
						  "'/srv/data', 'options': ['bind']}]")),
		       -ENOTSUP);
	UNIT_ASSERT_STREQ(err.msg, "config.json: mounts[1]: bind mount of host path "
				   "\"/srv/data\" on \"/data\" is not supported (no filesystem is "
				   "shared with the VM yet)");
}

UNIT_TEST(test_supported_refuses_host_filesystems)
{
	UNIT_ASSERT_EQ(check_supported(with(PROC, "'mounts': [{'destination': '/data', 'type': "
						  "'ext4', 'source': '/dev/sdb1'}]")),
		       -ENOTSUP);
	UNIT_ASSERT_STREQ(err.msg, "config.json: mounts[0].type: \"ext4\" is not supported: it "
				   "needs a host device or directory; petrel mounts proc, sysfs, "
				   "tmpfs, devtmpfs, devpts, mqueue, cgroup, cgroup2");
	UNIT_ASSERT_EQ(check_supported(with(PROC, "'mounts': [{'destination': '/data'}]")),
		       -EINVAL);
	UNIT_ASSERT_STREQ(err.msg, "config.json: mounts[0].type: missing (petrel mounts proc, "
				   "sysfs, tmpfs, devtmpfs, devpts, mqueue, cgroup, cgroup2)");
}

UNIT_TEST(test_supported_refuses_joining_host_namespaces_but_network)
{
	UNIT_ASSERT_EQ(check_supported(with(PROC, "'linux': {'namespaces': [{'type': 'network', "
						  "'path': '/run/netns/x'}, {'type': 'ipc', "
						  "'path': '/proc/42/ns/ipc'}]}")),
		       -ENOTSUP);
	UNIT_ASSERT_STREQ(err.msg, "config.json: linux.namespaces[1].path: joining the existing "
				   "ipc namespace \"/proc/42/ns/ipc\" is not supported (the "
				   "container runs in its own VM)");
	UNIT_ASSERT_EQ(check_supported(with(PROC, "'linux': {'seccomp': {'defaultAction': "
						  "'SCMP_ACT_NOTIFY', 'listenerPath': "
						  "'/run/agent.sock'}}")),
		       -ENOTSUP);
	UNIT_ASSERT_STREQ(err.msg, "config.json: linux.seccomp.listenerPath: \"/run/agent.sock\": "
				   "seccomp notifications cannot leave the VM; not supported");
}

/* ---- state ---- */

static void fill_state(struct oci_state *st)
{
	memset(st, 0, sizeof(*st));
	st->oci_version = strdup("1.1.0");
	st->id = strdup("c1");
	st->status = OCI_STATUS_RUNNING;
	st->pid = 4242;
	st->bundle = strdup("/run/bundles/c1");
	st->rootfs = strdup("/run/bundles/c1/rootfs");
	st->created = (struct timespec){1714557600, 500000000};
	st->annotations.n = 1;
	st->annotations.items = calloc(1, sizeof(struct oci_kv));
	st->annotations.items[0].key = strdup("org.example/\"q\"");
	st->annotations.items[0].value = strdup("v\n1");
	st->has_petrel = true;
	st->petrel.vmm_pid = 4242;
	st->petrel.vmm_start_time = 123456789012ULL;
	st->petrel.rootfs_image = strdup("/var/lib/petrel/c1/rootfs.img");
	st->petrel.qmp_socket = strdup("/run/petrel/c1/qmp.sock");
	st->petrel.netns = strdup("/run/netns/cni-1");
	st->petrel.vsock_cid = 3;
	st->petrel.vmm_started = (struct timespec){1714557601, 7};
	st->petrel.extra.n = 1;
	st->petrel.extra.items = calloc(1, sizeof(struct oci_kv));
	st->petrel.extra.items[0].key = strdup("tap");
	st->petrel.extra.items[0].value = strdup("ptap0");
}

static const char state_public[] = "{\n"
				   "  \"ociVersion\": \"1.1.0\",\n"
				   "  \"id\": \"c1\",\n"
				   "  \"pid\": 4242,\n"
				   "  \"status\": \"running\",\n"
				   "  \"bundle\": \"/run/bundles/c1\",\n"
				   "  \"rootfs\": \"/run/bundles/c1/rootfs\",\n"
				   "  \"created\": \"2024-05-01T10:00:00.5Z\",\n"
				   "  \"owner\": \"\",\n"
				   "  \"annotations\": {\n"
				   "    \"org.example/\\\"q\\\"\": \"v\\n1\"\n"
				   "  }\n"
				   "}\n";

UNIT_TEST(test_state_writes_runc_state_shape)
{
	struct oci_state *st = calloc(1, sizeof(*st));
	UNIT_ASSERT(st);
	fill_state(st);
	char *json = NULL;
	size_t len = 0;
	int r = oci_state_to_json(st, &json, &len, &err);
	oci_state_free(st);
	bool same = json && strcmp(json, state_public) == 0 && len == strlen(state_public);
	if (!same && json)
		snprintf(err.msg, sizeof(err.msg), "%s", json);
	free(json);
	UNIT_ASSERT_EQ(r, 0);
	if (!same)
		UNIT_FAIL("got:\n%s", err.msg);
}

UNIT_TEST(test_state_round_trips_with_petrel_fields)
{
	struct oci_state *st = calloc(1, sizeof(*st));
	UNIT_ASSERT(st);
	fill_state(st);
	char *json = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	int r = oci_state_to_json_stored(st, &json, &len, &err);
	oci_state_free(st);
	UNIT_ASSERT_EQ(r, 0);

	struct oci_state *back = NULL;
	r = oci_state_parse(json, len, &back, &err);
	if (r)
		free(json);
	if (r)
		UNIT_FAIL("parse: %s", err.msg);
	int fail = 0;
	fail |=
	    strcmp(back->id, "c1") != 0 || back->status != OCI_STATUS_RUNNING || back->pid != 4242;
	fail |= strcmp(back->bundle, "/run/bundles/c1") != 0 || !back->rootfs || !back->owner;
	fail |= back->created.tv_sec != 1714557600 || back->created.tv_nsec != 500000000;
	fail |= back->annotations.n != 1 || strcmp(back->annotations.items[0].value, "v\n1") != 0;
	fail |= !back->has_petrel || back->petrel.vmm_start_time != 123456789012ULL;
	fail |= back->petrel.vmm_pid != 4242 || back->petrel.vsock_cid != 3;
	fail |= !back->petrel.rootfs_image || !back->petrel.qmp_socket || back->petrel.cgroup_path;
	fail |=
	    back->petrel.vmm_started.tv_sec != 1714557601 || back->petrel.vmm_started.tv_nsec != 7;
	fail |=
	    back->petrel.extra.n != 1 || strcmp(back->petrel.extra.items[0].value, "ptap0") != 0;
	r = oci_state_to_json_stored(back, &again, &len2, &err);
	oci_state_free(back);
	bool same = r == 0 && len == len2 && strcmp(json, again) == 0;
	bool has_petrel = strstr(json, "\"petrel\": {") != NULL;
	free(json);
	free(again);
	UNIT_ASSERT(!fail);
	UNIT_ASSERT(same);
	UNIT_ASSERT(has_petrel);
}

UNIT_TEST(test_state_parse_reports_bad_fields)
{
	struct oci_state *st = NULL;
	const char *bad_status = "{\"ociVersion\": \"1.1.0\", \"id\": \"c\", \"status\": "
				 "\"zombie\", \"pid\": 1, \"bundle\": \"/b\"}";
	UNIT_ASSERT(oci_state_parse(bad_status, strlen(bad_status), &st, &err) < 0 && !st);
	UNIT_ASSERT_STREQ(err.msg, "state.json: status: unknown status \"zombie\"; allowed: "
				   "creating, created, running, paused, stopped");
	const char *no_pid = "{\"ociVersion\": \"1.1.0\", \"id\": \"c\", \"status\": "
			     "\"running\", \"bundle\": \"/b\"}";
	UNIT_ASSERT(oci_state_parse(no_pid, strlen(no_pid), &st, &err) < 0);
	UNIT_ASSERT_STREQ(err.msg, "state.json: pid: missing (required when the status is "
				   "created, running or paused)");
	const char *bad_time =
	    "{\"ociVersion\": \"1.1.0\", \"id\": \"c\", \"status\": "
	    "\"stopped\", \"bundle\": \"/b\", \"created\": \"2024-02-30T00:00:00Z\"}";
	UNIT_ASSERT(oci_state_parse(bad_time, strlen(bad_time), &st, &err) < 0);
	UNIT_ASSERT_STREQ(err.msg,
			  "state.json: created: \"2024-02-30T00:00:00Z\" is not an RFC 3339 time");
	const char *bad_petrel = "{\"ociVersion\": \"1.1.0\", \"id\": \"c\", \"status\": "
				 "\"stopped\", \"bundle\": \"/b\", \"petrel\": {\"vmmPid\": -3}}";
	UNIT_ASSERT(oci_state_parse(bad_petrel, strlen(bad_petrel), &st, &err) < 0);
	UNIT_ASSERT_STREQ(err.msg, "state.json: petrel.vmmPid: -3 is out of range (0..2147483647)");
	const char *stopped = "{\"ociVersion\": \"1.1.0\", \"id\": \"c\", \"status\": "
			      "\"stopped\", \"bundle\": \"/b\", \"unknown\": 1}";
	UNIT_ASSERT_EQ(oci_state_parse(stopped, strlen(stopped), &st, &err), 0);
	UNIT_ASSERT(st && st->pid == 0 && !st->has_petrel);
	oci_state_free(st);
}

UNIT_TEST(test_state_refuses_non_utf8_paths)
{
	struct oci_state st = {
	    .id = "c1",
	    .status = OCI_STATUS_STOPPED,
	    .bundle = "/b\xff",
	};
	char *json = NULL;
	int r = oci_state_to_json(&st, &json, NULL, &err);
	UNIT_ASSERT_EQ(r, -EINVAL);
	UNIT_ASSERT(json == NULL);
	UNIT_ASSERT_STREQ(err.msg, "state.json: bundle: not valid UTF-8");
}

UNIT_TEST(test_time_matches_go_rfc3339nano)
{
	char buf[48];
	struct timespec ts = {0, 0};
	UNIT_ASSERT_EQ(oci_time_format(&(struct timespec){1714557600, 0}, buf, sizeof(buf)), 0);
	UNIT_ASSERT_STREQ(buf, "2024-05-01T10:00:00Z");
	UNIT_ASSERT_EQ(oci_time_format(&(struct timespec){1714557600, 120}, buf, sizeof(buf)), 0);
	UNIT_ASSERT_STREQ(buf, "2024-05-01T10:00:00.00000012Z");
	UNIT_ASSERT_EQ(oci_time_format(&(struct timespec){0, 1000000000}, buf, sizeof(buf)),
		       -EINVAL);
	UNIT_ASSERT_EQ(oci_time_format(&(struct timespec){1714557600, 0}, buf, 10), -ERANGE);
	UNIT_ASSERT_EQ(oci_time_parse("2024-05-01T12:00:00.5+02:00", &ts), 0);
	UNIT_ASSERT_EQ(ts.tv_sec, 1714557600);
	UNIT_ASSERT_EQ(ts.tv_nsec, 500000000);
	UNIT_ASSERT_EQ(oci_time_parse("2024-05-01T10:00:00.1234567891Z", &ts), 0);
	UNIT_ASSERT_EQ(ts.tv_nsec, 123456789);
	UNIT_ASSERT_EQ(oci_time_parse("2024-05-01 10:00:00Z", &ts), -EINVAL);
	UNIT_ASSERT_EQ(oci_time_parse("2024-05-01T10:00:00", &ts), -EINVAL);
	UNIT_ASSERT_EQ(oci_time_parse("2024-05-01T10:00:00.Z", &ts), -EINVAL);
	UNIT_ASSERT_EQ(oci_time_parse("2024-13-01T10:00:00Z", &ts), -EINVAL);
	UNIT_ASSERT_EQ(oci_time_parse("2024-05-01T10:00:00Zjunk", &ts), -EINVAL);
}

/* unit.h's va_list use trips a clang 14 analyzer false positive here. */
// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
UNIT_MAIN("oci")
