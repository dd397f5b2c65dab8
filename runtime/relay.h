/*
 * The host side of one container process: the stdio, signal and exit-status
 * relay between this process's fds and a process in the guest, over one
 * agent connection (docs/agent-protocol.md). Two users:
 *
 *  - petrel-vmm in container mode (-petrel-container): connects to the agent
 *    through its own hybrid vsock socket, sends `create`, reports "ok\n" or
 *    "error: <message>\n" on the notify fd, then relays for process 1 (the
 *    container's init) until its `exit`;
 *  - `petrel exec`: the same for an `exec` request (process 2, 3, ...).
 *
 * Everything runs on the caller's event loop: the connection is made without
 * blocking (retried every 100 ms until the agent listens, within the connect
 * timeout), signals arrive through a signalfd. The signals in
 * relay_forwarded_signals() must be blocked (sigprocmask) before any thread
 * starts; they are sent to the process as `signal`, SIGWINCH as `resize`
 * when the input is a terminal.
 *
 * Output never blocks the loop: out_fd and err_fd are written without
 * blocking (pipes and terminals through a non-blocking reopen of their own),
 * at most about 1 MiB is queued, and beyond that the agent connection is not
 * read until the queue drains (back-pressure to the guest). `done` comes once
 * the queued output is written (or its reader is gone).
 */
#ifndef PETREL_RUNTIME_RELAY_H
#define PETREL_RUNTIME_RELAY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/agent-proto.h"
#include "common/error.h"

struct eventloop;
struct relay;

/* Called once: the process's status (N, or 128+signal), or -1 when the relay
 * failed (the reason in err). */
typedef void (*relay_done_fn)(void *opaque, int status, const struct perr *err);

struct relay_config {
	const char *uds_path; /* the hybrid vsock socket; NULL when conn_fd is given */
	uint32_t port;	      /* AGENT_VSOCK_PORT */
	int conn_fd;	      /* an already connected agent stream (tests), else -1 */
	/* Also listen on uds_path_AGENT_READY_PORT, where the hybrid vsock device
	 * brings the agent's "listening" announcement: connect on it at once
	 * instead of at the next retry. */
	bool await_ready;
	unsigned retry_ms; /* between connect attempts; 0: 100 ms */
	unsigned connect_timeout_ms;
	/* The request that makes the process: AGENT_MSG_CREATE or AGENT_MSG_EXEC.
	 * Copied by reference: it must live until the relay reports. */
	const struct agent_msg *request;
	/* When set, these bytes are sent as the request's message frame instead
	 * of encoding `request` (which is still read, for process.terminal): the
	 * runtime's create.json may carry fields this build does not decode
	 * (`network`). */
	const char *request_raw;
	size_t request_raw_len;
	int notify_fd; /* "ok\n" / "error: ...\n", then closed by the relay; -1 for none */
	int in_fd, out_fd, err_fd; /* the host side of the process's stdio; -1 to skip */
	bool forward_signals;	   /* create a signalfd for relay_forwarded_signals() */
	relay_done_fn done;
	/* Optional: called once the agent reported the process made (its id). */
	void (*running)(void *opaque, uint32_t id);
	void *opaque;
};

/* The signals forwarded to the process (plus SIGWINCH): every catchable
 * asynchronous signal but SIGCHLD and SIGPIPE. */
void relay_forwarded_signals(sigset_t *set);

/* Registers with loop and starts connecting. */
int relay_start(struct eventloop *loop, const struct relay_config *cfg, struct relay **out,
		struct perr *err);
/* Removes it from the loop, closes what it opened (not the stdio fds),
 * restores the terminal. NULL is a no-op. */
void relay_destroy(struct relay *r);

/* The process's id in the agent, 0 until known. */
uint32_t relay_process_id(const struct relay *r);

/* Reads DIR/create.json, the create message `petrel create` prepared, and
 * decodes it (agent_msg_decode checks it as the agent would). *raw gets the
 * bytes as written (malloc'd), to be sent as they are. */
int relay_load_create(const char *state_dir, struct agent_msg *msg, char **raw, size_t *raw_len,
		      struct perr *err);

#endif
