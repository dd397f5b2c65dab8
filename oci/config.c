/*
 * config.json -> struct oci_config (runtime-spec 1.0.2 / 1.1, config.md and
 * config-linux.md). Lenient like runc about keys it does not know, strict
 * about the types and values of the keys it reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "oci/json.h"
#include "oci/names.h"
#include "oci/oci.h"

#define CONFIG_FILE "config.json"
/* sethostname(2) and setdomainname(2) refuse longer names. */
#define OCI_HOSTNAME_MAX 64

/* ---- small value checks, run with the value's path pushed ---- */

static int check_absolute(struct oci_json *j, const char *s)
{
	char q[OCI_QUOTE_MAX];
	if (s[0] != '/')
		return oci_json_fail(j, -EINVAL, "%s is not an absolute path",
				     oci_json_quote(s, q, sizeof(q)));
	return 0;
}

static int check_env(struct oci_json *j, const char *s)
{
	char q[OCI_QUOTE_MAX];
	const char *eq = strchr(s, '=');
	if (!eq || eq == s)
		return oci_json_fail(j, -EINVAL, "%s is not NAME=VALUE",
				     oci_json_quote(s, q, sizeof(q)));
	return 0;
}

static int check_capability(struct oci_json *j, const char *s)
{
	char q[OCI_QUOTE_MAX];
	if (oci_cap_from_name(s) < 0)
		return oci_json_fail(j, -EINVAL, "unknown capability %s",
				     oci_json_quote(s, q, sizeof(q)));
	return 0;
}

static int check_name(struct oci_json *j, enum oci_name_table t, const char *what, const char *s)
{
	char q[OCI_QUOTE_MAX], allowed[OCI_ALLOWED_MAX];
	if (oci_name_known(t, s))
		return 0;
	return oci_json_fail(j, -EINVAL, "unknown %s %s; allowed: %s", what,
			     oci_json_quote(s, q, sizeof(q)),
			     oci_names_allowed(t, allowed, sizeof(allowed)));
}

static int check_seccomp_arch(struct oci_json *j, const char *s)
{
	return check_name(j, OCI_NAMES_SECCOMP_ARCH, "architecture", s);
}

static int check_seccomp_flag(struct oci_json *j, const char *s)
{
	return check_name(j, OCI_NAMES_SECCOMP_FLAG, "flag", s);
}

static int check_not_empty(struct oci_json *j, const char *s)
{
	if (!*s)
		return oci_json_fail(j, -EINVAL, "must not be empty");
	return 0;
}

/* ---- structure helpers ---- */

/*
 * Looks key up in obj and checks its type. When it is there, its key is
 * pushed and *saved says where to pop back to; *v is NULL when it is absent.
 */
static int enter(struct oci_json *j, yajl_val obj, const char *key, yajl_type type, yajl_val *v,
		 size_t *saved)
{
	int r = oci_json_field(j, obj, key, v);
	if (r || !*v)
		return r;
	*saved = oci_json_push_key(j, key);
	r = oci_json_expect(j, *v, type);
	if (r) {
		oci_json_pop(j, *saved);
		*v = NULL;
	}
	return r;
}

/* A required string field, read with its path; "missing" when absent. */
static int get_required_string(struct oci_json *j, yajl_val obj, const char *key, char **out,
			       int (*check)(struct oci_json *j, const char *s))
{
	int r = oci_json_get_string(j, obj, key, out);
	if (r)
		return r;
	if (!*out)
		return oci_json_missing(j, key, NULL);
	if (check) {
		size_t saved = oci_json_push_key(j, key);
		r = check(j, *out);
		oci_json_pop(j, saved);
	}
	return r;
}

static int get_optional_string(struct oci_json *j, yajl_val obj, const char *key, char **out,
			       int (*check)(struct oci_json *j, const char *s))
{
	int r = oci_json_get_string(j, obj, key, out);
	if (r || !*out || !check)
		return r;
	size_t saved = oci_json_push_key(j, key);
	r = check(j, *out);
	oci_json_pop(j, saved);
	return r;
}

static int get_required_u32(struct oci_json *j, yajl_val obj, const char *key, uint32_t *out)
{
	bool present = false;
	int r = oci_json_get_u32(j, obj, key, out, &present);
	if (!r && !present)
		r = oci_json_missing(j, key, NULL);
	return r;
}

static int get_required_u64(struct oci_json *j, yajl_val obj, const char *key, uint64_t *out)
{
	struct oci_opt_u64 v = {0};
	int r = oci_json_get_opt_u64(j, obj, key, &v);
	if (r)
		return r;
	if (!v.set)
		return oci_json_missing(j, key, NULL);
	*out = v.value;
	return 0;
}

typedef int (*element_parser)(struct oci_json *j, yajl_val v, void *element);

/*
 * key: an array of objects, each read by parse into a zeroed element of
 * size bytes. *n counts every element that parse has touched, so that the
 * free functions see partly filled ones after an error.
 */
static int get_object_array(struct oci_json *j, yajl_val obj, const char *key, size_t size,
			    void **items, size_t *n, element_parser parse)
{
	yajl_val arr;
	size_t saved;
	int r = enter(j, obj, key, yajl_t_array, &arr, &saved);
	if (r || !arr)
		return r;
	size_t len = arr->u.array.len;
	if (len) {
		*items = calloc(len, size);
		if (!*items) {
			oci_json_pop(j, saved);
			return oci_json_oom(j);
		}
	}
	for (size_t i = 0; i < len && !r; i++) {
		size_t saved_i = oci_json_push_index(j, i);
		yajl_val el = arr->u.array.values[i];
		r = oci_json_expect(j, el, yajl_t_object);
		if (!r) {
			*n = i + 1;
			r = parse(j, el, (char *)*items + i * size);
		}
		oci_json_pop(j, saved_i);
	}
	oci_json_pop(j, saved);
	return r;
}

/* ---- root, ociVersion, hostname ---- */

static int check_oci_version(struct oci_json *j, const char *s)
{
	char q[OCI_QUOTE_MAX];
	if (strncmp(s, "1.", 2) != 0 || s[2] < '0' || s[2] > '9')
		return oci_json_fail(j, -EINVAL,
				     "%s is not supported (petrel reads runtime-spec 1.x)",
				     oci_json_quote(s, q, sizeof(q)));
	return 0;
}

static int check_hostname(struct oci_json *j, const char *s)
{
	char q[OCI_QUOTE_MAX];
	if (strlen(s) > OCI_HOSTNAME_MAX)
		return oci_json_fail(j, -EINVAL, "%s is longer than %d bytes",
				     oci_json_quote(s, q, sizeof(q)), OCI_HOSTNAME_MAX);
	return 0;
}

static int parse_root(struct oci_json *j, yajl_val top, struct oci_root *root)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, top, "root", yajl_t_object, &v, &saved);
	if (r)
		return r;
	if (!v)
		return oci_json_missing(j, "root", NULL);
	r = get_required_string(j, v, "path", &root->path, check_not_empty);
	if (!r)
		r = oci_json_get_bool(j, v, "readonly", &root->readonly);
	oci_json_pop(j, saved);
	return r;
}

/* ---- process ---- */

static int parse_console_size(struct oci_json *j, yajl_val proc, struct oci_process *p)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, proc, "consoleSize", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	uint32_t h = 0, w = 0;
	r = get_required_u32(j, v, "height", &h);
	if (!r)
		r = get_required_u32(j, v, "width", &w);
	/* struct winsize holds unsigned shorts. */
	if (!r && (h > 65535 || w > 65535))
		r = oci_json_fail(j, -ERANGE, "%ux%u is larger than 65535x65535", h, w);
	oci_json_pop(j, saved);
	if (r)
		return r;
	p->has_console_size = true;
	p->console_height = h;
	p->console_width = w;
	return 0;
}

static int parse_additional_gids(struct oci_json *j, yajl_val user, struct oci_user *u)
{
	yajl_val gids;
	size_t saved;
	int r = enter(j, user, "additionalGids", yajl_t_array, &gids, &saved);
	if (r || !gids)
		return r;
	size_t n = gids->u.array.len;
	u->additional_gids = calloc(n + 1, sizeof(*u->additional_gids));
	if (!u->additional_gids) {
		oci_json_pop(j, saved);
		return oci_json_oom(j);
	}
	for (size_t i = 0; i < n; i++) {
		size_t saved_i = oci_json_push_index(j, i);
		uint64_t gid = 0;
		r = oci_json_uint(j, gids->u.array.values[i], UINT32_MAX, &gid);
		oci_json_pop(j, saved_i);
		if (r)
			break;
		u->additional_gids[i] = (uint32_t)gid;
		u->n_additional_gids = i + 1;
	}
	oci_json_pop(j, saved);
	return r;
}

static int parse_user(struct oci_json *j, yajl_val proc, struct oci_user *u)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, proc, "user", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	r = oci_json_get_u32(j, v, "uid", &u->uid, NULL);
	if (!r)
		r = oci_json_get_u32(j, v, "gid", &u->gid, NULL);
	if (!r)
		r = oci_json_get_u32(j, v, "umask", &u->umask, &u->has_umask);
	if (!r && u->has_umask && u->umask > 0777) {
		size_t s = oci_json_push_key(j, "umask");
		r = oci_json_fail(j, -ERANGE, "%u (%#o) is out of range (0..0777)", u->umask,
				  u->umask);
		oci_json_pop(j, s);
	}

	if (!r)
		r = parse_additional_gids(j, v, u);
	oci_json_pop(j, saved);
	return r;
}

static int parse_capset(struct oci_json *j, yajl_val caps, const char *key, struct oci_capset *set)
{
	int r = oci_json_get_strv(j, caps, key, &set->names, check_capability);
	if (r)
		return r;
	for (size_t i = 0; i < set->names.n; i++)
		set->mask |= 1ULL << oci_cap_from_name(set->names.v[i]);
	return 0;
}

static int parse_capabilities(struct oci_json *j, yajl_val proc, struct oci_capabilities *c)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, proc, "capabilities", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	c->present = true;
	r = parse_capset(j, v, "bounding", &c->bounding);
	if (!r)
		r = parse_capset(j, v, "effective", &c->effective);
	if (!r)
		r = parse_capset(j, v, "inheritable", &c->inheritable);
	if (!r)
		r = parse_capset(j, v, "permitted", &c->permitted);
	if (!r)
		r = parse_capset(j, v, "ambient", &c->ambient);
	oci_json_pop(j, saved);
	return r;
}

static int parse_rlimit(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_rlimit *rl = element;
	autofree char *type = NULL;
	int r = get_required_string(j, v, "type", &type, NULL);
	if (r)
		return r;
	int resource = oci_rlimit_from_name(type);
	if (resource < 0) {
		size_t saved = oci_json_push_key(j, "type");
		r = check_name(j, OCI_NAMES_RLIMIT, "rlimit", type);
		oci_json_pop(j, saved);
		return r;
	}
	rl->resource = resource;
	rl->name = oci_rlimit_name(resource);
	r = get_required_u64(j, v, "hard", &rl->hard);
	if (!r)
		r = get_required_u64(j, v, "soft", &rl->soft);
	/* setrlimit(2) refuses it with EINVAL. */
	if (!r && rl->soft > rl->hard)
		r = oci_json_fail(j, -EINVAL, "soft limit %llu is above hard limit %llu",
				  (unsigned long long)rl->soft, (unsigned long long)rl->hard);
	return r;
}

static int check_rlimits_unique(struct oci_json *j, const struct oci_process *p)
{
	int first[32];
	for (size_t i = 0; i < ARRAY_SIZE(first); i++)
		first[i] = -1;
	for (size_t i = 0; i < p->n_rlimits; i++) {
		unsigned idx = oci_rlimit_index(p->rlimits[i].resource);
		if (first[idx] < 0) {
			first[idx] = (int)i;
			continue;
		}
		size_t saved = oci_json_push_key(j, "rlimits");
		oci_json_push_index(j, i);
		oci_json_push_key(j, "type");
		int r = oci_json_fail(j, -EINVAL, "duplicate rlimit \"%s\", already in [%d]",
				      p->rlimits[i].name, first[idx]);
		oci_json_pop(j, saved);
		return r;
	}
	return 0;
}

static int parse_args(struct oci_json *j, yajl_val proc, struct oci_strv *args)
{
	int r = oci_json_get_strv(j, proc, "args", args, NULL);
	if (r)
		return r;
	if (!args->v)
		return oci_json_missing(j, "args", NULL);
	size_t saved = oci_json_push_key(j, "args");
	if (args->n == 0) {
		r = oci_json_fail(j, -EINVAL, "must have at least one element");
	} else if (!args->v[0][0]) {
		oci_json_push_index(j, 0);
		r = oci_json_fail(j, -EINVAL, "the program to run must not be empty");
	}
	oci_json_pop(j, saved);
	return r;
}

static int parse_process(struct oci_json *j, yajl_val top, struct oci_process *p)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, top, "process", yajl_t_object, &v, &saved);
	if (r)
		return r;
	if (!v)
		return oci_json_missing(j, "process", "required when the container is started");

	r = oci_json_get_bool(j, v, "terminal", &p->terminal);
	if (!r)
		r = parse_console_size(j, v, p);
	if (!r)
		r = parse_user(j, v, &p->user);
	if (!r)
		r = parse_args(j, v, &p->args);
	if (!r)
		r = oci_json_get_strv(j, v, "env", &p->env, check_env);
	if (!r)
		r = get_required_string(j, v, "cwd", &p->cwd, check_absolute);
	if (!r)
		r = parse_capabilities(j, v, &p->capabilities);
	if (!r)
		r = get_object_array(j, v, "rlimits", sizeof(*p->rlimits), (void **)&p->rlimits,
				     &p->n_rlimits, parse_rlimit);
	if (!r)
		r = check_rlimits_unique(j, p);
	if (!r)
		r = oci_json_get_bool(j, v, "noNewPrivileges", &p->no_new_privileges);
	if (!r)
		r = oci_json_get_string(j, v, "apparmorProfile", &p->apparmor_profile);
	if (!r) {
		struct oci_opt_i64 adj = {0};
		yajl_val a;
		r = oci_json_field(j, v, "oomScoreAdj", &a);
		if (!r && a) {
			size_t s = oci_json_push_key(j, "oomScoreAdj");
			r = oci_json_int(j, a, -1000, 1000, &adj.value);
			oci_json_pop(j, s);
			p->has_oom_score_adj = r == 0;
			p->oom_score_adj = (int)adj.value;
		}
	}
	if (!r)
		r = oci_json_get_string(j, v, "selinuxLabel", &p->selinux_label);
	oci_json_pop(j, saved);
	return r;
}

/* ---- mounts, hooks ---- */

static int parse_mount(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_mount *m = element;
	int r = get_required_string(j, v, "destination", &m->destination, check_absolute);
	if (!r)
		r = oci_json_get_string(j, v, "type", &m->type);
	if (!r)
		r = oci_json_get_string(j, v, "source", &m->source);
	if (!r)
		r = oci_json_get_strv(j, v, "options", &m->options, NULL);
	return r;
}

static int parse_hook(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_hook *h = element;
	int r = get_required_string(j, v, "path", &h->path, check_absolute);
	if (!r)
		r = oci_json_get_strv(j, v, "args", &h->args, NULL);
	if (!r)
		r = oci_json_get_strv(j, v, "env", &h->env, check_env);
	yajl_val t;
	if (!r)
		r = oci_json_field(j, v, "timeout", &t);
	if (!r && t) {
		size_t saved = oci_json_push_key(j, "timeout");
		int64_t secs;
		r = oci_json_int(j, t, INT64_MIN, INT64_MAX, &secs);
		if (!r && secs <= 0)
			r = oci_json_fail(j, -EINVAL, "%lld must be greater than zero",
					  (long long)secs);
		else if (!r && secs > INT_MAX)
			r = oci_json_fail(j, -ERANGE, "%lld is out of range (1..%d)",
					  (long long)secs, INT_MAX);
		oci_json_pop(j, saved);
		h->has_timeout = r == 0;
		h->timeout = r ? 0 : (int)secs;
	}
	return r;
}

static int parse_hooks(struct oci_json *j, yajl_val top, struct oci_hook_list *hooks)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, top, "hooks", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	for (unsigned k = 0; k < OCI_HOOK__COUNT && !r; k++)
		r = get_object_array(j, v, oci_hook_kind_name(k), sizeof(struct oci_hook),
				     (void **)&hooks[k].items, &hooks[k].n, parse_hook);
	oci_json_pop(j, saved);
	return r;
}

/* ---- linux ---- */

static int parse_namespace(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_namespace *ns = element;
	autofree char *type = NULL;
	int r = get_required_string(j, v, "type", &type, NULL);
	if (r)
		return r;
	int t = oci_ns_type_from_name(type);
	if (t < 0) {
		size_t saved = oci_json_push_key(j, "type");
		r = check_name(j, OCI_NAMES_NAMESPACE, "namespace", type);
		oci_json_pop(j, saved);
		return r;
	}
	ns->type = (enum oci_ns_type)t;
	return get_optional_string(j, v, "path", &ns->path, check_absolute);
}

static int check_namespaces_unique(struct oci_json *j, const struct oci_linux *lx)
{
	int first[OCI_NS__COUNT];
	for (size_t i = 0; i < OCI_NS__COUNT; i++)
		first[i] = -1;
	for (size_t i = 0; i < lx->n_namespaces; i++) {
		enum oci_ns_type t = lx->namespaces[i].type;
		if (first[t] < 0) {
			first[t] = (int)i;
			continue;
		}
		size_t saved = oci_json_push_key(j, "namespaces");
		oci_json_push_index(j, i);
		oci_json_push_key(j, "type");
		int r = oci_json_fail(j, -EINVAL, "duplicate namespace \"%s\", already in [%d]",
				      oci_ns_type_name(t), first[t]);
		oci_json_pop(j, saved);
		return r;
	}
	return 0;
}

static int parse_id_mapping(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_id_mapping *m = element;
	int r = get_required_u32(j, v, "containerID", &m->container_id);
	if (!r)
		r = get_required_u32(j, v, "hostID", &m->host_id);
	if (!r)
		r = get_required_u32(j, v, "size", &m->size);
	return r;
}

/* Memory sizes: a number of bytes, or -1 for "unlimited". */
static int get_memory_value(struct oci_json *j, yajl_val obj, const char *key,
			    struct oci_opt_i64 *out)
{
	int r = oci_json_get_opt_i64(j, obj, key, out);
	if (!r && out->set && out->value < -1) {
		size_t saved = oci_json_push_key(j, key);
		r = oci_json_fail(j, -EINVAL,
				  "%lld is neither -1 (unlimited) nor a number of bytes",
				  (long long)out->value);
		oci_json_pop(j, saved);
	}
	return r;
}

static int parse_memory(struct oci_json *j, yajl_val res, struct oci_resources *rs)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, res, "memory", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	r = get_memory_value(j, v, "limit", &rs->memory.limit);
	if (!r)
		r = get_memory_value(j, v, "reservation", &rs->memory.reservation);
	if (!r)
		r = get_memory_value(j, v, "swap", &rs->memory.swap);
	if (!r)
		r = oci_json_get_opt_u64(j, v, "swappiness", &rs->memory.swappiness);
	if (!r && rs->memory.swappiness.set && rs->memory.swappiness.value > 100) {
		size_t s = oci_json_push_key(j, "swappiness");
		r = oci_json_fail(j, -ERANGE, "%llu is out of range (0..100)",
				  (unsigned long long)rs->memory.swappiness.value);
		oci_json_pop(j, s);
	}
	if (!r)
		r = oci_json_get_bool(j, v, "disableOOMKiller", &rs->memory.disable_oom_killer);
	oci_json_pop(j, saved);
	return r;
}

static int parse_cpu(struct oci_json *j, yajl_val res, struct oci_resources *rs)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, res, "cpu", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	r = oci_json_get_opt_u64(j, v, "shares", &rs->cpu.shares);
	if (!r)
		r = oci_json_get_opt_i64(j, v, "quota", &rs->cpu.quota);
	if (!r)
		r = oci_json_get_opt_u64(j, v, "period", &rs->cpu.period);
	if (!r)
		r = oci_json_get_string(j, v, "cpus", &rs->cpu.cpus);
	if (!r)
		r = oci_json_get_string(j, v, "mems", &rs->cpu.mems);
	oci_json_pop(j, saved);
	return r;
}

static int check_device_type_rule(struct oci_json *j, const char *s)
{
	char q[OCI_QUOTE_MAX];
	if (strcmp(s, "a") != 0 && strcmp(s, "b") != 0 && strcmp(s, "c") != 0)
		return oci_json_fail(j, -EINVAL, "unknown device type %s; allowed: a, b, c",
				     oci_json_quote(s, q, sizeof(q)));
	return 0;
}

static int check_access(struct oci_json *j, const char *s)
{
	char q[OCI_QUOTE_MAX];
	if (s[strspn(s, "rwm")])
		return oci_json_fail(j, -EINVAL, "%s is not a combination of r, w and m",
				     oci_json_quote(s, q, sizeof(q)));
	return 0;
}

static int parse_device_rule(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_device_rule *d = element;
	yajl_val allow;
	int r = oci_json_field(j, v, "allow", &allow);
	if (!r && !allow)
		r = oci_json_missing(j, "allow", NULL);
	if (!r)
		r = oci_json_get_bool(j, v, "allow", &d->allow);
	autofree char *type = NULL;
	if (!r)
		r = get_optional_string(j, v, "type", &type, check_device_type_rule);
	if (!r && type)
		d->type = type[0];
	if (!r)
		r = oci_json_get_opt_i64(j, v, "major", &d->major);
	if (!r)
		r = oci_json_get_opt_i64(j, v, "minor", &d->minor);
	if (!r)
		r = get_optional_string(j, v, "access", &d->access, check_access);
	return r;
}

static int parse_hugepage_limit(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_hugepage_limit *h = element;
	int r = get_required_string(j, v, "pageSize", &h->page_size, check_not_empty);
	if (!r)
		r = get_required_u64(j, v, "limit", &h->limit);
	return r;
}

static int parse_resources(struct oci_json *j, yajl_val lxv, struct oci_linux *lx)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, lxv, "resources", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	struct oci_resources *rs = &lx->resources;
	lx->has_resources = true;
	r = parse_memory(j, v, rs);
	if (!r)
		r = parse_cpu(j, v, rs);
	yajl_val pids;
	size_t saved_pids;
	if (!r)
		r = enter(j, v, "pids", yajl_t_object, &pids, &saved_pids);
	if (!r && pids) {
		r = oci_json_get_opt_i64(j, pids, "limit", &rs->pids.limit);
		oci_json_pop(j, saved_pids);
	}
	if (!r)
		r = get_object_array(j, v, "devices", sizeof(*rs->devices), (void **)&rs->devices,
				     &rs->n_devices, parse_device_rule);
	if (!r)
		r = get_object_array(j, v, "hugepageLimits", sizeof(*rs->hugepage_limits),
				     (void **)&rs->hugepage_limits, &rs->n_hugepage_limits,
				     parse_hugepage_limit);
	oci_json_pop(j, saved);
	return r;
}

static int check_device_type_node(struct oci_json *j, const char *s)
{
	char q[OCI_QUOTE_MAX];
	if (strcmp(s, "c") != 0 && strcmp(s, "b") != 0 && strcmp(s, "u") != 0 &&
	    strcmp(s, "p") != 0)
		return oci_json_fail(j, -EINVAL, "unknown device type %s; allowed: c, b, u, p",
				     oci_json_quote(s, q, sizeof(q)));
	return 0;
}

static int parse_linux_device(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_linux_device *d = element;
	autofree char *type = NULL;
	int r = get_required_string(j, v, "type", &type, check_device_type_node);
	if (r)
		return r;
	d->type = type[0];
	r = get_required_string(j, v, "path", &d->path, check_absolute);
	struct oci_opt_i64 major = {0}, minor = {0};
	if (!r)
		r = oci_json_get_opt_i64(j, v, "major", &major);
	if (!r)
		r = oci_json_get_opt_i64(j, v, "minor", &minor);
	/* A fifo has no numbers; every other node needs both. */
	if (!r && d->type != 'p' && !major.set)
		r = oci_json_missing(j, "major", "required for device type c, b and u");
	if (!r && d->type != 'p' && !minor.set)
		r = oci_json_missing(j, "minor", "required for device type c, b and u");
	d->major = major.value;
	d->minor = minor.value;
	if (!r)
		r = oci_json_get_u32(j, v, "fileMode", &d->file_mode, &d->has_file_mode);
	if (!r)
		r = oci_json_get_u32(j, v, "uid", &d->uid, &d->has_uid);
	if (!r)
		r = oci_json_get_u32(j, v, "gid", &d->gid, &d->has_gid);
	return r;
}

static int check_seccomp_op(struct oci_json *j, const char *s)
{
	return check_name(j, OCI_NAMES_SECCOMP_OP, "operator", s);
}

static int check_seccomp_action(struct oci_json *j, const char *s)
{
	return check_name(j, OCI_NAMES_SECCOMP_ACTION, "action", s);
}

static int parse_seccomp_arg(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_seccomp_arg *a = element;
	uint32_t index = 0;
	int r = get_required_u32(j, v, "index", &index);
	/* A system call has six arguments. */
	if (!r && index > 5) {
		size_t s = oci_json_push_key(j, "index");
		r = oci_json_fail(j, -ERANGE, "%u is out of range (0..5)", index);
		oci_json_pop(j, s);
	}
	a->index = index;
	if (!r)
		r = get_required_u64(j, v, "value", &a->value);
	struct oci_opt_u64 two = {0};
	if (!r)
		r = oci_json_get_opt_u64(j, v, "valueTwo", &two);
	a->value_two = two.value;
	if (!r)
		r = get_required_string(j, v, "op", &a->op, check_seccomp_op);
	return r;
}

static int parse_seccomp_syscall(struct oci_json *j, yajl_val v, void *element)
{
	struct oci_seccomp_syscall *sc = element;
	int r = oci_json_get_strv(j, v, "names", &sc->names, check_not_empty);
	if (!r && !sc->names.v)
		r = oci_json_missing(j, "names", NULL);
	if (!r && sc->names.n == 0) {
		size_t s = oci_json_push_key(j, "names");
		r = oci_json_fail(j, -EINVAL, "must have at least one element");
		oci_json_pop(j, s);
	}
	if (!r)
		r = get_required_string(j, v, "action", &sc->action, check_seccomp_action);
	if (!r)
		r = oci_json_get_u32(j, v, "errnoRet", &sc->errno_ret, &sc->has_errno_ret);
	if (!r)
		r = get_object_array(j, v, "args", sizeof(*sc->args), (void **)&sc->args,
				     &sc->n_args, parse_seccomp_arg);
	return r;
}

static int parse_seccomp(struct oci_json *j, yajl_val lxv, struct oci_linux *lx)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, lxv, "seccomp", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	struct oci_seccomp *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		oci_json_pop(j, saved);
		return oci_json_oom(j);
	}
	lx->seccomp = sc;
	r = get_required_string(j, v, "defaultAction", &sc->default_action, check_seccomp_action);
	if (!r)
		r = oci_json_get_u32(j, v, "defaultErrnoRet", &sc->default_errno_ret,
				     &sc->has_default_errno_ret);
	if (!r)
		r = oci_json_get_strv(j, v, "architectures", &sc->architectures,
				      check_seccomp_arch);
	if (!r)
		r = oci_json_get_strv(j, v, "flags", &sc->flags, check_seccomp_flag);
	if (!r)
		r = get_optional_string(j, v, "listenerPath", &sc->listener_path, check_absolute);
	if (!r)
		r = oci_json_get_string(j, v, "listenerMetadata", &sc->listener_metadata);
	if (!r)
		r = get_object_array(j, v, "syscalls", sizeof(*sc->syscalls),
				     (void **)&sc->syscalls, &sc->n_syscalls,
				     parse_seccomp_syscall);

	/* config-linux.md: SCMP_ACT_NOTIFY needs a listener to talk to. */
	if (!r && !sc->listener_path) {
		if (strcmp(sc->default_action, "SCMP_ACT_NOTIFY") == 0)
			r = oci_json_fail(j, -EINVAL,
					  "defaultAction: SCMP_ACT_NOTIFY requires listenerPath");
		for (size_t i = 0; i < sc->n_syscalls && !r; i++) {
			if (strcmp(sc->syscalls[i].action, "SCMP_ACT_NOTIFY") != 0)
				continue;
			size_t s = oci_json_push_key(j, "syscalls");
			oci_json_push_index(j, i);
			oci_json_push_key(j, "action");
			r = oci_json_fail(j, -EINVAL,
					  "SCMP_ACT_NOTIFY requires linux.seccomp.listenerPath");
			oci_json_pop(j, s);
		}
	}
	oci_json_pop(j, saved);
	return r;
}

static int check_rootfs_propagation(struct oci_json *j, const char *s)
{
	return check_name(j, OCI_NAMES_ROOTFS_PROPAGATION, "propagation", s);
}

static int check_mappings_need_userns(struct oci_json *j, const struct oci_linux *lx)
{
	if (!lx->n_uid_mappings && !lx->n_gid_mappings)
		return 0;
	for (size_t i = 0; i < lx->n_namespaces; i++)
		if (lx->namespaces[i].type == OCI_NS_USER)
			return 0;
	size_t saved = oci_json_push_key(j, lx->n_uid_mappings ? "uidMappings" : "gidMappings");
	int r = oci_json_fail(j, -EINVAL, "set, but linux.namespaces has no user namespace");
	oci_json_pop(j, saved);
	return r;
}

static int parse_linux(struct oci_json *j, yajl_val top, struct oci_linux *lx)
{
	yajl_val v;
	size_t saved;
	int r = enter(j, top, "linux", yajl_t_object, &v, &saved);
	if (r || !v)
		return r;
	lx->present = true;
	r = get_object_array(j, v, "namespaces", sizeof(*lx->namespaces), (void **)&lx->namespaces,
			     &lx->n_namespaces, parse_namespace);
	if (!r)
		r = check_namespaces_unique(j, lx);
	if (!r)
		r = get_object_array(j, v, "uidMappings", sizeof(*lx->uid_mappings),
				     (void **)&lx->uid_mappings, &lx->n_uid_mappings,
				     parse_id_mapping);
	if (!r)
		r = get_object_array(j, v, "gidMappings", sizeof(*lx->gid_mappings),
				     (void **)&lx->gid_mappings, &lx->n_gid_mappings,
				     parse_id_mapping);
	if (!r)
		r = check_mappings_need_userns(j, lx);
	if (!r)
		r = oci_json_get_kv_list(j, v, "sysctl", &lx->sysctl);
	if (!r)
		r = parse_resources(j, v, lx);
	if (!r)
		r = oci_json_get_string(j, v, "cgroupsPath", &lx->cgroups_path);
	if (!r)
		r = oci_json_get_strv(j, v, "maskedPaths", &lx->masked_paths, check_absolute);
	if (!r)
		r = oci_json_get_strv(j, v, "readonlyPaths", &lx->readonly_paths, check_absolute);
	if (!r)
		r = get_object_array(j, v, "devices", sizeof(*lx->devices), (void **)&lx->devices,
				     &lx->n_devices, parse_linux_device);
	if (!r)
		r = parse_seccomp(j, v, lx);
	if (!r)
		r = get_optional_string(j, v, "rootfsPropagation", &lx->rootfs_propagation,
					check_rootfs_propagation);
	if (!r)
		r = oci_json_get_string(j, v, "mountLabel", &lx->mount_label);
	oci_json_pop(j, saved);
	return r;
}

/* ---- the document ---- */

static int parse_config(struct oci_json *j, yajl_val top, struct oci_config *cfg)
{
	/* ociVersion first: a 2.x document may mean anything below. */
	int r = get_required_string(j, top, "ociVersion", &cfg->oci_version, check_oci_version);
	if (!r)
		r = parse_root(j, top, &cfg->root);
	if (!r)
		r = parse_process(j, top, &cfg->process);
	if (!r)
		r = get_optional_string(j, top, "hostname", &cfg->hostname, check_hostname);
	if (!r)
		r = get_optional_string(j, top, "domainname", &cfg->domainname, check_hostname);
	if (!r)
		r = get_object_array(j, top, "mounts", sizeof(*cfg->mounts), (void **)&cfg->mounts,
				     &cfg->n_mounts, parse_mount);
	if (!r)
		r = parse_hooks(j, top, cfg->hooks);
	if (!r)
		r = oci_json_get_kv_list(j, top, "annotations", &cfg->annotations);
	if (!r)
		r = parse_linux(j, top, &cfg->linux_);
	return r;
}

int oci_config_parse(const char *json, size_t len, struct oci_config **out, struct perr *err)
{
	struct oci_json j;
	oci_json_init(&j, CONFIG_FILE, err);
	*out = NULL;

	yajl_val tree;
	int r = oci_json_load_tree(&j, json, len, &tree);
	if (r)
		return r;
	struct oci_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		yajl_tree_free(tree);
		return oci_json_oom(&j);
	}
	r = parse_config(&j, tree, cfg);
	yajl_tree_free(tree);
	if (r) {
		oci_config_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

int oci_config_load(const char *bundle_dir, struct oci_config **out, struct perr *err)
{
	char path[PATH_MAX];
	*out = NULL;
	int n = snprintf(path, sizeof(path), "%s/" CONFIG_FILE, bundle_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return perr_setx(err, -ENAMETOOLONG, "bundle path too long: %s", bundle_dir);

	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return perr_set(err, -errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return perr_set(err, -errno, "stat %s", path);
	if (!S_ISREG(st.st_mode))
		return perr_setx(err, -EINVAL, "%s: not a regular file", path);
	if ((uint64_t)st.st_size > OCI_JSON_MAX_SIZE)
		return perr_setx(err, -EFBIG, "%s: %lld bytes, more than the %u allowed", path,
				 (long long)st.st_size, OCI_JSON_MAX_SIZE);

	/* Read to EOF rather than trusting st_size: the file may change. */
	size_t cap = (size_t)st.st_size + 1, len = 0;
	autofree char *buf = malloc(cap);
	if (!buf)
		return perr_set(err, -ENOMEM, "%s", path);
	for (;;) {
		if (len == cap) {
			if (cap > OCI_JSON_MAX_SIZE)
				return perr_setx(err, -EFBIG, "%s: more than %u bytes", path,
						 OCI_JSON_MAX_SIZE);
			char *bigger = realloc(buf, cap * 2);
			if (!bigger)
				return perr_set(err, -ENOMEM, "%s", path);
			buf = bigger;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return perr_set(err, -errno, "read %s", path);
		if (got == 0)
			break;
		len += (size_t)got;
	}
	return oci_config_parse(buf, len, out, err);
}

/* ---- freeing ---- */

static void free_hook_list(struct oci_hook_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].path);
		oci_strv_free(&l->items[i].args);
		oci_strv_free(&l->items[i].env);
	}
	free(l->items);
}

static void free_seccomp(struct oci_seccomp *sc)
{
	if (!sc)
		return;
	free(sc->default_action);
	oci_strv_free(&sc->architectures);
	oci_strv_free(&sc->flags);
	free(sc->listener_path);
	free(sc->listener_metadata);
	for (size_t i = 0; i < sc->n_syscalls; i++) {
		struct oci_seccomp_syscall *s = &sc->syscalls[i];
		oci_strv_free(&s->names);
		free(s->action);
		for (size_t a = 0; a < s->n_args; a++)
			free(s->args[a].op);
		free(s->args);
	}
	free(sc->syscalls);
	free(sc);
}

static void free_linux(struct oci_linux *lx)
{
	for (size_t i = 0; i < lx->n_namespaces; i++)
		free(lx->namespaces[i].path);
	free(lx->namespaces);
	free(lx->uid_mappings);
	free(lx->gid_mappings);
	oci_kv_list_free(&lx->sysctl);
	struct oci_resources *rs = &lx->resources;
	free(rs->cpu.cpus);
	free(rs->cpu.mems);
	for (size_t i = 0; i < rs->n_devices; i++)
		free(rs->devices[i].access);
	free(rs->devices);
	for (size_t i = 0; i < rs->n_hugepage_limits; i++)
		free(rs->hugepage_limits[i].page_size);
	free(rs->hugepage_limits);
	free(lx->cgroups_path);
	oci_strv_free(&lx->masked_paths);
	oci_strv_free(&lx->readonly_paths);
	for (size_t i = 0; i < lx->n_devices; i++)
		free(lx->devices[i].path);
	free(lx->devices);
	free_seccomp(lx->seccomp);
	free(lx->rootfs_propagation);
	free(lx->mount_label);
}

static void free_process(struct oci_process *p)
{
	free(p->user.additional_gids);
	oci_strv_free(&p->args);
	oci_strv_free(&p->env);
	free(p->cwd);
	oci_strv_free(&p->capabilities.bounding.names);
	oci_strv_free(&p->capabilities.effective.names);
	oci_strv_free(&p->capabilities.inheritable.names);
	oci_strv_free(&p->capabilities.permitted.names);
	oci_strv_free(&p->capabilities.ambient.names);
	free(p->rlimits);
	free(p->apparmor_profile);
	free(p->selinux_label);
}

void oci_config_free(struct oci_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->oci_version);
	free(cfg->root.path);
	free_process(&cfg->process);
	free(cfg->hostname);
	free(cfg->domainname);
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		free(cfg->mounts[i].destination);
		free(cfg->mounts[i].type);
		free(cfg->mounts[i].source);
		oci_strv_free(&cfg->mounts[i].options);
	}
	free(cfg->mounts);
	for (unsigned k = 0; k < OCI_HOOK__COUNT; k++)
		free_hook_list(&cfg->hooks[k]);
	oci_kv_list_free(&cfg->annotations);
	free_linux(&cfg->linux_);
	free(cfg);
}

/* ---- lookups ---- */

const char *oci_annotation(const struct oci_config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->annotations.n; i++)
		if (strcmp(cfg->annotations.items[i].key, key) == 0)
			return cfg->annotations.items[i].value;
	return NULL;
}

const struct oci_namespace *oci_find_namespace(const struct oci_config *cfg, enum oci_ns_type type)
{
	for (size_t i = 0; i < cfg->linux_.n_namespaces; i++)
		if (cfg->linux_.namespaces[i].type == type)
			return &cfg->linux_.namespaces[i];
	return NULL;
}

const struct oci_hook_list *oci_hooks(const struct oci_config *cfg, enum oci_hook_kind kind)
{
	static const struct oci_hook_list none = {0, NULL};
	if ((unsigned)kind >= OCI_HOOK__COUNT)
		return &none;
	return &cfg->hooks[kind];
}
