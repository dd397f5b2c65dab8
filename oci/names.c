/*
 * Name <-> number tables of the runtime-spec: rlimits, capabilities (through
 * libcap, so that the list follows the library), namespaces, hooks, states.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>

#include "common/cleanup.h"
#include "oci/names.h"
#include "oci/oci.h"

/* Sorted by name: the order of the "allowed:" list in messages. */
static const struct {
	const char *name;
	int resource;
} rlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

int oci_rlimit_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimits); i++)
		if (strcmp(rlimits[i].name, name) == 0)
			return rlimits[i].resource;
	return -EINVAL;
}

const char *oci_rlimit_name(int resource)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimits); i++)
		if (rlimits[i].resource == resource)
			return rlimits[i].name;
	return NULL;
}

unsigned oci_rlimit_index(int resource)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimits); i++)
		if (rlimits[i].resource == resource)
			return (unsigned)i;
	return 0;
}

/*
 * libcap's cap_from_name() is lenient: any case, surrounding blanks, bare
 * numbers. The spec spells capabilities "CAP_" + upper case, so check the
 * spelling first, then let libcap map it, then make sure the number maps
 * back to the same name.
 */
int oci_cap_from_name(const char *name)
{
	if (strncmp(name, "CAP_", 4) != 0 || !name[4])
		return -EINVAL;
	for (const char *p = name + 4; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return -EINVAL;
	cap_value_t cap;
	if (cap_from_name(name, &cap) != 0 || cap < 0 || cap > 63)
		return -EINVAL;
	char back[64];
	if (oci_cap_name(cap, back, sizeof(back)) != 0 || strcmp(back, name) != 0)
		return -EINVAL;
	return cap;
}

int oci_cap_name(int cap, char *buf, size_t size)
{
	if (cap < 0 || cap > 63)
		return -EINVAL;
	char *name = cap_to_name(cap);
	if (!name)
		return -ENOMEM;
	/* libcap prints numbers it has no name for. */
	if (strncmp(name, "cap_", 4) != 0) {
		cap_free(name);
		return -EINVAL;
	}
	size_t len = strlen(name);
	if (len + 1 > size) {
		cap_free(name);
		return -ERANGE;
	}
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];
		buf[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
	}
	cap_free(name);
	return 0;
}

static const char *const ns_names[OCI_NS__COUNT] = {
    [OCI_NS_PID] = "pid",	[OCI_NS_NETWORK] = "network", [OCI_NS_MOUNT] = "mount",
    [OCI_NS_IPC] = "ipc",	[OCI_NS_UTS] = "uts",	      [OCI_NS_USER] = "user",
    [OCI_NS_CGROUP] = "cgroup", [OCI_NS_TIME] = "time",
};

const char *oci_ns_type_name(enum oci_ns_type type)
{
	if ((unsigned)type >= OCI_NS__COUNT)
		return NULL;
	return ns_names[type];
}

int oci_ns_type_from_name(const char *name)
{
	for (unsigned i = 0; i < OCI_NS__COUNT; i++)
		if (strcmp(ns_names[i], name) == 0)
			return (int)i;
	return -EINVAL;
}

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int oci_ns_clone_flag(enum oci_ns_type type)
{
	static const int flags[OCI_NS__COUNT] = {
	    [OCI_NS_PID] = CLONE_NEWPID,       [OCI_NS_NETWORK] = CLONE_NEWNET,
	    [OCI_NS_MOUNT] = CLONE_NEWNS,      [OCI_NS_IPC] = CLONE_NEWIPC,
	    [OCI_NS_UTS] = CLONE_NEWUTS,       [OCI_NS_USER] = CLONE_NEWUSER,
	    [OCI_NS_CGROUP] = CLONE_NEWCGROUP, [OCI_NS_TIME] = CLONE_NEWTIME,
	};
	if ((unsigned)type >= OCI_NS__COUNT)
		return 0;
	return flags[type];
}

static const char *const hook_names[OCI_HOOK__COUNT] = {
    [OCI_HOOK_PRESTART] = "prestart",
    [OCI_HOOK_CREATE_RUNTIME] = "createRuntime",
    [OCI_HOOK_CREATE_CONTAINER] = "createContainer",
    [OCI_HOOK_START_CONTAINER] = "startContainer",
    [OCI_HOOK_POSTSTART] = "poststart",
    [OCI_HOOK_POSTSTOP] = "poststop",
};

const char *oci_hook_kind_name(enum oci_hook_kind kind)
{
	if ((unsigned)kind >= OCI_HOOK__COUNT)
		return NULL;
	return hook_names[kind];
}

static const char *const status_names[OCI_STATUS__COUNT] = {
    [OCI_STATUS_CREATING] = "creating", [OCI_STATUS_CREATED] = "created",
    [OCI_STATUS_RUNNING] = "running",	[OCI_STATUS_PAUSED] = "paused",
    [OCI_STATUS_STOPPED] = "stopped",
};

const char *oci_status_name(enum oci_status status)
{
	if ((unsigned)status >= OCI_STATUS__COUNT)
		return NULL;
	return status_names[status];
}

int oci_status_from_name(const char *name)
{
	for (unsigned i = 0; i < OCI_STATUS__COUNT; i++)
		if (strcmp(status_names[i], name) == 0)
			return (int)i;
	return -EINVAL;
}

/* ---- seccomp names (runtime-spec config-linux.md, "Seccomp") ---- */

static const char *const seccomp_actions[] = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",	       "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",	       "SCMP_ACT_NOTIFY",
};

static const char *const seccomp_arches[] = {
    "SCMP_ARCH_X86",	 "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",		"SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",	"SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",	 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",	 "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",	"SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",	 "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",	"SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",	 "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB",
};

static const char *const seccomp_flags[] = {
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
};

static const char *const seccomp_ops[] = {
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",	"SCMP_CMP_EQ",
    "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};

/* runc also accepts the recursive forms. */
static const char *const propagations[] = {
    "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
};

#define TABLE(list) ((struct name_list){list, ARRAY_SIZE(list)})
struct name_list {
	const char *const *names;
	size_t n;
};

static struct name_list table(enum oci_name_table t)
{
	switch (t) {
	case OCI_NAMES_RLIMIT:
		break; /* a table of pairs, see name_at() */
	case OCI_NAMES_NAMESPACE:
		return TABLE(ns_names);
	case OCI_NAMES_SECCOMP_ACTION:
		return TABLE(seccomp_actions);
	case OCI_NAMES_SECCOMP_ARCH:
		return TABLE(seccomp_arches);
	case OCI_NAMES_SECCOMP_FLAG:
		return TABLE(seccomp_flags);
	case OCI_NAMES_SECCOMP_OP:
		return TABLE(seccomp_ops);
	case OCI_NAMES_ROOTFS_PROPAGATION:
		return TABLE(propagations);
	}
	return (struct name_list){NULL, 0};
}

static size_t name_count(enum oci_name_table t)
{
	return t == OCI_NAMES_RLIMIT ? ARRAY_SIZE(rlimits) : table(t).n;
}

static const char *name_at(enum oci_name_table t, size_t i)
{
	return t == OCI_NAMES_RLIMIT ? rlimits[i].name : table(t).names[i];
}

bool oci_name_known(enum oci_name_table t, const char *s)
{
	for (size_t i = 0; i < name_count(t); i++)
		if (strcmp(name_at(t, i), s) == 0)
			return true;
	return false;
}

const char *oci_names_allowed(enum oci_name_table t, char *buf, size_t size)
{
	size_t n = name_count(t), o = 0;
	if (!size)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < n && o < size; i++) {
		int w = snprintf(buf + o, size - o, "%s%s", i ? ", " : "", name_at(t, i));
		if (w < 0)
			break;
		o += (size_t)w;
	}
	return buf;
}
