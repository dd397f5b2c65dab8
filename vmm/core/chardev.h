/*
 * Character device backends (-chardev, -serial): stdio, pty, unix socket
 * server, append-only file. A frontend (the 8250 UART, later virtio-console)
 * writes guest output from any thread and never blocks: what the backend
 * cannot take now is buffered (CHARDEV_OUT_BUFFER bytes), beyond that it is
 * dropped and counted. Input is read on the event loop and handed to the
 * frontend only as fast as it can take it (flow control, no loss).
 */
#ifndef PETREL_CHARDEV_H
#define PETREL_CHARDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../cli/config.h"

struct chardev;
struct eventloop;

#define CHARDEV_OUT_BUFFER (64 * 1024)

struct chardev_frontend {
	/* Loop thread: bytes the frontend can take now; 0 pauses input until
	 * the frontend calls chardev_accept_input(). */
	size_t (*can_receive)(void *opaque);
	void (*receive)(void *opaque, const uint8_t *buf, size_t len);
};

/*
 * Opens the backend and registers it with loop. label names it in messages
 * ("serial0" for -serial shorthands, else the chardev id). stdio puts a
 * terminal on stdin into raw mode until chardev_destroy (or a crash, or
 * exit). pty prints "char device redirected to /dev/pts/N (label ID)" on
 * stderr, as QEMU does. Loop thread only.
 */
int chardev_create(const struct vmm_chardev *cfg, const char *label, struct eventloop *loop,
		   struct chardev **out, struct perr *err);
/* Restores the terminal, unlinks a socket it created, closes everything. */
void chardev_destroy(struct chardev *chr);

/* Loop thread. One frontend per chardev; NULL detaches. */
void chardev_attach(struct chardev *chr, const struct chardev_frontend *fe, void *opaque);
/* Any thread, never blocks. */
void chardev_write(struct chardev *chr, const void *buf, size_t len);
/* Any thread: the frontend has room again after can_receive returned 0. */
void chardev_accept_input(struct chardev *chr);

/* A socket server without nowait: no client has connected yet. */
bool chardev_waiting_for_client(const struct chardev *chr);
/* Loop thread: called once, when the first client connects. */
void chardev_set_connect_hook(struct chardev *chr, void (*hook)(void *opaque), void *opaque);
const char *chardev_label(const struct chardev *chr);
/* Bytes of guest output dropped because the backend was too slow. */
uint64_t chardev_dropped(const struct chardev *chr);

/* The pty's slave path ("" for other backends). */
const char *chardev_pty_path(const struct chardev *chr);

#endif
