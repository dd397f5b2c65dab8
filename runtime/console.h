/* --console-socket: a pty whose master goes to the caller by SCM_RIGHTS, as runc does. */
#ifndef PETREL_RUNTIME_CONSOLE_H
#define PETREL_RUNTIME_CONSOLE_H

#include <stddef.h>

#include "common/error.h"

/* Opens a pty pair (both O_CLOEXEC); *slave_name gets the slave's path. */
int console_pty_open(int *master, int *slave, char *slave_name, size_t size, struct perr *err);
/* Connects to the unix socket at path and sends fd with name as the data. */
int console_send_fd(const char *socket_path, int fd, const char *name, struct perr *err);

#endif
