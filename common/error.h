/*
 * An error object that carries context up the stack:
 *   perr_set(err, -ENOENT, "open %s", path)  ->  "open /x: No such file or directory"
 *   perr_wrap(err, "drive rootfs")           ->  "drive rootfs: open /x: No such ..."
 * Functions return 0 or a negative errno and fill *err when it is not NULL.
 */
#ifndef PETREL_ERROR_H
#define PETREL_ERROR_H

#include <stddef.h>

#define PERR_MSG_MAX 1024

struct perr {
	int code; /* negative errno, 0 when no error */
	char msg[PERR_MSG_MAX];
};

/* Sets the message; when code is a negative errno, ": strerror" is appended.
 * Returns code, so callers can write `return perr_set(err, -EINVAL, ...)`. */
int perr_set(struct perr *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like perr_set but without the strerror suffix. */
int perr_setx(struct perr *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes "context: " to the message; returns err->code. */
int perr_wrap(struct perr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void perr_clear(struct perr *err);

#endif
