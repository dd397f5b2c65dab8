/*
 * Inside the QMP module: the command table, argument checking, errors and
 * JSON output helpers shared by session.c and the cmd-*.c families.
 *
 * Adding a command: write its handler in the family file (cmd-run.c,
 * cmd-query.c, ... or a new cmd-<family>.c), add a struct qmp_command to
 * that family's table, and, for a new family, list it in qmp_families[]
 * (session.c).
 */
#ifndef PETREL_QMP_INTERNAL_H
#define PETREL_QMP_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "qmp.h"

/* QEMU's error classes (QapiErrorClass). */
enum qmp_error_class {
	QMP_ERROR_GENERIC,	     /* "GenericError" */
	QMP_ERROR_COMMAND_NOT_FOUND, /* "CommandNotFound" */
	QMP_ERROR_DEVICE_NOT_ACTIVE, /* "DeviceNotActive" */
	QMP_ERROR_DEVICE_NOT_FOUND,  /* "DeviceNotFound" */
	QMP_ERROR_KVM_MISSING_CAP,   /* "KVMMissingCap" */
};

struct qmp_error {
	enum qmp_error_class cls;
	char desc[512];
};

/* Fills *e; returns -1 so a handler can `return qmp_error_set(...)`. */
int qmp_error_set(struct qmp_error *e, enum qmp_error_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A backend's struct perr as a GenericError. */
int qmp_error_from_perr(struct qmp_error *e, const struct perr *err);
const char *qmp_error_class_name(enum qmp_error_class cls);

/* ---- Arguments ---- */

enum qmp_arg_type {
	QMP_ARG_STRING,
	QMP_ARG_INT,
	QMP_ARG_BOOL,
	QMP_ARG_NUMBER, /* integer or floating point */
	QMP_ARG_OBJECT,
	QMP_ARG_ARRAY,
	QMP_ARG_ANY,
};

struct qmp_arg {
	const char *name; /* NULL ends a list */
	enum qmp_arg_type type;
	bool required;
};

/* Checks args (a JSON object, or NULL for none) against spec, a NULL-name
 * terminated list (NULL: the command takes no arguments). Unknown keys are
 * refused unless allow_extra. Uses QEMU's wording ("Parameter 'x' is
 * missing", "Invalid parameter type for 'x', expected: string", "Parameter
 * 'x' is unexpected"). */
int qmp_args_check(const struct qmp_arg *spec, bool allow_extra, yajl_val args,
		   struct qmp_error *err);

/* Typed lookups after qmp_args_check: NULL / def when absent. */
yajl_val qmp_arg_get(yajl_val args, const char *name);
const char *qmp_arg_string(yajl_val args, const char *name);
bool qmp_arg_bool(yajl_val args, const char *name, bool def);
long long qmp_arg_int(yajl_val args, const char *name, long long def);
/* A key that occurs twice in obj, or NULL. */
const char *qmp_object_duplicate_key(yajl_val obj);

/* ---- Commands ---- */

/*
 * A handler writes the value of "return" to out (e.g. qmp_gen_empty_object
 * for {}) and returns 0, or fills err and returns -1 (out is then thrown
 * away). It runs on the main-loop thread and must not block.
 */
typedef int (*qmp_command_fn)(struct qmp_session *s, yajl_val args, yajl_gen out,
			      struct qmp_error *err);

struct qmp_command {
	const char *name;
	qmp_command_fn run;
	const struct qmp_arg *args; /* NULL: no arguments */
	bool allow_extra_args;	    /* e.g. device_add's driver properties */
};

struct qmp_command_family {
	const struct qmp_command *commands;
	size_t n_commands;
};

extern const struct qmp_command_family qmp_family_control; /* session.c */
extern const struct qmp_command_family qmp_family_run;	   /* cmd-run.c */
extern const struct qmp_command_family qmp_family_query;   /* cmd-query.c */
extern const struct qmp_command_family qmp_family_balloon; /* cmd-balloon.c */
extern const struct qmp_command_family qmp_family_hotplug; /* cmd-hotplug.c */
extern const struct qmp_command_family qmp_family_migrate; /* cmd-migrate.c */

const struct qmp_command *qmp_command_find(const char *name);
/* Calls fn for every command, in table order. */
void qmp_command_foreach(void (*fn)(const struct qmp_command *cmd, void *opaque), void *opaque);

/* ---- Session internals, for handlers ---- */

struct qmp_session {
	const struct qmp_backend *be;
	void *be_opaque;
	qmp_write_fn write;
	void *write_opaque;
	bool negotiated;
	bool broken; /* the write callback failed: ignore everything */
	/* Runs after the current reply was written (quit: reply, then shut down). */
	void (*after_reply)(struct qmp_session *s);

	/* Framing: the message being received (see session.c). */
	char *msg;
	size_t msg_len;
	bool msg_active;     /* inside a top-level value */
	bool msg_discarding; /* too long or too deep: scanning to its end, not storing */
	bool msg_bare;	     /* a top-level number or keyword, ends at a delimiter */
	bool in_string;
	bool escaped;
	size_t depth; /* bracket depth; keeps counting while discarding */
};

/* ---- Output helpers ---- */

void qmp_gen_string(yajl_gen g, const char *s);
void qmp_gen_key_string(yajl_gen g, const char *key, const char *val);
void qmp_gen_key_int(yajl_gen g, const char *key, long long val);
void qmp_gen_key_bool(yajl_gen g, const char *key, bool val);
void qmp_gen_empty_object(yajl_gen g);
/* Any parsed JSON value, e.g. the client's "id", numbers spelled as received. */
void qmp_gen_value(yajl_gen g, yajl_val v);
/* The emulated QEMU version object {"major", "minor", "micro"} and package. */
void qmp_gen_version(yajl_gen g);

/* The QEMU version whose QMP dialect petrel-vmm speaks, reported in the
 * greeting and by query-version. */
#define QMP_QEMU_MAJOR 7
#define QMP_QEMU_MINOR 0
#define QMP_QEMU_MICRO 0

#endif
