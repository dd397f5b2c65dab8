#include "iothread.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../../common/log.h"
#include "eventloop.h"

/* pthread_setname_np: 16 bytes with the NUL. */
#define IOTHREAD_COMM_MAX 16

struct iothread {
	char id[64];
	struct eventloop *loop;
	int stop_efd;
	bool stop_watched;
	pthread_t thread;
	bool started;

	/* Handshake with iothread_start: the setup result and the tid. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;
	int setup_rc;
	struct perr setup_err;
	int tid;
	iothread_setup_fn setup;
	void *setup_opaque;
};

/* On the iothread: the loop returns after this dispatch round. */
static void iothread_on_stop(void *opaque, uint32_t events)
{
	struct iothread *io = opaque;
	uint64_t v;
	(void)events;
	ssize_t n = read(io->stop_efd, &v, sizeof(v));
	(void)n;
	eventloop_stop(io->loop);
}

static void *iothread_main(void *opaque)
{
	struct iothread *io = opaque;
	char comm[IOTHREAD_COMM_MAX];
	snprintf(comm, sizeof(comm), "%.15s", io->id);
	pthread_setname_np(pthread_self(), comm);

	struct perr err = {0};
	int rc = io->setup ? io->setup(io->setup_opaque, &err) : 0;
	pthread_mutex_lock(&io->lock);
	__atomic_store_n(&io->tid, gettid(), __ATOMIC_RELEASE);
	io->setup_rc = rc;
	io->setup_err = err;
	io->ready = true;
	pthread_cond_broadcast(&io->cond);
	pthread_mutex_unlock(&io->lock);
	if (rc < 0)
		return NULL;

	rc = eventloop_run(io->loop);
	/* The devices on it stall then; the main loop keeps the VM controllable. */
	if (rc < 0)
		log_error("iothread %s: event loop: %s", io->id, strerror(-rc));
	return NULL;
}

int iothread_create(const char *id, struct iothread **out, struct perr *err)
{
	struct iothread *io = calloc(1, sizeof(*io));
	if (!io)
		return perr_setx(err, -ENOMEM, "-object iothread,id=%s: out of memory", id);
	snprintf(io->id, sizeof(io->id), "%s", id);
	io->stop_efd = -1;
	pthread_mutex_init(&io->lock, NULL);
	pthread_cond_init(&io->cond, NULL);
	int rc = eventloop_create(&io->loop);
	if (rc < 0) {
		perr_set(err, rc, "-object iothread,id=%s: event loop", id);
		goto fail;
	}
	io->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->stop_efd < 0) {
		rc = perr_set(err, -errno, "-object iothread,id=%s: eventfd", id);
		goto fail;
	}
	rc = eventloop_add(io->loop, io->stop_efd, EPOLLIN, iothread_on_stop, io);
	if (rc < 0) {
		perr_set(err, rc, "-object iothread,id=%s: event loop", id);
		goto fail;
	}
	io->stop_watched = true;
	*out = io;
	return 0;
fail:
	iothread_destroy(io);
	return rc;
}

int iothread_start(struct iothread *io, iothread_setup_fn setup, void *opaque, struct perr *err)
{
	if (io->started)
		return 0;
	io->setup = setup;
	io->setup_opaque = opaque;
	io->ready = false;
	int rc = pthread_create(&io->thread, NULL, iothread_main, io);
	if (rc)
		return perr_set(err, -rc, "iothread %s: thread", io->id);
	io->started = true;
	pthread_mutex_lock(&io->lock);
	while (!io->ready)
		pthread_cond_wait(&io->cond, &io->lock);
	rc = io->setup_rc;
	pthread_mutex_unlock(&io->lock);
	if (rc < 0) {
		/* The thread has returned already. */
		pthread_join(io->thread, NULL);
		io->started = false;
		*err = io->setup_err;
		return perr_wrap(err, "iothread %s", io->id);
	}
	return 0;
}

struct eventloop *iothread_loop(struct iothread *io)
{
	return io->loop;
}

const char *iothread_id(const struct iothread *io)
{
	return io->id;
}

int iothread_tid(const struct iothread *io)
{
	return __atomic_load_n(&io->tid, __ATOMIC_ACQUIRE);
}

void iothread_stop(struct iothread *io)
{
	if (!io || !io->started)
		return;
	uint64_t one = 1;
	ssize_t n = write(io->stop_efd, &one, sizeof(one));
	(void)n;
	pthread_join(io->thread, NULL);
	io->started = false;
}

void iothread_destroy(struct iothread *io)
{
	if (!io)
		return;
	iothread_stop(io);
	if (io->stop_watched)
		eventloop_remove(io->loop, io->stop_efd);
	if (io->stop_efd >= 0)
		close(io->stop_efd);
	eventloop_destroy(io->loop);
	pthread_cond_destroy(&io->cond);
	pthread_mutex_destroy(&io->lock);
	free(io);
}
