/*
 * The container state document: what `petrel state` prints (the shape of
 * `runc state`: runtime-spec runtime.md "State" plus runc's rootfs, created
 * and owner) and what petrel keeps in state.json (the same, plus a "petrel"
 * object with the runtime's own fields).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "common/cleanup.h"
#include "oci/json.h"
#include "oci/oci.h"

#define STATE_FILE "state.json"

/* ---- time, as Go's time.RFC3339Nano ---- */

int oci_time_format(const struct timespec *ts, char *buf, size_t size)
{
	struct tm tm;
	time_t secs = ts->tv_sec;
	if (ts->tv_nsec < 0 || ts->tv_nsec > 999999999 || !gmtime_r(&secs, &tm))
		return -EINVAL;
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		return -ERANGE;
	char frac[12] = "";
	if (ts->tv_nsec) {
		/* Go trims the fraction's trailing zeros, and drops it when 0. */
		snprintf(frac, sizeof(frac), ".%09ld", (long)ts->tv_nsec);
		size_t n = strlen(frac);
		while (frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	if (n < 0 || (size_t)n >= size)
		return -ERANGE;
	return 0;
}

/* Exactly `digits` decimal digits at *s, advancing *s. */
static bool take_number(const char **s, int digits, int *out)
{
	int v = 0;
	for (int i = 0; i < digits; i++) {
		char c = (*s)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*s += digits;
	*out = v;
	return true;
}

static bool take_char(const char **s, char c)
{
	if (**s != c)
		return false;
	(*s)++;
	return true;
}

int oci_time_parse(const char *s, struct timespec *ts)
{
	int year, mon, day, hour, min, sec;
	if (!take_number(&s, 4, &year) || !take_char(&s, '-') || !take_number(&s, 2, &mon) ||
	    !take_char(&s, '-') || !take_number(&s, 2, &day) ||
	    !(take_char(&s, 'T') || take_char(&s, 't')) || !take_number(&s, 2, &hour) ||
	    !take_char(&s, ':') || !take_number(&s, 2, &min) || !take_char(&s, ':') ||
	    !take_number(&s, 2, &sec))
		return -EINVAL;
	long nsec = 0;
	if (take_char(&s, '.')) {
		int digits = 0;
		for (; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 9)
				nsec = nsec * 10 + (*s - '0');
		if (digits == 0)
			return -EINVAL;
		for (; digits < 9; digits++)
			nsec *= 10;
	}
	long offset = 0;
	if (!(take_char(&s, 'Z') || take_char(&s, 'z'))) {
		int sign = *s == '+' ? 1 : *s == '-' ? -1 : 0;
		int oh, om;
		if (!sign)
			return -EINVAL;
		s++;
		if (!take_number(&s, 2, &oh) || !take_char(&s, ':') || !take_number(&s, 2, &om) ||
		    oh > 23 || om > 59)
			return -EINVAL;
		offset = sign * (oh * 3600L + om * 60L);
	}
	if (*s)
		return -EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59)
		return -EINVAL;

	struct tm tm = {
	    .tm_year = year - 1900,
	    .tm_mon = mon - 1,
	    .tm_mday = day,
	    .tm_hour = hour,
	    .tm_min = min,
	    .tm_sec = sec,
	};
	time_t t = timegm(&tm);
	/* timegm() normalises February 30th into March: refuse it. */
	if (tm.tm_mday != day || tm.tm_mon != mon - 1)
		return -EINVAL;
	ts->tv_sec = t - offset;
	ts->tv_nsec = nsec;
	return 0;
}

/* ---- writing ---- */

struct writer {
	yajl_gen g;
	yajl_gen_status st;
	const char *what; /* the key being written, for the error */
};

static void w_string(struct writer *w, const char *s)
{
	if (w->st == yajl_gen_status_ok)
		w->st = yajl_gen_string(w->g, (const unsigned char *)s, strlen(s));
}

static void w_key(struct writer *w, const char *key)
{
	if (w->st == yajl_gen_status_ok)
		w->what = key;
	w_string(w, key);
}

static void w_key_string(struct writer *w, const char *key, const char *value)
{
	w_key(w, key);
	w_string(w, value);
}

static void w_opt_string(struct writer *w, const char *key, const char *value)
{
	if (value)
		w_key_string(w, key, value);
}

static void w_key_int(struct writer *w, const char *key, long long value)
{
	w_key(w, key);
	if (w->st == yajl_gen_status_ok)
		w->st = yajl_gen_integer(w->g, value);
}

static void w_key_u64(struct writer *w, const char *key, uint64_t value)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, value);
	w_key(w, key);
	if (w->st == yajl_gen_status_ok)
		w->st = yajl_gen_number(w->g, num, (size_t)n);
}

static void w_map_open(struct writer *w)
{
	if (w->st == yajl_gen_status_ok)
		w->st = yajl_gen_map_open(w->g);
}

static void w_map_close(struct writer *w)
{
	if (w->st == yajl_gen_status_ok)
		w->st = yajl_gen_map_close(w->g);
}

static void w_kv_list(struct writer *w, const char *key, const struct oci_kv_list *kv)
{
	w_key(w, key);
	w_map_open(w);
	for (size_t i = 0; i < kv->n; i++)
		w_key_string(w, kv->items[i].key, kv->items[i].value);
	w_map_close(w);
}

static void w_time(struct writer *w, const char *key, const struct timespec *ts)
{
	char buf[48];
	if (ts->tv_sec == 0 && ts->tv_nsec == 0)
		return;
	w_key(w, key);
	if (w->st != yajl_gen_status_ok)
		return;
	if (oci_time_format(ts, buf, sizeof(buf)) != 0)
		w->st = yajl_gen_invalid_number; /* reported as a bad value below */
	else
		w_string(w, buf);
}

static void write_petrel(struct writer *w, const struct oci_state_petrel *p)
{
	w_key(w, "petrel");
	w_map_open(w);
	w_key_int(w, "vmmPid", p->vmm_pid);
	w_key_u64(w, "vmmStartTime", p->vmm_start_time);
	w_time(w, "vmmStarted", &p->vmm_started);
	w_opt_string(w, "rootfsImage", p->rootfs_image);
	w_opt_string(w, "qmpSocket", p->qmp_socket);
	w_opt_string(w, "consoleSocket", p->console_socket);
	w_opt_string(w, "netns", p->netns);
	w_opt_string(w, "cgroupPath", p->cgroup_path);
	if (p->vsock_cid)
		w_key_u64(w, "vsockCid", p->vsock_cid);
	if (p->extra.n)
		w_kv_list(w, "extra", &p->extra);
	w_map_close(w);
}

static int state_write(const struct oci_state *st, bool with_petrel, char **out, size_t *len,
		       struct perr *err)
{
	*out = NULL;
	if (len)
		*len = 0;
	const char *status = oci_status_name(st->status);
	if (!st->id || !st->bundle || !status)
		return perr_setx(err, -EINVAL, "%s: id, bundle and a known status are required",
				 STATE_FILE);

	struct writer w = {.g = yajl_gen_alloc(NULL), .st = yajl_gen_status_ok, .what = ""};
	if (!w.g)
		return perr_set(err, -ENOMEM, "%s", STATE_FILE);
	yajl_gen_config(w.g, yajl_gen_beautify, 1);
	yajl_gen_config(w.g, yajl_gen_indent_string, "  ");
	/* Paths are bytes; JSON is UTF-8. Refuse rather than write bad JSON. */
	yajl_gen_config(w.g, yajl_gen_validate_utf8, 1);

	w_map_open(&w);
	w_key_string(&w, "ociVersion", st->oci_version ? st->oci_version : "1.1.0");
	w_key_string(&w, "id", st->id);
	w_key_int(&w, "pid", st->pid);
	w_key_string(&w, "status", status);
	w_key_string(&w, "bundle", st->bundle);
	w_opt_string(&w, "rootfs", st->rootfs);
	w_time(&w, "created", &st->created);
	w_key_string(&w, "owner", st->owner ? st->owner : "");
	if (st->annotations.n)
		w_kv_list(&w, "annotations", &st->annotations);
	if (with_petrel && st->has_petrel)
		write_petrel(&w, &st->petrel);
	w_map_close(&w);

	int r = 0;
	if (w.st != yajl_gen_status_ok) {
		r = perr_setx(err, -EINVAL, "%s: %s: %s", STATE_FILE, w.what,
			      w.st == yajl_gen_invalid_string ? "not valid UTF-8"
							      : "cannot be written as JSON");
	} else {
		const unsigned char *buf;
		size_t n;
		yajl_gen_get_buf(w.g, &buf, &n);
		bool newline = n && buf[n - 1] == '\n';
		char *copy = malloc(n + 2);
		if (!copy) {
			r = perr_set(err, -ENOMEM, "%s", STATE_FILE);
		} else {
			memcpy(copy, buf, n);
			if (!newline)
				copy[n++] = '\n';
			copy[n] = '\0';
			*out = copy;
			if (len)
				*len = n;
		}
	}
	yajl_gen_free(w.g);
	return r;
}

int oci_state_to_json(const struct oci_state *st, char **out, size_t *len, struct perr *err)
{
	return state_write(st, false, out, len, err);
}

int oci_state_to_json_stored(const struct oci_state *st, char **out, size_t *len, struct perr *err)
{
	return state_write(st, true, out, len, err);
}

/* ---- reading ---- */

static int get_time(struct oci_json *j, yajl_val obj, const char *key, struct timespec *out)
{
	autofree char *s = NULL;
	int r = oci_json_get_string(j, obj, key, &s);
	if (r || !s)
		return r;
	if (oci_time_parse(s, out) != 0) {
		char q[OCI_QUOTE_MAX];
		size_t saved = oci_json_push_key(j, key);
		r = oci_json_fail(j, -EINVAL, "%s is not an RFC 3339 time",
				  oci_json_quote(s, q, sizeof(q)));
		oci_json_pop(j, saved);
	}
	return r;
}

static int get_required(struct oci_json *j, yajl_val obj, const char *key, char **out)
{
	int r = oci_json_get_string(j, obj, key, out);
	if (!r && !*out)
		r = oci_json_missing(j, key, NULL);
	return r;
}

static int parse_petrel(struct oci_json *j, yajl_val top, struct oci_state *st)
{
	yajl_val v;
	int r = oci_json_field(j, top, "petrel", &v);
	if (r || !v)
		return r;
	size_t saved = oci_json_push_key(j, "petrel");
	r = oci_json_expect(j, v, yajl_t_object);
	struct oci_state_petrel *p = &st->petrel;
	st->has_petrel = r == 0;
	yajl_val pid;
	if (!r)
		r = oci_json_field(j, v, "vmmPid", &pid);
	if (!r && pid) {
		int64_t n;
		size_t s = oci_json_push_key(j, "vmmPid");
		r = oci_json_int(j, pid, 0, INT32_MAX, &n);
		oci_json_pop(j, s);
		p->vmm_pid = (int)n;
	}
	struct oci_opt_u64 start = {0};
	if (!r)
		r = oci_json_get_opt_u64(j, v, "vmmStartTime", &start);
	p->vmm_start_time = start.value;
	if (!r)
		r = get_time(j, v, "vmmStarted", &p->vmm_started);
	if (!r)
		r = oci_json_get_string(j, v, "rootfsImage", &p->rootfs_image);
	if (!r)
		r = oci_json_get_string(j, v, "qmpSocket", &p->qmp_socket);
	if (!r)
		r = oci_json_get_string(j, v, "consoleSocket", &p->console_socket);
	if (!r)
		r = oci_json_get_string(j, v, "netns", &p->netns);
	if (!r)
		r = oci_json_get_string(j, v, "cgroupPath", &p->cgroup_path);
	if (!r)
		r = oci_json_get_u32(j, v, "vsockCid", &p->vsock_cid, NULL);
	if (!r)
		r = oci_json_get_kv_list(j, v, "extra", &p->extra);
	oci_json_pop(j, saved);
	return r;
}

static int parse_state(struct oci_json *j, yajl_val top, struct oci_state *st)
{
	char q[OCI_QUOTE_MAX];
	int r = get_required(j, top, "ociVersion", &st->oci_version);
	if (!r)
		r = get_required(j, top, "id", &st->id);
	if (!r && !st->id[0]) {
		size_t s = oci_json_push_key(j, "id");
		r = oci_json_fail(j, -EINVAL, "must not be empty");
		oci_json_pop(j, s);
	}

	autofree char *status = NULL;
	if (!r)
		r = get_required(j, top, "status", &status);
	if (!r) {
		int s = oci_status_from_name(status);
		if (s < 0) {
			size_t saved = oci_json_push_key(j, "status");
			r = oci_json_fail(j, -EINVAL,
					  "unknown status %s; allowed: creating, created, running, "
					  "paused, stopped",
					  oci_json_quote(status, q, sizeof(q)));
			oci_json_pop(j, saved);
		} else {
			st->status = (enum oci_status)s;
		}
	}

	yajl_val pid = NULL;
	if (!r)
		r = oci_json_field(j, top, "pid", &pid);
	if (!r && pid) {
		int64_t n;
		size_t s = oci_json_push_key(j, "pid");
		r = oci_json_int(j, pid, 0, INT32_MAX, &n);
		oci_json_pop(j, s);
		st->pid = (int)n;
	}
	/* runtime.md: pid is required while there is a process. */
	if (!r && st->pid == 0 &&
	    (st->status == OCI_STATUS_CREATED || st->status == OCI_STATUS_RUNNING ||
	     st->status == OCI_STATUS_PAUSED))
		r = oci_json_missing(j, "pid",
				     "required when the status is created, running or paused");

	if (!r)
		r = get_required(j, top, "bundle", &st->bundle);
	if (!r && st->bundle[0] != '/') {
		size_t s = oci_json_push_key(j, "bundle");
		r = oci_json_fail(j, -EINVAL, "%s is not an absolute path",
				  oci_json_quote(st->bundle, q, sizeof(q)));
		oci_json_pop(j, s);
	}
	if (!r)
		r = oci_json_get_string(j, top, "rootfs", &st->rootfs);
	if (!r)
		r = get_time(j, top, "created", &st->created);
	if (!r)
		r = oci_json_get_string(j, top, "owner", &st->owner);
	if (!r)
		r = oci_json_get_kv_list(j, top, "annotations", &st->annotations);
	if (!r)
		r = parse_petrel(j, top, st);
	return r;
}

int oci_state_parse(const char *json, size_t len, struct oci_state **out, struct perr *err)
{
	struct oci_json j;
	oci_json_init(&j, STATE_FILE, err);
	*out = NULL;

	yajl_val tree;
	int r = oci_json_load_tree(&j, json, len, &tree);
	if (r)
		return r;
	struct oci_state *st = calloc(1, sizeof(*st));
	if (!st) {
		yajl_tree_free(tree);
		return oci_json_oom(&j);
	}
	r = parse_state(&j, tree, st);
	yajl_tree_free(tree);
	if (r) {
		oci_state_free(st);
		return r;
	}
	*out = st;
	return 0;
}

void oci_state_free(struct oci_state *st)
{
	if (!st)
		return;
	free(st->oci_version);
	free(st->id);
	free(st->bundle);
	free(st->rootfs);
	free(st->owner);
	oci_kv_list_free(&st->annotations);
	struct oci_state_petrel *p = &st->petrel;
	free(p->rootfs_image);
	free(p->qmp_socket);
	free(p->console_socket);
	free(p->netns);
	free(p->cgroup_path);
	oci_kv_list_free(&p->extra);
	free(st);
}
