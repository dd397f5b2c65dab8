/*
 * An OCI bundle's config.json (runtime-spec 1.0.2 / 1.1) as typed structs,
 * and the runtime's state document (`petrel state`, state.json).
 *
 * oci_config_parse() checks JSON syntax, JSON types and the values the spec
 * constrains, and reports the first problem on one line with its JSON path:
 *   config.json: process.cwd: "tmp" is not an absolute path
 * It has no side effects. What petrel itself cannot run yet (host bind
 * mounts, joining host namespaces, ...) is a separate check,
 * oci_config_check_supported(), that `petrel create` calls after parsing.
 * See docs/oci.md.
 *
 * Conventions: a JSON null is the same as an absent key. Optional scalars
 * come with a `has_*` flag or as an oci_opt_* pair; optional strings are NULL
 * when absent. Every pointer is owned by the struct and freed by
 * oci_config_free() / oci_state_free().
 */
#ifndef PETREL_OCI_H
#define PETREL_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

/* config.json and state.json are refused above this size. */
#define OCI_JSON_MAX_SIZE (64u << 20)
/* Objects and arrays nested deeper than this are refused (the spec needs 5). */
#define OCI_JSON_MAX_DEPTH 64

/* An array of strings: v[0..n-1], then NULL (ready for execve). v is NULL
 * when the key was absent; n == 0 and v == {NULL} for an empty array. */
struct oci_strv {
	size_t n;
	char **v;
};

/* A JSON object of strings, in document order (annotations, sysctl). */
struct oci_kv {
	char *key;
	char *value;
};
struct oci_kv_list {
	size_t n;
	struct oci_kv *items;
};

struct oci_opt_i64 {
	bool set;
	int64_t value;
};
struct oci_opt_u64 {
	bool set;
	uint64_t value;
};

struct oci_root {
	char *path; /* required; relative paths are relative to the bundle */
	bool readonly;
};

struct oci_user {
	uint32_t uid, gid; /* 0 when absent, like runc */
	bool has_umask;
	uint32_t umask;
	size_t n_additional_gids;
	uint32_t *additional_gids;
};

/* One capability set: the names as written ("CAP_CHOWN") and as a mask of
 * capability numbers (bit n = capability n). */
struct oci_capset {
	struct oci_strv names;
	uint64_t mask;
};

struct oci_capabilities {
	bool present;
	struct oci_capset bounding, effective, inheritable, permitted, ambient;
};

struct oci_rlimit {
	int resource;	  /* RLIMIT_* from <sys/resource.h> */
	const char *name; /* static, "RLIMIT_NOFILE" */
	uint64_t hard, soft;
};

struct oci_process {
	bool terminal;
	bool has_console_size;
	uint32_t console_height, console_width;
	struct oci_user user;
	struct oci_strv args; /* at least one element */
	struct oci_strv env;  /* every entry is NAME=VALUE */
	char *cwd;	      /* absolute */
	struct oci_capabilities capabilities;
	size_t n_rlimits; /* types are unique */
	struct oci_rlimit *rlimits;
	bool no_new_privileges;
	char *apparmor_profile;
	bool has_oom_score_adj;
	int oom_score_adj; /* -1000..1000 */
	char *selinux_label;
};

struct oci_mount {
	char *destination; /* absolute */
	char *type;	   /* NULL when absent */
	char *source;	   /* NULL when absent */
	struct oci_strv options;
};

/* The order in which the runtime-spec lists them. */
enum oci_hook_kind {
	OCI_HOOK_PRESTART, /* deprecated by the spec, still honoured by runc */
	OCI_HOOK_CREATE_RUNTIME,
	OCI_HOOK_CREATE_CONTAINER,
	OCI_HOOK_START_CONTAINER,
	OCI_HOOK_POSTSTART,
	OCI_HOOK_POSTSTOP,
	OCI_HOOK__COUNT
};

struct oci_hook {
	char *path; /* absolute */
	struct oci_strv args;
	struct oci_strv env;
	bool has_timeout;
	int timeout; /* seconds, > 0 */
};

struct oci_hook_list {
	size_t n;
	struct oci_hook *items;
};

enum oci_ns_type {
	OCI_NS_PID,
	OCI_NS_NETWORK,
	OCI_NS_MOUNT,
	OCI_NS_IPC,
	OCI_NS_UTS,
	OCI_NS_USER,
	OCI_NS_CGROUP,
	OCI_NS_TIME,
	OCI_NS__COUNT
};

struct oci_namespace {
	enum oci_ns_type type; /* unique within linux.namespaces */
	char *path;	       /* NULL: a new namespace */
};

struct oci_id_mapping {
	uint32_t container_id, host_id, size;
};

/* linux.resources.devices: the device cgroup allow/deny list. */
struct oci_device_rule {
	bool allow;
	char type; /* 'a', 'b', 'c', or 0 when absent (= all) */
	struct oci_opt_i64 major, minor;
	char *access; /* subset of "rwm", NULL when absent */
};

struct oci_hugepage_limit {
	char *page_size; /* "2MB" */
	uint64_t limit;
};

struct oci_resources {
	struct {
		struct oci_opt_i64 limit, reservation, swap; /* bytes, -1 = unlimited */
		struct oci_opt_u64 swappiness;
		bool disable_oom_killer;
	} memory;
	struct {
		struct oci_opt_u64 shares, period;
		struct oci_opt_i64 quota;
		char *cpus, *mems; /* cpuset lists, NULL when absent */
	} cpu;
	struct {
		struct oci_opt_i64 limit;
	} pids;
	size_t n_devices;
	struct oci_device_rule *devices;
	size_t n_hugepage_limits;
	struct oci_hugepage_limit *hugepage_limits;
};

/* linux.devices: device nodes to create in the container. */
struct oci_linux_device {
	char type;	      /* 'c', 'b', 'u' or 'p' */
	char *path;	      /* absolute */
	int64_t major, minor; /* required unless type is 'p' */
	bool has_file_mode, has_uid, has_gid;
	uint32_t file_mode, uid, gid;
};

/* linux.seccomp, kept close to the JSON: action, architecture and operator
 * names are checked against the spec's lists but stay strings; syscall
 * names are not checked (they depend on the architecture). */
struct oci_seccomp_arg {
	uint32_t index;
	uint64_t value, value_two;
	char *op; /* "SCMP_CMP_EQ" */
};

struct oci_seccomp_syscall {
	struct oci_strv names;
	char *action; /* "SCMP_ACT_ERRNO" */
	bool has_errno_ret;
	uint32_t errno_ret;
	size_t n_args;
	struct oci_seccomp_arg *args;
};

struct oci_seccomp {
	char *default_action;
	bool has_default_errno_ret;
	uint32_t default_errno_ret;
	struct oci_strv architectures; /* "SCMP_ARCH_X86_64" */
	struct oci_strv flags;	       /* "SECCOMP_FILTER_FLAG_LOG" */
	char *listener_path, *listener_metadata;
	size_t n_syscalls;
	struct oci_seccomp_syscall *syscalls;
};

struct oci_linux {
	bool present;
	size_t n_namespaces;
	struct oci_namespace *namespaces;
	size_t n_uid_mappings, n_gid_mappings;
	struct oci_id_mapping *uid_mappings, *gid_mappings;
	struct oci_kv_list sysctl;
	bool has_resources;
	struct oci_resources resources;
	char *cgroups_path;
	struct oci_strv masked_paths, readonly_paths; /* absolute */
	size_t n_devices;
	struct oci_linux_device *devices;
	struct oci_seccomp *seccomp; /* NULL when absent */
	char *rootfs_propagation;    /* "private", "rslave", ... */
	char *mount_label;
};

struct oci_config {
	char *oci_version; /* "1.x..." */
	struct oci_root root;
	struct oci_process process; /* required: petrel only creates containers to start them */
	char *hostname, *domainname;
	size_t n_mounts;
	struct oci_mount *mounts;
	struct oci_hook_list hooks[OCI_HOOK__COUNT];
	struct oci_kv_list annotations;
	/* Named with an underscore because GNU C predefines `linux` as 1. */
	struct oci_linux linux_;
};

/* Reads and parses <bundle_dir>/config.json. */
int oci_config_load(const char *bundle_dir, struct oci_config **out, struct perr *err);
/* Parses len bytes of JSON (no NUL terminator needed). */
int oci_config_parse(const char *json, size_t len, struct oci_config **out, struct perr *err);
void oci_config_free(struct oci_config *cfg);

/*
 * What petrel refuses in a valid config because a container runs in its own
 * VM: bind mounts (no shared filesystem yet), filesystems that need a host
 * device, joining host namespaces other than network, seccomp listeners.
 * Messages have the same "config.json: path: ..." shape. `petrel create`
 * calls it after oci_config_load().
 */
int oci_config_check_supported(const struct oci_config *cfg, struct perr *err);

/* The value of an annotation, or NULL. */
const char *oci_annotation(const struct oci_config *cfg, const char *key);
/* The namespace entry of that type, or NULL when the container has none. */
const struct oci_namespace *oci_find_namespace(const struct oci_config *cfg, enum oci_ns_type type);
/* "pid", "network", ...; NULL when out of range. */
const char *oci_ns_type_name(enum oci_ns_type type);
/* The type for a spec name, or -EINVAL. */
int oci_ns_type_from_name(const char *name);
/* The CLONE_NEW* flag of a namespace type (0 when out of range). */
int oci_ns_clone_flag(enum oci_ns_type type);

/* The hooks of one kind (never NULL; n == 0 when there are none). */
const struct oci_hook_list *oci_hooks(const struct oci_config *cfg, enum oci_hook_kind kind);
/* "prestart", "createRuntime", ... as in config.json; NULL when out of range. */
const char *oci_hook_kind_name(enum oci_hook_kind kind);
#define oci_for_each_hook(cfg, kind, hook)                              \
	for (const struct oci_hook *hook = oci_hooks(cfg, kind)->items; \
	     hook && hook < oci_hooks(cfg, kind)->items + oci_hooks(cfg, kind)->n; hook++)

/* "RLIMIT_NOFILE" <-> RLIMIT_NOFILE. from_name returns -EINVAL for unknown
 * names; name returns NULL for unknown resources. */
int oci_rlimit_from_name(const char *name);
const char *oci_rlimit_name(int resource);

/* "CAP_SYS_ADMIN" <-> CAP_SYS_ADMIN, using the capabilities libcap knows.
 * from_name wants the spec's exact spelling (upper case, "CAP_" prefix) and
 * returns -EINVAL otherwise. oci_cap_name writes the spec spelling into buf
 * and returns 0, -EINVAL for an unknown capability, -ERANGE when buf is
 * too small. */
int oci_cap_from_name(const char *name);
int oci_cap_name(int cap, char *buf, size_t size);

/*
 * The runtime's state. oci_state_to_json() writes the shape `runc state`
 * prints (runtime-spec "State" plus runc's rootfs, created, owner):
 *   {"ociVersion": "1.1.0", "id": "c1", "pid": 4242, "status": "running",
 *    "bundle": "/b", "rootfs": "/b/rootfs", "created": "2024-05-01T10:00:00.5Z",
 *    "owner": "", "annotations": {...}}
 * oci_state_to_json_stored() adds a "petrel" object with the runtime's own
 * fields (below) for state.json. oci_state_parse() reads either shape.
 */
enum oci_status {
	OCI_STATUS_CREATING,
	OCI_STATUS_CREATED,
	OCI_STATUS_RUNNING,
	OCI_STATUS_PAUSED, /* runc's extension; petrel pauses the VM's vCPUs */
	OCI_STATUS_STOPPED,
	OCI_STATUS__COUNT
};

/* petrel-private: what `petrel` needs to find and trust its VMM again. */
struct oci_state_petrel {
	int vmm_pid;		     /* 0 when none */
	uint64_t vmm_start_time;     /* /proc/<pid>/stat field 22 (clock ticks since boot);
				      * a pid whose start time differs was reused */
	char *rootfs_image;	     /* disk image built from root.path */
	char *qmp_socket;	     /* the VMM's QMP socket */
	char *console_socket;	     /* --console-socket given to create, if any */
	char *netns;		     /* network namespace path the tap lives in */
	char *cgroup_path;	     /* cgroup the VMM was placed in */
	uint32_t vsock_cid;	     /* guest CID, 0 when none */
	struct timespec vmm_started; /* wall clock when the VMM was started */
	struct oci_kv_list extra;    /* anything else, string -> string */
};

struct oci_state {
	char *oci_version; /* NULL: written as "1.1.0" */
	char *id;
	enum oci_status status;
	int pid; /* the container's process as seen from the host: the VMM */
	char *bundle;
	char *rootfs;		 /* NULL: omitted */
	struct timespec created; /* tv_sec == 0 && tv_nsec == 0: omitted */
	char *owner;		 /* NULL: written as "" like runc */
	struct oci_kv_list annotations;
	bool has_petrel;
	struct oci_state_petrel petrel;
};

/* "created", "running", ...; NULL when out of range. */
const char *oci_status_name(enum oci_status status);
int oci_status_from_name(const char *name);

/* *out is a NUL-terminated JSON document ending in '\n'; free() it. */
int oci_state_to_json(const struct oci_state *st, char **out, size_t *len, struct perr *err);
int oci_state_to_json_stored(const struct oci_state *st, char **out, size_t *len, struct perr *err);
/* Errors read "state.json: path: ...". */
int oci_state_parse(const char *json, size_t len, struct oci_state **out, struct perr *err);
/* Frees st and every string in it: for states from oci_state_parse() or
 * built the same way (calloc'd struct, malloc'd members). */
void oci_state_free(struct oci_state *st);

/* RFC 3339 with nanoseconds, UTC, as Go's time.RFC3339Nano writes it
 * ("2024-05-01T10:00:00.5Z"): returns 0 or -ERANGE / -EINVAL. */
int oci_time_format(const struct timespec *ts, char *buf, size_t size);
int oci_time_parse(const char *s, struct timespec *ts);

#endif
