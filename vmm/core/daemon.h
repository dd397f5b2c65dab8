/*
 * -daemonize and -pidfile. The daemon is started the classic way (fork,
 * setsid, fork) before anything else exists, but the process the user
 * started waits until the daemon reports: it exits 0 once the VM is built
 * and the pidfile written, 1 when the daemon failed (the daemon printed why
 * on the still-inherited stderr). Only then does the daemon chdir to / and
 * point its stdio at /dev/null, as QEMU does.
 */
#ifndef PETREL_DAEMON_H
#define PETREL_DAEMON_H

#include <sys/types.h>

#include "../../common/error.h"

struct daemon_ctx {
	int report_fd; /* write end of the pipe to the waiting parent; -1 when not a daemon */
};

/* Returns in the daemon only; the original process exits with the daemon's
 * start status. Call before any thread exists. */
int daemon_start(struct daemon_ctx *d, struct perr *err);
/* The daemon started: releases the parent (exit 0), chdir("/"), stdio to
 * /dev/null. A no-op when not daemonized. */
int daemon_ready(struct daemon_ctx *d, struct perr *err);

/* Writes the pid in decimal, without a newline, atomically: a temporary file
 * in the same directory renamed over path. */
int pidfile_write(const char *path, pid_t pid, struct perr *err);

/* path made absolute against the current directory (for removal after the
 * daemon's chdir). -ENAMETOOLONG when it does not fit. */
int path_make_absolute(const char *path, char *out, size_t size);

#endif
