/* iothreads (vmm/core/iothread.c): a named thread running its own event loop,
 * started with a setup step whose failure is reported, stopped through an
 * eventfd and joined. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../../vmm/core/eventloop.h"
#include "../../vmm/core/iothread.h"
#include "unit.h"

struct probe {
	int efd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ran;
	char thread_name[16];
	int tid;
};

static void probe_event(void *opaque, uint32_t events)
{
	struct probe *p = opaque;
	uint64_t v;
	(void)events;
	ssize_t n = read(p->efd, &v, sizeof(v));
	(void)n;
	pthread_mutex_lock(&p->lock);
	pthread_getname_np(pthread_self(), p->thread_name, sizeof(p->thread_name));
	p->tid = gettid();
	p->ran = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* Waits up to 5 s for the callback. */
static bool probe_wait(struct probe *p)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&p->lock);
	while (!p->ran)
		if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT)
			break;
	bool ran = p->ran;
	pthread_mutex_unlock(&p->lock);
	return ran;
}

static int setup_calls;
static int count_setup(void *opaque, struct perr *err)
{
	(void)opaque;
	(void)err;
	setup_calls++;
	return 0;
}

UNIT_TEST(test_iothread_runs_its_loop_on_a_thread_named_after_its_id)
{
	struct perr err = {0};
	struct iothread *io;
	UNIT_ASSERT_EQ(iothread_create("io-thread-for-disks", &io, &err), 0);
	UNIT_ASSERT_STREQ(iothread_id(io), "io-thread-for-disks");
	UNIT_ASSERT_EQ(iothread_tid(io), 0);
	struct probe p = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	p.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	UNIT_ASSERT(p.efd >= 0);
	/* Devices add their fds before the thread starts. */
	UNIT_ASSERT_EQ(eventloop_add(iothread_loop(io), p.efd, EPOLLIN, probe_event, &p), 0);
	setup_calls = 0;
	UNIT_ASSERT_EQ(iothread_start(io, count_setup, NULL, &err), 0);
	UNIT_ASSERT_EQ(setup_calls, 1);
	UNIT_ASSERT(iothread_tid(io) > 0);
	uint64_t one = 1;
	UNIT_ASSERT_EQ(write(p.efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	bool ran = probe_wait(&p);
	iothread_stop(io);
	iothread_stop(io); /* idempotent */
	eventloop_remove(iothread_loop(io), p.efd);
	int tid = iothread_tid(io);
	iothread_destroy(io);
	close(p.efd);
	UNIT_ASSERT(ran);
	/* The kernel keeps 15 bytes of a thread's name. */
	UNIT_ASSERT_STREQ(p.thread_name, "io-thread-for-d");
	UNIT_ASSERT_EQ(p.tid, tid);
	UNIT_ASSERT(p.tid != gettid());
}

static int failing_setup(void *opaque, struct perr *err)
{
	(void)opaque;
	return perr_setx(err, -EPERM, "seccomp: loading the iothread thread filter");
}

UNIT_TEST(test_iothread_setup_failure_fails_the_start_with_its_message)
{
	struct perr err = {0};
	struct iothread *io;
	UNIT_ASSERT_EQ(iothread_create("io0", &io, &err), 0);
	int rc = iothread_start(io, failing_setup, NULL, &err);
	iothread_destroy(io);
	UNIT_ASSERT_EQ(rc, -EPERM);
	UNIT_ASSERT_STREQ(err.msg, "iothread io0: seccomp: loading the iothread thread filter");
}

UNIT_TEST(test_iothread_never_started_is_destroyed_cleanly)
{
	struct perr err = {0};
	struct iothread *io;
	UNIT_ASSERT_EQ(iothread_create("idle", &io, &err), 0);
	iothread_stop(io);
	iothread_destroy(io);
	iothread_destroy(NULL);
}

UNIT_MAIN("iothread")
