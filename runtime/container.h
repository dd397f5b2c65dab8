/*
 * A container's on-host record: its state directory under --root, the
 * state.json in it, and whether its VMM (the container's pid) still runs.
 *
 *   ROOT/ID/              0700, made by create, removed by delete
 *     state.json          oci/ state document (tmp + rename)
 *     create.json         the agent's create message (docs/agent-protocol.md)
 *     rootfs.img          ext4 image made from root.path (unless an annotation names one)
 *     agent.sock          hybrid vsock socket of the VMM (agent on port 1024)
 *     qmp.sock            the VMM's QMP socket
 *     console.log         the guest kernel's serial console
 *     vmm.log             the VMM's own log
 *     execs/PID           one per running exec: its host process and start time
 */
#ifndef PETREL_RUNTIME_CONTAINER_H
#define PETREL_RUNTIME_CONTAINER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "oci/oci.h"

#define CONTAINER_DEFAULT_ROOT "/run/petrel"
#define CONTAINER_ID_MAX       1024

/* runc's texts, matched by containerd and podman. */
#define CONTAINER_ERR_NOT_EXIST	  "container does not exist"
#define CONTAINER_ERR_NOT_RUNNING "container not running"
#define CONTAINER_ERR_EXISTS	  "container with id exists"

/* [A-Za-z0-9_+.-], not empty, no leading dot. */
int container_id_validate(const char *id, struct perr *err);

/* ROOT/ID, or ROOT/ID/NAME when name is not NULL; -ENAMETOOLONG when it does not fit. */
int container_path(const char *root, const char *id, const char *name, char *buf, size_t size);

/* Reads ROOT/ID/state.json. A missing container is -ENOENT with
 * CONTAINER_ERR_NOT_EXIST as the message. */
int container_load(const char *root, const char *id, struct oci_state **out, struct perr *err);
/* Writes ROOT/ID/state.json atomically (tmp file, fsync-free rename). */
int container_save(const char *root, const struct oci_state *st, struct perr *err);

/* Field 22 of /proc/PID/stat (start time in clock ticks after boot), and the
 * process state letter (field 3). -ENOENT when there is no such process. */
int proc_start_time(int pid, uint64_t *start, char *state_letter);

/* True when st's VMM still runs: the pid exists, is not a zombie, and has the
 * recorded start time (otherwise the pid was reused). */
bool container_vmm_alive(const struct oci_state *st);

/* The live status: stopped when the VMM is gone; paused when QMP says so;
 * otherwise what state.json recorded. */
enum oci_status container_status(const char *root, const struct oci_state *st);

/* Writes pid as a decimal without a newline, to path.tmp then renamed. */
int pid_file_write(const char *path, int pid, struct perr *err);

/* Writes len bytes to path atomically (path.tmp, then rename), with mode. */
int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
		      struct perr *err);

/* Serialises the commands that change a container (create, start, kill,
 * delete, pause, resume, update), as runc's lock does: an exclusive flock on
 * ROOT/.locks/ID (made, with ROOT, when missing), waited for. *fd_out holds
 * the lock until closed. Readers (state, list, ps) take no lock. */
int container_lock(const char *root, const char *id, int *fd_out, struct perr *err);
/* The same for a container that must exist: -ENOENT with
 * CONTAINER_ERR_NOT_EXIST (and no lock file made) when it does not, or when a
 * delete removed it while we waited. */
int container_lock_existing(const char *root, const char *id, int *fd_out, struct perr *err);
/* Removes ROOT/.locks/ID while its lock is held (delete): a waiter that
 * then gets the lock on the unlinked file sees it and takes a fresh one. */
void container_lock_remove(const char *root, const char *id);

/* The host processes that stand for exec'd processes: each `petrel exec`
 * host process registers itself (ROOT/ID/execs/PID holding its start time)
 * once the process runs, and unregisters when it ends. */
int container_exec_register(const char *root, const char *id, int pid, struct perr *err);
void container_exec_unregister(const char *root, const char *id, int pid);
/* The container's host pids: the VMM (when alive), then every registered
 * exec host process still alive with its recorded start time. *pids is
 * malloc'd (possibly NULL with *n 0). */
int container_host_pids(const char *root, const struct oci_state *st, int **pids, size_t *n,
			struct perr *err);

/* Removes a directory tree (no symlinks followed); 0 when it is absent. */
int remove_tree(const char *path, struct perr *err);

#endif
