/*
 * Typed reading of yajl trees with the JSON path in every error.
 *
 * Documents are parsed twice: once with yajl's event parser, which knows the
 * byte offset of a syntax error (yajl_tree_parse() only gives a multi-line
 * excerpt) and lets us bound the nesting depth (yajl_tree_free() recurses)
 * and refuse "\u0000" (a C string would silently end there); then, once the
 * text is known to be good, with yajl_tree_parse(). yajl_tree_parse() is
 * thus never handed bad input, whose error path leaks in yajl 2.1.0.
 */
#include "oci/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "common/cleanup.h"

void oci_json_init(struct oci_json *j, const char *file, struct perr *err)
{
	memset(j, 0, sizeof(*j));
	j->file = file;
	j->err = err;
}

void oci_json_report(struct oci_json *j, int code, const char *fmt, ...)
{
	char msg[PERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (j->path_len)
		perr_setx(j->err, code, "%s: %s: %s", j->file, j->path, msg);
	else
		perr_setx(j->err, code, "%s: %s", j->file, msg);
}

int oci_json_oom(struct oci_json *j)
{
	perr_set(j->err, -ENOMEM, "%s", j->file);
	return -ENOMEM;
}

int oci_json_missing(struct oci_json *j, const char *key, const char *why)
{
	size_t saved = oci_json_push_key(j, key);
	int r = why ? oci_json_fail(j, -EINVAL, "missing (%s)", why)
		    : oci_json_fail(j, -EINVAL, "missing");
	oci_json_pop(j, saved);
	return r;
}

/* ---- the path ---- */

static void path_append(struct oci_json *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void path_append(struct oci_json *j, const char *fmt, ...)
{
	size_t room = sizeof(j->path) - j->path_len;
	va_list ap;
	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	int n = vsnprintf(j->path + j->path_len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		j->path[j->path_len] = '\0';
	else if ((size_t)n >= room)
		j->path_len = sizeof(j->path) - 1; /* truncated, still terminated */
	else
		j->path_len += (size_t)n;
}

static bool is_identifier(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

static size_t push_key(struct oci_json *j, const char *key, bool brackets)
{
	size_t saved = j->path_len;
	if (!brackets && is_identifier(key)) {
		path_append(j, "%s%s", j->path_len ? "." : "", key);
	} else {
		char q[OCI_QUOTE_MAX];
		path_append(j, "[%s]", oci_json_quote(key, q, sizeof(q)));
	}
	return saved;
}

size_t oci_json_push_index(struct oci_json *j, size_t index)
{
	size_t saved = j->path_len;
	path_append(j, "[%zu]", index);
	return saved;
}

size_t oci_json_push_key(struct oci_json *j, const char *key)
{
	return push_key(j, key, false);
}

/* Keys of maps (annotations, sysctl) are data, not names: always quoted. */
static size_t push_map_key(struct oci_json *j, const char *key)
{
	return push_key(j, key, true);
}

void oci_json_pop(struct oci_json *j, size_t saved)
{
	j->path_len = saved;
	j->path[saved] = '\0';
}

/* ---- messages ---- */

const char *oci_json_type_name(yajl_val v)
{
	if (!v)
		return "nothing";
	switch (v->type) {
	case yajl_t_string:
		return "a string";
	case yajl_t_number:
		return "a number";
	case yajl_t_object:
		return "an object";
	case yajl_t_array:
		return "an array";
	case yajl_t_true:
	case yajl_t_false:
		return "a boolean";
	case yajl_t_null:
		return "null";
	default:
		return "an unknown value";
	}
}

const char *oci_json_quote(const char *s, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (size < 8) {
		if (size)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	/* Keep room for `..."` and the NUL. */
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[7];
		size_t n;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c == '\n' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : 't';
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		} else {
			esc[0] = (char)c;
			n = 1;
		}
		if (o + n + 5 > size) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, esc, n);
		o += n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* A number's text for a message, shortened. */
static const char *number_text(yajl_val v, char *buf, size_t size)
{
	const char *r = v->u.number.r ? v->u.number.r : "?";
	size_t len = strlen(r);
	if (len < size) {
		memcpy(buf, r, len + 1);
	} else {
		memcpy(buf, r, size - 4);
		memcpy(buf + size - 4, "...", 4);
	}
	return buf;
}

/* ---- syntax check ---- */

struct syntax_scan {
	unsigned depth;
	bool too_deep;
	bool has_nul;
};

static int scan_open(void *ctx)
{
	struct syntax_scan *s = ctx;
	if (++s->depth > OCI_JSON_MAX_DEPTH) {
		s->too_deep = true;
		return 0;
	}
	return 1;
}

static int scan_close(void *ctx)
{
	struct syntax_scan *s = ctx;
	s->depth--;
	return 1;
}

static int scan_string(void *ctx, const unsigned char *str, size_t len)
{
	struct syntax_scan *s = ctx;
	if (memchr(str, 0, len)) {
		s->has_nul = true;
		return 0;
	}
	return 1;
}

static int scan_number(void *ctx, const char *num, size_t len)
{
	(void)ctx;
	(void)num;
	(void)len;
	return 1; /* raw: huge numbers are judged later, with their path */
}

static void line_column(const char *text, size_t off, size_t *line, size_t *col)
{
	size_t l = 1, start = 0;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			l++;
			start = i + 1;
		}
	}
	*line = l;
	*col = off - start + 1;
}

static int check_syntax(struct oci_json *j, const char *text, size_t len)
{
	static const yajl_callbacks callbacks = {
	    .yajl_number = scan_number,
	    .yajl_string = scan_string,
	    .yajl_start_map = scan_open,
	    .yajl_map_key = scan_string,
	    .yajl_end_map = scan_close,
	    .yajl_start_array = scan_open,
	    .yajl_end_array = scan_close,
	};
	struct syntax_scan scan = {0};
	yajl_handle h = yajl_alloc(&callbacks, NULL, &scan);
	if (!h)
		return oci_json_oom(j);

	bool at_end = false;
	yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
	if (st == yajl_status_ok) {
		st = yajl_complete_parse(h);
		at_end = true;
	}
	if (st == yajl_status_ok) {
		yajl_free(h);
		return 0;
	}

	/* yajl has consumed the offending token: point at its last byte, or
	 * just past the text when the document ended early. */
	size_t off = len;
	unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
	if (!at_end) {
		off = yajl_get_bytes_consumed(h);
		if (off > len)
			off = len;
		/* ...except for a comment, which yajl puts back before failing. */
		bool comment =
		    msg && strstr((const char *)msg, "comment") && off < len && text[off] == '/';
		if (off > 0 && !comment)
			off--;
	}
	size_t line, col;
	line_column(text, off, &line, &col);

	int r = -EINVAL;
	if (scan.too_deep) {
		perr_setx(j->err, -EINVAL, "%s: line %zu, column %zu: nested deeper than %d levels",
			  j->file, line, col, OCI_JSON_MAX_DEPTH);
	} else if (scan.has_nul) {
		perr_setx(j->err, -EINVAL,
			  "%s: line %zu, column %zu: string contains a NUL character (\\u0000)",
			  j->file, line, col);
	} else {
		char text_msg[256] = "parse error";
		if (msg)
			snprintf(text_msg, sizeof(text_msg), "%s", (const char *)msg);
		/* yajl ends its messages with a newline and sometimes a period. */
		size_t n = strlen(text_msg);
		while (n && (text_msg[n - 1] == '\n' || text_msg[n - 1] == '.' ||
			     text_msg[n - 1] == ' '))
			text_msg[--n] = '\0';
		perr_setx(j->err, -EINVAL, "%s: line %zu, column %zu: %s", j->file, line, col,
			  text_msg);
	}
	if (msg)
		yajl_free_error(h, msg);
	yajl_free(h);
	return r;
}

int oci_json_load_tree(struct oci_json *j, const char *text, size_t len, yajl_val *out)
{
	*out = NULL;
	if (len > OCI_JSON_MAX_SIZE)
		return oci_json_fail(j, -EFBIG, "%zu bytes, more than the %u allowed", len,
				     OCI_JSON_MAX_SIZE);
	size_t i = 0;
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
		i++;
	if (i == len)
		return oci_json_fail(j, -EINVAL, "empty file (expected a JSON object)");

	int r = check_syntax(j, text, len);
	if (r)
		return r;

	/* The text is known to be one valid document without NUL bytes, so
	 * the copy's strlen() is len. */
	char *copy = malloc(len + 1);
	if (!copy)
		return oci_json_oom(j);
	memcpy(copy, text, len);
	copy[len] = '\0';

	char errbuf[256] = "";
	yajl_val tree = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
	free(copy);
	if (!tree) {
		if (!errbuf[0] || strstr(errbuf, "memory"))
			return oci_json_oom(j);
		for (char *p = errbuf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		return oci_json_fail(j, -EINVAL, "%s", errbuf);
	}
	if (!YAJL_IS_OBJECT(tree)) {
		r = oci_json_fail(j, -EINVAL, "expected an object at the top level, got %s",
				  oci_json_type_name(tree));
		yajl_tree_free(tree);
		return r;
	}
	*out = tree;
	return 0;
}

/* ---- values ---- */

int oci_json_field(struct oci_json *j, yajl_val obj, const char *key, yajl_val *out)
{
	yajl_val found = NULL;
	bool seen = false;
	*out = NULL;
	for (size_t i = 0; i < obj->u.object.len; i++) {
		if (strcmp(obj->u.object.keys[i], key) != 0)
			continue;
		if (seen) {
			char q[OCI_QUOTE_MAX];
			return oci_json_fail(j, -EINVAL, "duplicate key %s",
					     oci_json_quote(key, q, sizeof(q)));
		}
		seen = true;
		found = obj->u.object.values[i];
	}
	if (found && !YAJL_IS_NULL(found))
		*out = found;
	return 0;
}

int oci_json_expect(struct oci_json *j, yajl_val v, yajl_type type)
{
	static const char *const want[] = {
	    [yajl_t_string] = "a string",  [yajl_t_number] = "a number",
	    [yajl_t_object] = "an object", [yajl_t_array] = "an array",
	    [yajl_t_true] = "a boolean",   [yajl_t_false] = "a boolean",
	    [yajl_t_null] = "null",
	};
	bool ok = v && (v->type == type || (type == yajl_t_true && v->type == yajl_t_false));
	if (ok)
		return 0;
	return oci_json_fail(j, -EINVAL, "expected %s, got %s", want[type], oci_json_type_name(v));
}

int oci_json_string(struct oci_json *j, yajl_val v, char **out)
{
	int r = oci_json_expect(j, v, yajl_t_string);
	if (r)
		return r;
	char *s = strdup(v->u.string);
	if (!s)
		return oci_json_oom(j);
	free(*out);
	*out = s;
	return 0;
}

int oci_json_bool(struct oci_json *j, yajl_val v, bool *out)
{
	int r = oci_json_expect(j, v, yajl_t_true);
	if (r)
		return r;
	*out = YAJL_IS_TRUE(v);
	return 0;
}

/* The number's text must be an integer: no fraction, no exponent. */
static int integer_text(struct oci_json *j, yajl_val v, const char **text)
{
	if (!YAJL_IS_NUMBER(v))
		return oci_json_fail(j, -EINVAL, "expected an integer, got %s",
				     oci_json_type_name(v));
	const char *r = v->u.number.r;
	if (!r || strpbrk(r, ".eE")) {
		char nb[48];
		return oci_json_fail(j, -EINVAL, "expected an integer, got %s",
				     number_text(v, nb, sizeof(nb)));
	}
	*text = r;
	return 0;
}

int oci_json_int(struct oci_json *j, yajl_val v, int64_t min, int64_t max, int64_t *out)
{
	const char *text = NULL;
	int r = integer_text(j, v, &text);
	if (r)
		return r;
	errno = 0;
	char *end;
	long long n = strtoll(text, &end, 10);
	if (errno || *end || n < min || n > max) {
		char nb[48];
		return oci_json_fail(j, -ERANGE, "%s is out of range (%" PRId64 "..%" PRId64 ")",
				     number_text(v, nb, sizeof(nb)), min, max);
	}
	*out = n;
	return 0;
}

int oci_json_uint(struct oci_json *j, yajl_val v, uint64_t max, uint64_t *out)
{
	const char *text = NULL;
	int r = integer_text(j, v, &text);
	if (r)
		return r;
	errno = 0;
	char *end;
	unsigned long long n = 0;
	bool ok = text[0] != '-' || strcmp(text, "-0") == 0;
	if (ok && text[0] != '-') {
		n = strtoull(text, &end, 10);
		ok = !errno && !*end && n <= max;
	}
	if (!ok) {
		char nb[48];
		return oci_json_fail(j, -ERANGE, "%s is out of range (0..%" PRIu64 ")",
				     number_text(v, nb, sizeof(nb)), max);
	}
	*out = n;
	return 0;
}

void oci_strv_free(struct oci_strv *sv)
{
	if (sv->v) {
		for (size_t i = 0; i < sv->n; i++)
			free(sv->v[i]);
		free(sv->v);
	}
	sv->v = NULL;
	sv->n = 0;
}

int oci_json_strv(struct oci_json *j, yajl_val v, struct oci_strv *out,
		  int (*check)(struct oci_json *j, const char *s))
{
	int r = oci_json_expect(j, v, yajl_t_array);
	if (r)
		return r;
	oci_strv_free(out);
	size_t n = v->u.array.len;
	out->v = calloc(n + 1, sizeof(*out->v));
	if (!out->v)
		return oci_json_oom(j);
	for (size_t i = 0; i < n; i++) {
		size_t saved = oci_json_push_index(j, i);
		r = oci_json_string(j, v->u.array.values[i], &out->v[i]);
		if (!r)
			out->n = i + 1;
		if (!r && check)
			r = check(j, out->v[i]);
		oci_json_pop(j, saved);
		if (r)
			return r;
	}
	return 0;
}

void oci_kv_list_free(struct oci_kv_list *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->items[i].key);
		free(kv->items[i].value);
	}
	free(kv->items);
	kv->items = NULL;
	kv->n = 0;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int oci_json_kv_list(struct oci_json *j, yajl_val v, struct oci_kv_list *out)
{
	int r = oci_json_expect(j, v, yajl_t_object);
	if (r)
		return r;
	size_t n = v->u.object.len;
	if (n == 0)
		return 0;

	/* Sorted copy of the keys: duplicates in O(n log n). */
	autofree const char **keys = calloc(n, sizeof(*keys));
	if (!keys)
		return oci_json_oom(j);
	memcpy(keys, v->u.object.keys, n * sizeof(*keys));
	qsort(keys, n, sizeof(*keys), cmp_strp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(keys[i - 1], keys[i]) == 0) {
			char q[OCI_QUOTE_MAX];
			return oci_json_fail(j, -EINVAL, "duplicate key %s",
					     oci_json_quote(keys[i], q, sizeof(q)));
		}
	}

	oci_kv_list_free(out);
	out->items = calloc(n, sizeof(*out->items));
	if (!out->items)
		return oci_json_oom(j);
	for (size_t i = 0; i < n; i++) {
		const char *key = v->u.object.keys[i];
		size_t saved = push_map_key(j, key);
		if (!*key)
			r = oci_json_fail(j, -EINVAL, "keys must not be empty");
		else
			r = oci_json_string(j, v->u.object.values[i], &out->items[i].value);
		oci_json_pop(j, saved);
		if (r)
			return r;
		out->items[i].key = strdup(key);
		out->n = i + 1;
		if (!out->items[i].key)
			return oci_json_oom(j);
	}
	return 0;
}

/* ---- field readers ---- */

#define GET_FIELD(j, obj, key, v)                         \
	yajl_val v;                                       \
	do {                                              \
		int r_ = oci_json_field(j, obj, key, &v); \
		if (r_)                                   \
			return r_;                        \
		if (!v)                                   \
			return 0;                         \
	} while (0)

int oci_json_get_string(struct oci_json *j, yajl_val obj, const char *key, char **out)
{
	GET_FIELD(j, obj, key, v);
	size_t saved = oci_json_push_key(j, key);
	int r = oci_json_string(j, v, out);
	oci_json_pop(j, saved);
	return r;
}

int oci_json_get_bool(struct oci_json *j, yajl_val obj, const char *key, bool *out)
{
	GET_FIELD(j, obj, key, v);
	size_t saved = oci_json_push_key(j, key);
	int r = oci_json_bool(j, v, out);
	oci_json_pop(j, saved);
	return r;
}

int oci_json_get_u32(struct oci_json *j, yajl_val obj, const char *key, uint32_t *out,
		     bool *present)
{
	GET_FIELD(j, obj, key, v);
	size_t saved = oci_json_push_key(j, key);
	uint64_t n;
	int r = oci_json_uint(j, v, UINT32_MAX, &n);
	oci_json_pop(j, saved);
	if (r)
		return r;
	*out = (uint32_t)n;
	if (present)
		*present = true;
	return 0;
}

int oci_json_get_opt_i64(struct oci_json *j, yajl_val obj, const char *key, struct oci_opt_i64 *out)
{
	GET_FIELD(j, obj, key, v);
	size_t saved = oci_json_push_key(j, key);
	int r = oci_json_int(j, v, INT64_MIN, INT64_MAX, &out->value);
	oci_json_pop(j, saved);
	out->set = r == 0;
	return r;
}

int oci_json_get_opt_u64(struct oci_json *j, yajl_val obj, const char *key, struct oci_opt_u64 *out)
{
	GET_FIELD(j, obj, key, v);
	size_t saved = oci_json_push_key(j, key);
	int r = oci_json_uint(j, v, UINT64_MAX, &out->value);
	oci_json_pop(j, saved);
	out->set = r == 0;
	return r;
}

int oci_json_get_strv(struct oci_json *j, yajl_val obj, const char *key, struct oci_strv *out,
		      int (*check)(struct oci_json *j, const char *s))
{
	GET_FIELD(j, obj, key, v);
	size_t saved = oci_json_push_key(j, key);
	int r = oci_json_strv(j, v, out, check);
	oci_json_pop(j, saved);
	return r;
}

int oci_json_get_kv_list(struct oci_json *j, yajl_val obj, const char *key, struct oci_kv_list *out)
{
	GET_FIELD(j, obj, key, v);
	size_t saved = oci_json_push_key(j, key);
	int r = oci_json_kv_list(j, v, out);
	oci_json_pop(j, saved);
	return r;
}
