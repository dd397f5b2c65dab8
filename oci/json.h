/*
 * Internal to oci/: typed reading of a yajl tree that keeps the JSON path of
 * the value being read, so that every error names it:
 *   config.json: process.rlimits[2].type: unknown rlimit "RLIMIT_FOO"; ...
 * A reader pushes a key or an index, reads, and pops back to the saved
 * length. Absent keys and JSON null read as "not there".
 */
#ifndef PETREL_OCI_JSON_H
#define PETREL_OCI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "common/error.h"
#include "oci/oci.h"

#define OCI_JSON_PATH_MAX 256

struct oci_json {
	const char *file; /* "config.json": the first word of every message */
	struct perr *err;
	char path[OCI_JSON_PATH_MAX];
	size_t path_len;
};

void oci_json_init(struct oci_json *j, const char *file, struct perr *err);

/* Checks syntax (reporting "line L, column C: <yajl's message>"), nesting
 * depth and NUL characters, then builds the tree. The top level must be an
 * object. *out is freed with yajl_tree_free(). */
int oci_json_load_tree(struct oci_json *j, const char *text, size_t len, yajl_val *out);

/* "<file>: <path>: <message>" (just "<file>: <message>" at the top level);
 * never with a strerror suffix. Returns code. */
void oci_json_report(struct oci_json *j, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A macro so that the result is visibly `code` (to readers and analyzers). */
#define oci_json_fail(j, code, ...) (oci_json_report(j, code, __VA_ARGS__), (code))
/* "<path>.<key>: missing" */
int oci_json_missing(struct oci_json *j, const char *key, const char *why);

size_t oci_json_push_key(struct oci_json *j, const char *key);
size_t oci_json_push_index(struct oci_json *j, size_t index);
void oci_json_pop(struct oci_json *j, size_t saved);

/* "a string", "an object", ... */
const char *oci_json_type_name(yajl_val v);
/* s as a JSON string literal, escaped to stay on one line, shortened. */
const char *oci_json_quote(const char *s, char *buf, size_t size);
#define OCI_QUOTE_MAX 96

/* The value under key (NULL when absent or null); refuses duplicate keys. */
int oci_json_field(struct oci_json *j, yajl_val obj, const char *key, yajl_val *out);

/* Readers of the value at the current path. */
int oci_json_expect(struct oci_json *j, yajl_val v, yajl_type type);
int oci_json_string(struct oci_json *j, yajl_val v, char **out);
int oci_json_bool(struct oci_json *j, yajl_val v, bool *out);
int oci_json_int(struct oci_json *j, yajl_val v, int64_t min, int64_t max, int64_t *out);
int oci_json_uint(struct oci_json *j, yajl_val v, uint64_t max, uint64_t *out);
/* check (may be NULL) is called with the index path pushed. */
int oci_json_strv(struct oci_json *j, yajl_val v, struct oci_strv *out,
		  int (*check)(struct oci_json *j, const char *s));
int oci_json_kv_list(struct oci_json *j, yajl_val v, struct oci_kv_list *out);

/* Field readers: look key up in obj, read it with key pushed. Absent keys
 * leave *out untouched and return 0. */
int oci_json_get_string(struct oci_json *j, yajl_val obj, const char *key, char **out);
int oci_json_get_bool(struct oci_json *j, yajl_val obj, const char *key, bool *out);
int oci_json_get_u32(struct oci_json *j, yajl_val obj, const char *key, uint32_t *out,
		     bool *present);
int oci_json_get_opt_i64(struct oci_json *j, yajl_val obj, const char *key,
			 struct oci_opt_i64 *out);
int oci_json_get_opt_u64(struct oci_json *j, yajl_val obj, const char *key,
			 struct oci_opt_u64 *out);
int oci_json_get_strv(struct oci_json *j, yajl_val obj, const char *key, struct oci_strv *out,
		      int (*check)(struct oci_json *j, const char *s));
int oci_json_get_kv_list(struct oci_json *j, yajl_val obj, const char *key,
			 struct oci_kv_list *out);

int oci_json_oom(struct oci_json *j);

void oci_strv_free(struct oci_strv *sv);
void oci_kv_list_free(struct oci_kv_list *kv);

#endif
