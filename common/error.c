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
	char prefix[PERR_MSG_MAX];
	char old[PERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return err->code;
}

void perr_clear(struct perr *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
