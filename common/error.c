#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int perr_vset(struct perr *err, int code, int with_errno, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (with_errno && code < 0 && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(-code));
	return code;
}

int perr_set(struct perr *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	perr_vset(err, code, 1, fmt, ap);
	va_end(ap);
	return code;
}

int perr_setx(struct perr *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	perr_vset(err, code, 0, fmt, ap);
	va_end(ap);
	return code;
}

int perr_wrap(struct perr *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char old[PERR_MSG_MAX];
	memcpy(old, err->msg, sizeof(old));
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	/* Append ": old", truncating the old message if the whole does not fit. */
	size_t off = (size_t)n < sizeof(err->msg) ? (size_t)n : sizeof(err->msg) - 1;
	const char sep[] = ": ";
	size_t room = sizeof(err->msg) - 1 - off;
	size_t sep_len = room < 2 ? room : 2;
	memcpy(err->msg + off, sep, sep_len);
	off += sep_len;
	room -= sep_len;
	size_t old_len = strnlen(old, sizeof(old) - 1);
	if (old_len > room)
		old_len = room;
	memcpy(err->msg + off, old, old_len);
	err->msg[off + old_len] = '\0';
	return err->code;
}

void perr_clear(struct perr *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
