/*
 * Command-line flags the way runc's callers write them: `--flag value`,
 * `--flag=value`, `-flag value` (Go's flag package), short `-a`, booleans
 * as `--detach` or `--detach=false`. Parsing stops at "--" and, unless
 * interleaved, at the first positional argument.
 */
#ifndef PETREL_RUNTIME_FLAGS_H
#define PETREL_RUNTIME_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define FLAG_MAX_VALUES 256

struct flag {
	const char *name;    /* long name, no dashes */
	char short_name;     /* 0 when none */
	bool has_value;	     /* takes a value */
	bool repeat;	     /* values collected in values[] (-e A -e B) */
	bool optional_value; /* `--rootless` or `--rootless=auto`: a value only after '=' */
	/* results */
	bool set;	   /* given (for booleans: true unless =false) */
	const char *value; /* the last value */
	const char *values[FLAG_MAX_VALUES];
	size_t n_values;
};

/* Parses argv[0..argc-1] (no program name). Positional arguments go to
 * pos[0..*n_pos-1] (at most max_pos; with interleave false, everything from
 * the first positional on). Unknown flags and missing values are errors
 * naming the flag. */
int flags_parse(struct flag *flags, size_t n_flags, int argc, char **argv, bool interleave,
		char **pos, size_t max_pos, size_t *n_pos, struct perr *err);

/* The flag called name (must exist in the table). */
struct flag *flags_get(struct flag *flags, size_t n_flags, const char *name);

/* Signal names as kill(1) and runc take them: "TERM", "SIGTERM", "term",
 * "15". Returns the number, or -EINVAL. */
int signal_parse(const char *s);
/* "TERM" for 15; NULL when unknown. */
const char *signal_name(int sig);

#endif
