/*
 * The VMM's main loop: one epoll set, callbacks per fd. Single-threaded;
 * other threads wake it through an eventfd they add themselves.
 */
#ifndef PETREL_EVENTLOOP_H
#define PETREL_EVENTLOOP_H

#include <stdbool.h>
#include <stdint.h>

struct eventloop;

/* Called on the loop thread with the epoll events (EPOLLIN, EPOLLHUP, ...). */
typedef void (*eventloop_cb)(void *opaque, uint32_t events);

int eventloop_create(struct eventloop **out);
void eventloop_destroy(struct eventloop *loop);
/* Watch fd for events (EPOLLIN by default when events == 0). */
int eventloop_add(struct eventloop *loop, int fd, uint32_t events, eventloop_cb cb, void *opaque);
int eventloop_modify(struct eventloop *loop, int fd, uint32_t events);
/* Safe to call from within a callback, including for the fd being handled. */
int eventloop_remove(struct eventloop *loop, int fd);
/* Runs until eventloop_stop(); returns 0, or -errno on a loop failure. */
int eventloop_run(struct eventloop *loop);

/* Reads and discards the 8-byte counter of a ready eventfd or timerfd, so that a
 * level-triggered loop does not wake for it again; EAGAIN (a spurious wake) is fine. */
void eventloop_fd_consume(int fd);
/* Only from the loop thread (e.g. inside a callback). */
void eventloop_stop(struct eventloop *loop);

#endif
