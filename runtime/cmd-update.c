/*
 * petrel update --resources FILE|- ID: what a running VM can take is applied,
 * the rest is refused naming the field (docs/runtime.md, "update"):
 *   cpu.quota, cpu.period, cpu.shares  the VMM's host cgroup (cpu.max, cpu.weight)
 *   memory.limit                       the balloon target when the VM has a balloon;
 *                                      without one only the size it has is accepted
 *   memory.swap, memory.reservation    accepted: the VM has no swap, and a
 *                                      reservation guarantees nothing
 *   devices                            accepted: the VM is the device boundary (as at create)
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "common/cleanup.h"
#include "runtime/cgroup.h"
#include "runtime/commands.h"
#include "runtime/config-file.h"
#include "runtime/container.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"
#include "runtime/qmp-client.h"

static char *slurp(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			if (cap > (1u << 20)) {
				free(buf);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[n] = 0;
	*len = n;
	return buf;
}

static yajl_val obj_get(yajl_val obj, const char *key)
{
	if (!obj || !YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (!strcmp(obj->u.object.keys[i], key))
			return obj->u.object.values[i];
	return NULL;
}

static bool json_equal(yajl_val a, yajl_val b)
{
	if (!a || !b)
		return a == b;
	if (YAJL_IS_NUMBER(a) && YAJL_IS_NUMBER(b))
		return YAJL_IS_INTEGER(a) && YAJL_IS_INTEGER(b)
			   ? YAJL_GET_INTEGER(a) == YAJL_GET_INTEGER(b)
			   : !strcmp(YAJL_GET_NUMBER(a), YAJL_GET_NUMBER(b));
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case yajl_t_string:
		return !strcmp(a->u.string, b->u.string);
	case yajl_t_object:
		if (a->u.object.len != b->u.object.len)
			return false;
		for (size_t i = 0; i < a->u.object.len; i++)
			if (!json_equal(a->u.object.values[i], obj_get(b, a->u.object.keys[i])))
				return false;
		return true;
	case yajl_t_array:
		if (a->u.array.len != b->u.array.len)
			return false;
		for (size_t i = 0; i < a->u.array.len; i++)
			if (!json_equal(a->u.array.values[i], b->u.array.values[i]))
				return false;
		return true;
	default:
		return true; /* true, false, null */
	}
}

static bool is_empty(yajl_val v)
{
	return !v || YAJL_IS_NULL(v) || (YAJL_IS_ARRAY(v) && v->u.array.len == 0) ||
	       (YAJL_IS_OBJECT(v) && v->u.object.len == 0);
}

/* What update can do, collected before anything is changed. */
struct update_plan {
	bool has_memory_limit;
	int64_t memory_limit; /* -1: unlimited */
	struct cgroup_limits cg;
	bool has_cg;
};

static int upd_int(yajl_val v, const char *field, int64_t min, int64_t *out, struct perr *err)
{
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min)
		return perr_setx(err, -EINVAL,
				 "update: linux.resources.%s: expected an integer >= %lld", field,
				 (long long)min);
	*out = YAJL_GET_INTEGER(v);
	return 0;
}

static int upd_refuse(const char *field, const char *why, struct perr *err)
{
	return perr_setx(err, -ENOTSUP,
			 "update: linux.resources.%s cannot be changed on a running petrel "
			 "container (%s)",
			 field, why);
}

/* created: config.json's linux.resources (NULL when none). What petrel
 * cannot apply is accepted when it is what the container was created with:
 * podman and containerd send the whole resources object with one change. */
static int update_plan_build(yajl_val v, yajl_val created, struct update_plan *p, struct perr *err)
{
	memset(p, 0, sizeof(*p));
	int rc = 0;
	for (size_t i = 0; i < v->u.object.len && rc == 0; i++) {
		const char *key = v->u.object.keys[i];
		yajl_val m = v->u.object.values[i];
		yajl_val was = obj_get(created, key);
		if (is_empty(m) || !strcmp(key, "devices") || json_equal(m, was))
			continue;
		bool is_mem = !strcmp(key, "memory"), is_cpu = !strcmp(key, "cpu");
		if (!(is_mem || is_cpu)) {
			char why[128];
			snprintf(why, sizeof(why), "%s",
				 !strcmp(key, "pids") ? "the guest has no pids limit"
						      : "petrel cannot apply it to a VM");
			if (YAJL_IS_OBJECT(m)) {
				for (size_t j = 0; j < m->u.object.len; j++)
					if (!YAJL_IS_NULL(m->u.object.values[j]) &&
					    !json_equal(m->u.object.values[j],
							obj_get(was, m->u.object.keys[j]))) {
						char f[256];
						snprintf(f, sizeof(f), "%.64s.%.64s", key,
							 m->u.object.keys[j]);
						return upd_refuse(f, why, err);
					}
				continue;
			}
			return upd_refuse(key, why, err);
		}
		if (!YAJL_IS_OBJECT(m))
			return perr_setx(err, -EINVAL,
					 "update: linux.resources.%s: expected an object", key);
		for (size_t j = 0; j < m->u.object.len && rc == 0; j++) {
			const char *k = m->u.object.keys[j];
			yajl_val x = m->u.object.values[j];
			char f[256];
			snprintf(f, sizeof(f), "%s.%.64s", key, k);
			if (YAJL_IS_NULL(x))
				continue;
			int64_t n = 0;
			if (is_mem && !strcmp(k, "limit")) {
				rc = upd_int(x, f, -1, &n, err);
				p->has_memory_limit = true;
				p->memory_limit = n == 0 ? -1 : n;
			} else if (is_mem && (!strcmp(k, "swap") || !strcmp(k, "reservation"))) {
				rc = upd_int(x, f, -1, &n, err); /* checked, nothing to apply */
			} else if (is_cpu && !strcmp(k, "quota")) {
				rc = upd_int(x, f, -1, &n, err);
				p->cg.has_cpu_quota = true;
				p->cg.cpu_quota = n > 0 ? n : -1;
				p->has_cg = true;
			} else if (is_cpu && !strcmp(k, "period")) {
				rc = upd_int(x, f, 0, &n, err);
				if (rc == 0 && n && (n < 1000 || n > 1000000))
					rc = perr_setx(err, -ERANGE,
						       "update: linux.resources.%s: %lld is out of "
						       "range (1000..1000000 µs)",
						       f, (long long)n);
				p->cg.cpu_period = (uint64_t)n;
				p->has_cg |= n != 0;
			} else if (is_cpu && !strcmp(k, "shares")) {
				rc = upd_int(x, f, 0, &n, err);
				if (rc == 0 && n) {
					uint64_t s = (uint64_t)n < 2	    ? 2
						     : (uint64_t)n > 262144 ? 262144
									    : (uint64_t)n;
					p->cg.cpu_weight = 1 + ((s - 2) * 9999) / 262142;
					p->has_cg = true;
				}
			} else if (!json_equal(x, obj_get(was, k))) {
				rc = upd_refuse(f,
						is_cpu ? "only quota, period and shares apply to "
							 "the VMM's host cgroup"
						       : "the VM's memory is fixed at create",
						err);
			}
		}
	}
	return rc;
}

/* memory.limit: the guest cannot grow; with a balloon it can give memory
 * back down to limit + memory_overhead (the guest size create chose for
 * that limit), capped at its size. Without one, only the limit the VM was
 * made for (create_limit, 0 when config.json had none) or -1 is accepted. */
static int update_memory(const char *state_dir, const char *qmp, int64_t limit,
			 int64_t create_limit, struct perr *err)
{
	struct petrel_conf conf;
	int rc = petrel_conf_load(NULL, &conf, err);
	if (rc < 0)
		return rc;
	char cg[PATH_MAX];
	uint64_t guest = 0;
	bool made = false;
	if (cgroup_record_load(state_dir, cg, sizeof(cg), &guest, &made) < 0 || !guest)
		guest = 0;
	uint64_t want = limit < 0 ? UINT64_MAX : (uint64_t)limit + conf.memory_overhead;
	if (guest && want > guest)
		want = guest;
	if (want == UINT64_MAX && !guest)
		return 0; /* unlimited, size unknown: nothing to ask the balloon for */
	struct perr berr = {0};
	rc = qmp_client_balloon(qmp, want == UINT64_MAX ? guest : want, &berr);
	if (rc == 0)
		return 0;
	/* No balloon: only what the VM already is can be asked for. */
	if (limit < 0 || limit == create_limit)
		return 0;
	return perr_setx(err, -ENOTSUP,
			 "update: linux.resources.memory.limit cannot be changed on a running "
			 "petrel container: the VM's memory is fixed at create and %s",
			 strstr(berr.msg, "balloon") ? "it has no balloon device" : berr.msg);
}

/* The bundle's config.json as a tree (NULL when unreadable). */
static yajl_val created_resources_tree(const char *bundle)
{
	char path[PATH_MAX + 16];
	if (!bundle[0] ||
	    snprintf(path, sizeof(path), "%s/config.json", bundle) >= (int)sizeof(path))
		return NULL;
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t len = 0;
	autofree char *text = slurp(f, &len);
	fclose(f);
	return text ? yajl_tree_parse(text, NULL, 0) : NULL;
}

int petrel_update(const char *root, const char *id, const char *resources_path, struct perr *err)
{
	if (!resources_path)
		return perr_setx(
		    err, -EINVAL,
		    "update: give the new limits with --resources FILE (or - for stdin); "
		    "petrel takes no individual limit flags");
	autoclose int lock = -1;
	int rc = container_lock_existing(root, id, &lock, err);
	if (rc < 0)
		return rc;
	struct oci_state *st = NULL;
	if ((rc = container_load(root, id, &st, err)) < 0)
		return rc;
	enum oci_status status = container_status(root, st);
	/* The limit the VM was sized for: asking for it again changes nothing. */
	int64_t create_limit = 0;
	char bundle[PATH_MAX] = "";
	if (st->bundle)
		snprintf(bundle, sizeof(bundle), "%s", st->bundle);
	struct oci_config *cfg = NULL;
	struct perr cfg_err = {0};
	if (st->bundle && oci_config_load(st->bundle, &cfg, &cfg_err) == 0) {
		const struct oci_resources *res = &cfg->linux_.resources;
		if (cfg->linux_.has_resources && res->memory.limit.set)
			create_limit = res->memory.limit.value;
		oci_config_free(cfg);
	}
	oci_state_free(st);
	if (status == OCI_STATUS_STOPPED)
		return perr_setx(err, -EINVAL, CONTAINER_ERR_NOT_RUNNING);
	FILE *f = strcmp(resources_path, "-") ? fopen(resources_path, "re") : stdin;
	if (!f)
		return perr_set(err, -errno, "--resources %s", resources_path);
	size_t len = 0;
	autofree char *text = slurp(f, &len);
	if (f != stdin)
		fclose(f);
	if (!text)
		return perr_setx(err, -EINVAL, "--resources: unreadable or larger than 1 MiB");
	char ebuf[256];
	yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
	if (!v || !YAJL_IS_OBJECT(v)) {
		yajl_tree_free(v);
		return perr_setx(err, -EINVAL, "--resources: not a JSON object%s%s", v ? "" : ": ",
				 v ? "" : ebuf);
	}
	yajl_val cfg_tree = created_resources_tree(bundle);
	const char *res_path[] = {"linux", "resources", NULL};
	struct update_plan p;
	rc = update_plan_build(
	    v, cfg_tree ? yajl_tree_get(cfg_tree, res_path, yajl_t_object) : NULL, &p, err);
	yajl_tree_free(cfg_tree);
	yajl_tree_free(v);
	if (rc < 0)
		return rc;

	char dir[PATH_MAX], qmp[PATH_MAX], cg[PATH_MAX];
	if (container_path(root, id, NULL, dir, sizeof(dir)) < 0 ||
	    container_path(root, id, "qmp.sock", qmp, sizeof(qmp)) < 0)
		return perr_setx(err, -ENAMETOOLONG, "%s/%s: path too long", root, id);
	uint64_t guest = 0;
	bool made = false;
	bool has_cgroup = cgroup_record_load(dir, cg, sizeof(cg), &guest, &made) == 0 && cg[0];
	if (p.has_cg && !has_cgroup)
		return perr_setx(err, -ENOTSUP,
				 "update: linux.resources.cpu: the container's VMM has no host "
				 "cgroup (config.json has no linux.cgroupsPath, or the host has "
				 "no cgroup v2)");
	/* Refusals first, then changes: memory (which may refuse) before cpu. */
	if (p.has_memory_limit &&
	    (rc = update_memory(dir, qmp, p.memory_limit, create_limit, err)) < 0)
		return rc;
	if (p.has_cg && cgroup_apply(cg, &p.cg, err) < 0)
		return perr_wrap(err, "update: linux.resources.cpu");
	return 0;
}

int cmd_update(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {{.name = "resources", .short_name = 'r', .has_value = true}};
	const char *id;
	int rc = cmd_parse(flags, ARRAY_SIZE(flags), argc, argv, true, &id, NULL, NULL, err);
	if (rc < 0)
		return rc;
	rc = petrel_update(cli->root, id, flags[0].value, err);
	return rc < 0 ? rc : 0;
}
