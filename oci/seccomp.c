/* linux.seccomp → the agent's `seccomp` object (seccomp.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "oci/seccomp.h"

int oci_seccomp_check(const struct oci_seccomp *sc, struct perr *err)
{
	for (size_t i = 0; i < sc->flags.n; i++)
		if (!strcmp(sc->flags.v[i], "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"))
			return perr_setx(err, -ENOTSUP,
					 "linux.seccomp.flags[%zu]: \"%s\" is not supported "
					 "(it only matters for SCMP_ACT_NOTIFY, which cannot leave "
					 "the VM)",
					 i, sc->flags.v[i]);
	return 0;
}

static void gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_u64(yajl_gen g, uint64_t v)
{
	/* yajl_gen_integer is signed: a u64 above INT64_MAX goes out as digits. */
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	yajl_gen_number(g, buf, (size_t)n);
}

static void gen_strv(yajl_gen g, const char *key, const struct oci_strv *v)
{
	gen_str(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; i < v->n; i++)
		gen_str(g, v->v[i]);
	yajl_gen_array_close(g);
}

static void gen_syscall(yajl_gen g, const struct oci_seccomp_syscall *s)
{
	yajl_gen_map_open(g);
	gen_strv(g, "names", &s->names);
	gen_str(g, "action");
	gen_str(g, s->action);
	if (s->has_errno_ret) {
		gen_str(g, "errnoRet");
		gen_u64(g, s->errno_ret);
	}
	gen_str(g, "args");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_args; i++) {
		const struct oci_seccomp_arg *a = &s->args[i];
		yajl_gen_map_open(g);
		gen_str(g, "index");
		gen_u64(g, a->index);
		gen_str(g, "value");
		gen_u64(g, a->value);
		gen_str(g, "valueTwo");
		gen_u64(g, a->value_two);
		gen_str(g, "op");
		gen_str(g, a->op);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

int oci_seccomp_to_json(const struct oci_seccomp *sc, char **out, size_t *len, struct perr *err)
{
	int rc = oci_seccomp_check(sc, err);
	if (rc < 0)
		return rc;
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g) {
		/* An explicit errno return: *out is unset on every failure. */
		perr_setx(err, -ENOMEM, "linux.seccomp: out of memory");
		return -ENOMEM;
	}
	yajl_gen_map_open(g);
	gen_str(g, "defaultAction");
	gen_str(g, sc->default_action);
	if (sc->has_default_errno_ret) {
		gen_str(g, "defaultErrnoRet");
		gen_u64(g, sc->default_errno_ret);
	}
	gen_strv(g, "architectures", &sc->architectures);
	gen_strv(g, "flags", &sc->flags);
	gen_str(g, "syscalls");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < sc->n_syscalls; i++)
		gen_syscall(g, &sc->syscalls[i]);
	yajl_gen_array_close(g);
	const unsigned char *buf;
	size_t n;
	if (yajl_gen_map_close(g) != yajl_gen_status_ok ||
	    yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		perr_setx(err, -EINVAL, "linux.seccomp: cannot encode the profile");
		return -EINVAL;
	}
	*out = malloc(n + 1);
	if (!*out) {
		yajl_gen_free(g);
		perr_setx(err, -ENOMEM, "linux.seccomp: out of memory");
		return -ENOMEM;
	}
	memcpy(*out, buf, n);
	(*out)[n] = 0;
	*len = n;
	yajl_gen_free(g);
	return 0;
}

int oci_seccomp_add_to_message(const struct oci_seccomp *sc, const char *msg, size_t len,
			       char **out, size_t *out_len, struct perr *err)
{
	/* The message is one JSON object: the profile goes in before its last '}'. */
	size_t end = len;
	while (end && msg[end - 1] != '}')
		end--;
	if (!end)
		return perr_setx(err, -EINVAL, "create message: not a JSON object");
	size_t body = end - 1;
	bool empty = true;
	for (size_t i = 0; i < body; i++)
		if (msg[i] != '{' && msg[i] != ' ' && msg[i] != '\n' && msg[i] != '\t') {
			empty = false;
			break;
		}
	char *prof = NULL;
	size_t plen = 0;
	int rc = oci_seccomp_to_json(sc, &prof, &plen, err);
	if (rc < 0)
		return rc;
	static const char key[] = "\"seccomp\":";
	size_t n = body + 1 + (sizeof(key) - 1) + plen + 1;
	char *buf = malloc(n + 1);
	if (!buf) {
		free(prof);
		return perr_setx(err, -ENOMEM, "linux.seccomp: out of memory");
	}
	size_t o = 0;
	memcpy(buf, msg, body);
	o = body;
	if (!empty)
		buf[o++] = ',';
	memcpy(buf + o, key, sizeof(key) - 1);
	o += sizeof(key) - 1;
	memcpy(buf + o, prof, plen);
	o += plen;
	buf[o++] = '}';
	buf[o] = 0;
	free(prof);
	*out = buf;
	*out_len = o;
	return 0;
}
