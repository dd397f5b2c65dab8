/*
 * The container's seccomp profile: create's `seccomp` object (config.json's
 * linux.seccomp as the runtime forwarded it, docs/agent-protocol.md) compiled
 * with libseccomp when create arrives, so that a bad profile fails create
 * itself, and loaded by every container process (init and exec) in the child.
 *
 * As runc does: syscall names this libseccomp does not know are skipped (a
 * profile lists syscalls of newer kernels), rules whose action is the default
 * action are dropped (the kernel filter would not change), several
 * conditions on one argument become separate rules (libseccomp refuses them
 * in one), and no_new_privs is left to process.noNewPrivileges.
 */
#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "agent.h"
#include "common/log.h"

struct agent_seccomp {
	scmp_filter_ctx ctx;
};

static yajl_val sc_key(yajl_val obj, const char *key)
{
	const char *path[] = {key, NULL};
	return yajl_tree_get(obj, path, yajl_t_any);
}

static int sc_string(yajl_val v, const char *path, const char **out, struct perr *err)
{
	if (!YAJL_IS_STRING(v)) {
		perr_setx(err, -EINVAL, "%s: expected a string", path);
		return -EINVAL;
	}
	*out = YAJL_GET_STRING(v);
	return 0;
}

static int sc_u64(yajl_val v, const char *path, uint64_t *out, struct perr *err)
{
	if (!v || !YAJL_IS_NUMBER(v))
		return perr_setx(err, -EINVAL, "%s: expected a number", path);
	/* yajl keeps the digits: a u64 above INT64_MAX is not an integer to it. */
	const char *s = YAJL_GET_NUMBER(v);
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end || s[0] == '-')
		return perr_setx(err, -EINVAL, "%s: %s is not an unsigned 64-bit integer", path, s);
	*out = x;
	return 0;
}

/* The libseccomp action for a runtime-spec action name; errno_ret (when
 * has_ret) for ERRNO and TRACE, EPERM otherwise as runc does. */
static int sc_action(const char *name, bool has_ret, uint64_t ret, const char *path, uint32_t *out,
		     struct perr *err)
{
	uint16_t e = has_ret ? (uint16_t)ret : EPERM;
	if (has_ret && ret > 0xffff)
		return perr_setx(err, -ERANGE, "%s: errnoRet %llu is out of range", path,
				 (unsigned long long)ret);
	if (!strcmp(name, "SCMP_ACT_ALLOW"))
		*out = SCMP_ACT_ALLOW;
	else if (!strcmp(name, "SCMP_ACT_ERRNO"))
		*out = SCMP_ACT_ERRNO(e);
	else if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD"))
		*out = SCMP_ACT_KILL_THREAD;
	else if (!strcmp(name, "SCMP_ACT_KILL_PROCESS"))
		*out = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(name, "SCMP_ACT_TRAP"))
		*out = SCMP_ACT_TRAP;
	else if (!strcmp(name, "SCMP_ACT_TRACE"))
		*out = SCMP_ACT_TRACE(e);
	else if (!strcmp(name, "SCMP_ACT_LOG"))
		*out = SCMP_ACT_LOG;
	else
		return perr_setx(err, -EINVAL, "%s: unsupported action \"%.64s\"", path, name);
	return 0;
}

static int sc_op(const char *name, const char *path, enum scmp_compare *out, struct perr *err)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
		   {"SCMP_CMP_LT", SCMP_CMP_LT},
		   {"SCMP_CMP_LE", SCMP_CMP_LE},
		   {"SCMP_CMP_EQ", SCMP_CMP_EQ},
		   {"SCMP_CMP_GE", SCMP_CMP_GE},
		   {"SCMP_CMP_GT", SCMP_CMP_GT},
		   {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].name, name)) {
			*out = ops[i].op;
			return 0;
		}
	return perr_setx(err, -EINVAL, "%s: unsupported operator \"%.64s\"", path, name);
}

#define SC_MAX_ARGS 6

static int sc_args(yajl_val v, const char *path, struct scmp_arg_cmp *args, unsigned *n,
		   bool *repeated, struct perr *err)
{
	*n = 0;
	*repeated = false;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return perr_setx(err, -EINVAL, "%s: expected an array", path);
	if (v->u.array.len > SC_MAX_ARGS)
		return perr_setx(err, -E2BIG, "%s: more than %d conditions", path, SC_MAX_ARGS);
	unsigned seen = 0;
	for (size_t i = 0; i < v->u.array.len; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%.96s[%zu]", path, i);
		yajl_val a = v->u.array.values[i];
		if (!YAJL_IS_OBJECT(a))
			return perr_setx(err, -EINVAL, "%s: expected an object", p);
		uint64_t index = 0, value = 0, two = 0;
		const char *op = NULL;
		char fp[160];
		snprintf(fp, sizeof(fp), "%.128s.index", p);
		int r = sc_u64(sc_key(a, "index"), fp, &index, err);
		if (!r && index >= SC_MAX_ARGS)
			r = perr_setx(err, -ERANGE, "%s: %llu is out of range (0..5)", fp,
				      (unsigned long long)index);
		snprintf(fp, sizeof(fp), "%.128s.value", p);
		if (!r)
			r = sc_u64(sc_key(a, "value"), fp, &value, err);
		snprintf(fp, sizeof(fp), "%.128s.valueTwo", p);
		yajl_val tv = sc_key(a, "valueTwo");
		if (!r && tv && !YAJL_IS_NULL(tv))
			r = sc_u64(tv, fp, &two, err);
		snprintf(fp, sizeof(fp), "%.128s.op", p);
		if (!r)
			r = sc_string(sc_key(a, "op"), fp, &op, err);
		enum scmp_compare cmp = SCMP_CMP_EQ;
		if (!r)
			r = sc_op(op, fp, &cmp, err);
		if (r < 0)
			return r;
		if (seen & (1u << index))
			*repeated = true;
		seen |= 1u << index;
		args[i] = (struct scmp_arg_cmp){
		    .arg = (unsigned)index, .op = cmp, .datum_a = value, .datum_b = two};
		(*n)++;
	}
	return 0;
}

static int sc_add_syscall(scmp_filter_ctx ctx, uint32_t def_action, yajl_val s, const char *path,
			  struct perr *err)
{
	char p[128];
	if (!YAJL_IS_OBJECT(s))
		return perr_setx(err, -EINVAL, "%s: expected an object", path);
	yajl_val ret = sc_key(s, "errnoRet");
	uint64_t errno_ret = 0;
	bool has_ret = ret && !YAJL_IS_NULL(ret);
	snprintf(p, sizeof(p), "%.64s.errnoRet", path);
	if (has_ret && sc_u64(ret, p, &errno_ret, err) < 0)
		return -EINVAL;
	const char *aname = NULL;
	uint32_t action = 0;
	snprintf(p, sizeof(p), "%.64s.action", path);
	int r = sc_string(sc_key(s, "action"), p, &aname, err);
	if (!r)
		r = sc_action(aname, has_ret, errno_ret, p, &action, err);
	struct scmp_arg_cmp args[SC_MAX_ARGS];
	unsigned nargs = 0;
	bool repeated = false;
	snprintf(p, sizeof(p), "%.64s.args", path);
	if (!r)
		r = sc_args(sc_key(s, "args"), p, args, &nargs, &repeated, err);
	yajl_val names = sc_key(s, "names");
	snprintf(p, sizeof(p), "%.64s.names", path);
	if (r < 0)
		return r;
	if (!names || !YAJL_IS_ARRAY(names)) {
		perr_setx(err, -EINVAL, "%s: expected an array", p);
		return -EINVAL;
	}
	if (action == def_action)
		return 0;
	for (size_t i = 0; i < names->u.array.len; i++) {
		const char *name = NULL;
		snprintf(p, sizeof(p), "%.64s.names[%zu]", path, i);
		if ((r = sc_string(names->u.array.values[i], p, &name, err)) < 0)
			return r;
		int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR) {
			log_debug("seccomp: %s: unknown system call \"%s\", skipped", p, name);
			continue;
		}
		if (!repeated) {
			r = seccomp_rule_add_array(ctx, action, nr, nargs, nargs ? args : NULL);
		} else {
			/* One rule per condition: any of them matching applies the action. */
			for (unsigned k = 0; k < nargs && r == 0; k++)
				r = seccomp_rule_add_array(ctx, action, nr, 1, &args[k]);
		}
		if (r < 0)
			return perr_set(err, r, "%s: \"%s\": add the rule", p, name);
	}
	return 0;
}

static int sc_build(yajl_val v, scmp_filter_ctx *out, struct perr *err)
{
	if (!YAJL_IS_OBJECT(v))
		return perr_setx(err, -EINVAL, "seccomp: expected an object");
	const char *dname = NULL;
	yajl_val dret = sc_key(v, "defaultErrnoRet");
	uint64_t ret = 0;
	bool has_ret = dret && !YAJL_IS_NULL(dret);
	if (has_ret && sc_u64(dret, "seccomp.defaultErrnoRet", &ret, err) < 0)
		return -EINVAL;
	uint32_t def = 0;
	int r = sc_string(sc_key(v, "defaultAction"), "seccomp.defaultAction", &dname, err);
	if (!r)
		r = sc_action(dname, has_ret, ret, "seccomp.defaultAction", &def, err);
	if (r < 0)
		return r;
	scmp_filter_ctx ctx = seccomp_init(def);
	if (!ctx)
		return perr_setx(err, -ENOMEM, "seccomp: seccomp_init failed");
	/* process.noNewPrivileges decides that, not the filter (runc does the same). */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r < 0)
		perr_set(err, r, "seccomp: clear the no_new_privs attribute");

	yajl_val arches = sc_key(v, "architectures");
	for (size_t i = 0; !r && arches && YAJL_IS_ARRAY(arches) && i < arches->u.array.len; i++) {
		char p[64], lower[32];
		snprintf(p, sizeof(p), "seccomp.architectures[%zu]", i);
		const char *name = NULL;
		if ((r = sc_string(arches->u.array.values[i], p, &name, err)) < 0)
			break;
		const char *suffix = strncmp(name, "SCMP_ARCH_", 10) ? name : name + 10;
		size_t k = 0;
		for (; k < sizeof(lower) - 1 && suffix[k]; k++)
			lower[k] = (char)tolower((unsigned char)suffix[k]);
		lower[k] = 0;
		uint32_t token = seccomp_arch_resolve_name(lower);
		if (!token) {
			log_info("seccomp: %s: architecture %s unknown to libseccomp, skipped", p,
				 name);
			continue;
		}
		int ar = seccomp_arch_add(ctx, token);
		if (ar < 0 && ar != -EEXIST)
			r = perr_set(err, ar, "%s: add %s", p, name);
	}
	yajl_val flags = sc_key(v, "flags");
	for (size_t i = 0; !r && flags && YAJL_IS_ARRAY(flags) && i < flags->u.array.len; i++) {
		char p[64];
		snprintf(p, sizeof(p), "seccomp.flags[%zu]", i);
		const char *name = NULL;
		if ((r = sc_string(flags->u.array.values[i], p, &name, err)) < 0)
			break;
		enum scmp_filter_attr attr;
		if (!strcmp(name, "SECCOMP_FILTER_FLAG_TSYNC"))
			attr = SCMP_FLTATR_CTL_TSYNC;
		else if (!strcmp(name, "SECCOMP_FILTER_FLAG_LOG"))
			attr = SCMP_FLTATR_CTL_LOG;
		else if (!strcmp(name, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
			attr = SCMP_FLTATR_CTL_SSB;
		else {
			r = perr_setx(err, -EINVAL, "%s: unsupported flag \"%.64s\"", p, name);
			break;
		}
		int ar = seccomp_attr_set(ctx, attr, 1);
		if (ar < 0)
			r = perr_set(err, ar, "%s: %s", p, name);
	}
	yajl_val calls = sc_key(v, "syscalls");
	if (!r && calls && !YAJL_IS_NULL(calls) && !YAJL_IS_ARRAY(calls))
		r = perr_setx(err, -EINVAL, "seccomp.syscalls: expected an array");
	for (size_t i = 0; !r && calls && YAJL_IS_ARRAY(calls) && i < calls->u.array.len; i++) {
		char p[64];
		snprintf(p, sizeof(p), "seccomp.syscalls[%zu]", i);
		r = sc_add_syscall(ctx, def, calls->u.array.values[i], p, err);
	}
	if (r < 0) {
		seccomp_release(ctx);
		return r;
	}
	*out = ctx;
	return 0;
}

int agent_seccomp_decode(const void *payload, size_t len, struct agent_seccomp **out,
			 struct perr *err)
{
	*out = NULL;
	/* agent_msg_decode has accepted this payload: it is bounded, valid JSON. */
	char *text = strndup(payload, len);
	if (!text)
		return perr_setx(err, -ENOMEM, "seccomp: out of memory");
	char why[128] = "";
	yajl_val root = yajl_tree_parse(text, why, sizeof(why));
	free(text);
	if (!root)
		return perr_setx(err, -EINVAL, "seccomp: invalid JSON");
	int r = 0;
	yajl_val v = sc_key(root, "seccomp");
	if (v && !YAJL_IS_NULL(v)) {
		scmp_filter_ctx ctx = NULL;
		r = sc_build(v, &ctx, err);
		if (r == 0) {
			*out = calloc(1, sizeof(**out));
			if (!*out) {
				seccomp_release(ctx);
				r = perr_setx(err, -ENOMEM, "seccomp: out of memory");
			} else {
				(*out)->ctx = ctx;
			}
		}
	}
	yajl_tree_free(root);
	return r;
}

void agent_seccomp_free(struct agent_seccomp *sc)
{
	if (!sc)
		return;
	seccomp_release(sc->ctx);
	free(sc);
}

void agent_seccomp_load(const struct agent_seccomp *sc, int sync_fd)
{
	if (!sc)
		return;
	int r = seccomp_load(sc->ctx);
	if (r < 0)
		child_fail(sync_fd, -r, "linux.seccomp: load the filter");
}
