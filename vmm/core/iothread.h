/*
 * An iothread (-object iothread,id=NAME): a thread named NAME (the first 15
 * bytes, as /proc/PID/task/TID/comm shows it) that runs its own event loop,
 * so that the queues of the devices given iothread=NAME are processed off
 * the main loop.
 *
 * Life cycle, in the order vm_build / vm_destroy use it:
 *   iothread_create   the loop and its stop eventfd; no thread yet, so the
 *                     devices can add their fds to the loop from the
 *                     building thread (struct eventloop is single-threaded)
 *   iothread_start    the thread; `setup` (its seccomp filter) runs on it
 *                     first, and its failure is returned here
 *   iothread_stop     wakes the loop through the eventfd and joins the
 *                     thread (no signals); afterwards the devices may be
 *                     removed from the loop by the caller
 *   iothread_destroy  stops it if needed and frees the loop
 */
#ifndef PETREL_IOTHREAD_H
#define PETREL_IOTHREAD_H

#include "../../common/error.h"

struct eventloop;
struct iothread;

/* Runs on the new thread before its loop; 0, or a negative errno with err set. */
typedef int (*iothread_setup_fn)(void *opaque, struct perr *err);

int iothread_create(const char *id, struct iothread **out, struct perr *err);
int iothread_start(struct iothread *io, iothread_setup_fn setup, void *opaque, struct perr *err);
struct eventloop *iothread_loop(struct iothread *io);
const char *iothread_id(const struct iothread *io);
/* The host thread id once started, else 0. */
int iothread_tid(const struct iothread *io);
/* Idempotent; a no-op when the thread never started. Not from the iothread. */
void iothread_stop(struct iothread *io);
/* NULL is a no-op. Every fd on the loop must have been removed. */
void iothread_destroy(struct iothread *io);

#endif
