/* A minimal blocking QMP client for the VMM's STATEDIR/qmp.sock: pause, resume, status. */
#ifndef PETREL_RUNTIME_QMP_CLIENT_H
#define PETREL_RUNTIME_QMP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* Connects, negotiates (qmp_capabilities), runs `command` without arguments
 * and checks for a "return"; an "error" reply becomes err's message. */
int qmp_client_run(const char *socket_path, const char *command, struct perr *err);
/* query-status: *paused is true when the VM's status is "paused". */
int qmp_client_query_paused(const char *socket_path, bool *paused, struct perr *err);
/* query-balloon (fails with the VMM's "No balloon device has been activated"
 * when the VM has none), then balloon to target bytes of guest RAM. */
int qmp_client_balloon(const char *socket_path, uint64_t target, struct perr *err);

/* A snapshot into dir (vm-template.c): stop, migrate to file:dir, quit. A
 * device that is busy (the agent's announcement connection still closing) is
 * given up to 2 s, the VM running meanwhile. */
int qmp_client_snapshot_and_quit(const char *socket_path, const char *dir, struct perr *err);

#endif
