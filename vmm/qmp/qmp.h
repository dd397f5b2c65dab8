/*
 * QMP (QEMU Machine Protocol) for petrel-vmm: a unix socket server that
 * speaks QEMU's QMP dialect (see docs/qmp.md for the commands and events).
 *
 * Three layers, each usable on its own:
 *   - struct qmp_backend: what the commands may ask of a VM. The default,
 *     qmp_vm_backend, wraps vmm/core/vm_control.h; tests plug a fake.
 *   - struct qmp_session: one client's protocol state (greeting, negotiation,
 *     framing, dispatch, events). Pure: bytes in, bytes out through a write
 *     callback, no sockets, so unit tests and the fuzzer drive it directly.
 *   - struct qmp_server: the listening socket on the main event loop, one
 *     active client at a time, bounded output buffering.
 */
#ifndef PETREL_QMP_H
#define PETREL_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "../../common/error.h"
#include "../core/eventloop.h"
#include "../core/vm_control.h"

/* One message (a JSON value) may not exceed this many bytes. */
#define QMP_MAX_MESSAGE 65536 /* 64 KiB */
/* Nesting deeper than this is refused (no QMP command needs more). */
#define QMP_MAX_DEPTH 64
/* Output queued for a client that does not read; beyond it the client is dropped. */
#define QMP_MAX_PENDING_OUTPUT 1048576 /* 1 MiB */

/*
 * What the commands need from a VM; opaque is the backend's own (a struct vm
 * for qmp_vm_backend). Called on the main-loop thread only.
 */
struct qmp_backend {
	/* Install (or, with hook == NULL, remove) the event hook. */
	void (*set_event_hook)(void *opaque, vm_event_hook hook, void *hook_opaque);
	enum vm_run_state (*get_state)(void *opaque);
	int (*pause)(void *opaque, struct perr *err);
	int (*resume)(void *opaque, struct perr *err);
	void (*request_shutdown)(void *opaque, enum vm_shutdown_reason reason);
	int (*request_powerdown)(void *opaque, struct perr *err);
	int (*request_reset)(void *opaque, struct perr *err);
	unsigned (*query_cpus)(void *opaque, struct vm_cpu_info *out, unsigned max);
	const char *(*name)(void *opaque); /* NULL or "" when the VM has no name */
	/* The balloon; NULL or -ENODEV when the VM has no balloon device. */
	int (*balloon_query)(void *opaque, struct vm_balloon_info *out);
	int (*balloon_set_target)(void *opaque, uint64_t target_bytes, struct perr *err);
	/* Hot plug (core/hotplug.h); NULL when the VM has none. */
	struct hotplug *(*hotplug)(void *opaque);
	/* migrate to file:DIR (vm_snapshot_save); NULL when snapshots are not supported. */
	int (*snapshot_save)(void *opaque, const char *dir, struct perr *err);
};

/* Wraps vm_control.h; opaque is a struct vm *. */
extern const struct qmp_backend qmp_vm_backend;

/* ---- Session: the protocol without sockets ---- */

struct qmp_session;

/* Appends len bytes of output; returns 0, or a negative errno to end the
 * session (qmp_session_feed then returns -EPIPE and does nothing more). */
typedef int (*qmp_write_fn)(void *opaque, const void *buf, size_t len);

struct qmp_session *qmp_session_new(const struct qmp_backend *be, void *be_opaque,
				    qmp_write_fn write, void *write_opaque);
void qmp_session_free(struct qmp_session *s);
/* Sends the greeting; call once, first. */
int qmp_session_greet(struct qmp_session *s);
/* Consumes client bytes: any number of messages, or parts of one. Returns 0,
 * or -EPIPE once the write callback has failed. */
int qmp_session_feed(struct qmp_session *s, const void *buf, size_t len);
/* Sends an event when the client has negotiated (dropped before that, as
 * QEMU does). ts is when it happened (CLOCK_REALTIME); NULL means now. */
int qmp_session_send_event(struct qmp_session *s, const struct vm_event *ev,
			   const struct timespec *ts);
bool qmp_session_negotiated(const struct qmp_session *s);

/* ---- Server: the -qmp unix socket ---- */

struct qmp_server;

/* Binds and listens on a unix socket at path (SOCK_CLOEXEC), registers with
 * loop, installs the VM's event hook. A stale socket at path is replaced; any
 * other existing file, or a socket another process listens on, is an error.
 * A failed create leaves nothing behind. */
int qmp_server_create(struct eventloop *loop, struct vm *vm, const char *path,
		      struct qmp_server **out, struct perr *err);
/* The same over any backend (tests use a fake VM). */
int qmp_server_create_backend(struct eventloop *loop, const struct qmp_backend *be, void *be_opaque,
			      const char *path, struct qmp_server **out, struct perr *err);
/* Removes the event hook, sends what is still queued (waiting at most about a
 * second for a slow client), closes the client, unlinks the socket path it
 * created. NULL is a no-op. Call on the loop thread, or after the loop ended. */
void qmp_server_destroy(struct qmp_server *srv);

#endif
