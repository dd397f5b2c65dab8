/*
 * The runtime's operations, one per command (runtime/cmd-*.c parse flags and
 * call one of these). All take the --root directory; errors use runc's texts
 * where its callers match them (container.h).
 */
#ifndef PETREL_RUNTIME_LIFECYCLE_H
#define PETREL_RUNTIME_LIFECYCLE_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/error.h"
#include "oci/oci.h"

struct petrel_create_opts {
	const char *root;
	const char *id;
	const char *bundle;	    /* NULL: the current directory */
	const char *pid_file;	    /* NULL: none */
	const char *console_socket; /* NULL: none */
	unsigned preserve_fds;
	bool debug;
	bool foreground;     /* `run` without --detach: a terminal may be inherited */
	bool systemd_cgroup; /* --systemd-cgroup: cgroupsPath is slice:prefix:name */
};

/* Builds the disk, starts petrel-vmm and returns once the agent has the
 * container created (status "created"). *vmm_pid (may be NULL) gets the VMM's
 * pid, which stays this process's child. On failure nothing is left. */
int petrel_create(const struct petrel_create_opts *o, pid_t *vmm_pid, struct perr *err);
/* Has the agent run process.args; poststart hooks; status "running". */
int petrel_start(const char *root, const char *id, struct perr *err);
/* Waits for the VMM (our child) and returns its status as a shell would
 * (N, or 128+signal), forwarding the signals this process gets to it. */
int petrel_wait_vmm(pid_t vmm_pid);
int petrel_kill(const char *root, const char *id, int sig, bool all, struct perr *err);
int petrel_delete(const char *root, const char *id, bool force, struct perr *err);

/* Writes the runc-shaped state document of id to out. */
int petrel_state(const char *root, const char *id, FILE *out, struct perr *err);
/* Every container under root: a table, or a JSON array with json. */
int petrel_list(const char *root, bool json, bool quiet, FILE *out, struct perr *err);
/* The container's host processes (the VMM, then every running exec's host
 * process): a table or a JSON array of pids. In cmd-ps.c. */
int petrel_ps(const char *root, const char *id, bool json, FILE *out, struct perr *err);
int petrel_pause(const char *root, const char *id, bool pause, struct perr *err);
/* linux.resources JSON (from a file, "-" for stdin): cpu limits go to the
 * VMM's host cgroup, memory.limit to the balloon; what cannot be applied to a
 * running VM is refused, naming the field. In cmd-update.c. */
int petrel_update(const char *root, const char *id, const char *resources_path, struct perr *err);
/* The runtime-spec features document. In cmd-features.c. */
int petrel_features(FILE *out, struct perr *err);

struct petrel_exec_opts {
	const char *root;
	const char *id;
	const char *process_file; /* --process: a runtime-spec process JSON */
	char **args;		  /* when no --process */
	size_t n_args;
	const char *const *env; /* -e, appended */
	size_t n_env;
	const char *cwd;
	const char *user; /* UID[:GID] */
	bool no_new_privs;
	bool tty;
	bool detach;
	const char *pid_file;
	const char *console_socket;
};

/* Runs a process in the container. Returns its status (foreground), 0 once
 * it runs (detach), or -1 with err. */
int petrel_exec(const struct petrel_exec_opts *o, struct perr *err);

#endif
