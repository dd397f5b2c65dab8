/*
 * QMP building blocks shared by the session and the command families: error
 * classes, argument checking (with QEMU's wording, so that clients matching
 * on QEMU's messages keep working) and JSON output helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cleanup.h"
#include "qmp-internal.h"

#ifndef PETREL_VERSION
#define PETREL_VERSION "unknown"
#endif

/* ---- Errors ---- */

static const char *const qmp_error_class_names[] = {
    [QMP_ERROR_GENERIC] = "GenericError",
    [QMP_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
    [QMP_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
    [QMP_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
    [QMP_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
};

const char *qmp_error_class_name(enum qmp_error_class cls)
{
	if ((size_t)cls < ARRAY_SIZE(qmp_error_class_names) && qmp_error_class_names[cls])
		return qmp_error_class_names[cls];
	return "GenericError";
}

int qmp_error_set(struct qmp_error *e, enum qmp_error_class cls, const char *fmt, ...)
{
	va_list ap;
	e->cls = cls;
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive */
	vsnprintf(e->desc, sizeof(e->desc), fmt, ap);
	va_end(ap);
	return -1;
}

int qmp_error_from_perr(struct qmp_error *e, const struct perr *err)
{
	return qmp_error_set(e, QMP_ERROR_GENERIC, "%s",
			     err->msg[0] ? err->msg : "operation failed");
}

/* ---- Arguments ---- */

yajl_val qmp_arg_get(yajl_val args, const char *name)
{
	if (!YAJL_IS_OBJECT(args))
		return NULL;
	for (size_t i = 0; i < args->u.object.len; i++)
		if (strcmp(args->u.object.keys[i], name) == 0)
			return args->u.object.values[i];
	return NULL;
}

const char *qmp_arg_string(yajl_val args, const char *name)
{
	yajl_val v = qmp_arg_get(args, name);
	return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

bool qmp_arg_bool(yajl_val args, const char *name, bool def)
{
	yajl_val v = qmp_arg_get(args, name);
	if (YAJL_IS_TRUE(v))
		return true;
	if (YAJL_IS_FALSE(v))
		return false;
	return def;
}

long long qmp_arg_int(yajl_val args, const char *name, long long def)
{
	yajl_val v = qmp_arg_get(args, name);
	return YAJL_IS_INTEGER(v) ? v->u.number.i : def;
}

static bool qmp_arg_type_ok(enum qmp_arg_type type, yajl_val v)
{
	switch (type) {
	case QMP_ARG_STRING:
		return YAJL_IS_STRING(v);
	case QMP_ARG_INT:
		return YAJL_IS_INTEGER(v);
	case QMP_ARG_BOOL:
		return YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v);
	case QMP_ARG_NUMBER:
		return YAJL_IS_NUMBER(v);
	case QMP_ARG_OBJECT:
		return YAJL_IS_OBJECT(v);
	case QMP_ARG_ARRAY:
		return YAJL_IS_ARRAY(v);
	case QMP_ARG_ANY:
		return true;
	}
	return false;
}

/* The type names QEMU's input visitor prints. */
static const char *qmp_arg_type_name(enum qmp_arg_type type)
{
	switch (type) {
	case QMP_ARG_STRING:
		return "string";
	case QMP_ARG_INT:
		return "integer";
	case QMP_ARG_BOOL:
		return "boolean";
	case QMP_ARG_NUMBER:
		return "number";
	case QMP_ARG_OBJECT:
		return "object";
	case QMP_ARG_ARRAY:
		return "array";
	case QMP_ARG_ANY:
		return "any";
	}
	return "?";
}

static const struct qmp_arg *qmp_arg_spec_find(const struct qmp_arg *spec, const char *name)
{
	for (; spec && spec->name; spec++)
		if (strcmp(spec->name, name) == 0)
			return spec;
	return NULL;
}

int qmp_args_check(const struct qmp_arg *spec, bool allow_extra, yajl_val args,
		   struct qmp_error *err)
{
	size_t n = YAJL_IS_OBJECT(args) ? args->u.object.len : 0;

	for (size_t i = 0; i < n; i++) {
		const char *key = args->u.object.keys[i];
		const struct qmp_arg *a = qmp_arg_spec_find(spec, key);
		if (!a) {
			if (allow_extra)
				continue;
			return qmp_error_set(err, QMP_ERROR_GENERIC, "Parameter '%s' is unexpected",
					     key);
		}
		if (!qmp_arg_type_ok(a->type, args->u.object.values[i]))
			return qmp_error_set(err, QMP_ERROR_GENERIC,
					     "Invalid parameter type for '%s', expected: %s", key,
					     qmp_arg_type_name(a->type));
	}
	for (; spec && spec->name; spec++)
		if (spec->required && !qmp_arg_get(args, spec->name))
			return qmp_error_set(err, QMP_ERROR_GENERIC, "Parameter '%s' is missing",
					     spec->name);
	return 0;
}

static int qmp_strcmp_ptrs(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *qmp_object_duplicate_key(yajl_val obj)
{
	if (!YAJL_IS_OBJECT(obj) || obj->u.object.len < 2)
		return NULL;
	size_t n = obj->u.object.len;
	/* Sorting keeps this O(n log n): an object may hold thousands of keys. */
	autofree const char **keys = malloc(n * sizeof(*keys));
	if (!keys)
		return NULL;
	memcpy(keys, obj->u.object.keys, n * sizeof(*keys));
	qsort(keys, n, sizeof(*keys), qmp_strcmp_ptrs);
	for (size_t i = 1; i < n; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0)
			return keys[i];
	return NULL;
}

/* ---- Output ---- */

void qmp_gen_string(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void qmp_gen_key_string(yajl_gen g, const char *key, const char *val)
{
	qmp_gen_string(g, key);
	qmp_gen_string(g, val);
}

void qmp_gen_key_int(yajl_gen g, const char *key, long long val)
{
	qmp_gen_string(g, key);
	yajl_gen_integer(g, val);
}

void qmp_gen_key_bool(yajl_gen g, const char *key, bool val)
{
	qmp_gen_string(g, key);
	yajl_gen_bool(g, val);
}

void qmp_gen_empty_object(yajl_gen g)
{
	yajl_gen_map_open(g);
	yajl_gen_map_close(g);
}

void qmp_gen_version(yajl_gen g)
{
	yajl_gen_map_open(g);
	qmp_gen_string(g, "qemu");
	yajl_gen_map_open(g);
	qmp_gen_key_int(g, "micro", QMP_QEMU_MICRO);
	qmp_gen_key_int(g, "minor", QMP_QEMU_MINOR);
	qmp_gen_key_int(g, "major", QMP_QEMU_MAJOR);
	yajl_gen_map_close(g);
	qmp_gen_key_string(g, "package", "petrel-vmm " PETREL_VERSION);
	yajl_gen_map_close(g);
}

void qmp_gen_value(yajl_gen g, yajl_val v)
{
	if (!v) {
		yajl_gen_null(g);
		return;
	}
	switch (v->type) {
	case yajl_t_string:
		qmp_gen_string(g, v->u.string);
		break;
	case yajl_t_number:
		/* The client's own spelling, so that an id comes back unchanged. */
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
		break;
	case yajl_t_object:
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			qmp_gen_string(g, v->u.object.keys[i]);
			qmp_gen_value(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
		break;
	case yajl_t_array:
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			qmp_gen_value(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
		break;
	case yajl_t_true:
		yajl_gen_bool(g, 1);
		break;
	case yajl_t_false:
		yajl_gen_bool(g, 0);
		break;
	case yajl_t_null:
	case yajl_t_any:
	default:
		yajl_gen_null(g);
		break;
	}
}
