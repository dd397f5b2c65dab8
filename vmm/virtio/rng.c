#include "rng.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../core/eventloop.h"
#include "virtqueue.h"

#define RNG_QUEUE_SIZE 64
/* One read() at most this large: the guest's buffers are small (Linux: 64 B
 * or a page), and a huge buffer must not stall the loop. */
#define RNG_MAX_READ (64ull * 1024)

struct virtio_rng {
	struct virtio_dev vdev; /* first: the transport hands us &vdev */
	char object_id[VMM_ID_MAX];
	char filename[PATH_MAX];
	int fd;
	bool fd_in_loop; /* watched for readability after EAGAIN */
	bool stalled;	 /* EOF or a read error: logged once, the guest waits */

	/* max-bytes per period: a quota refilled at the start of each period. */
	uint64_t max_bytes; /* 0: unlimited */
	uint64_t period_ns;
	uint64_t quota;
	uint64_t period_end_ns;
	int timer_fd;
	bool timer_in_loop;

	bool have_pending; /* a chain popped but not yet filled */
	struct log_ratelimit ratelimit;
	struct virtq_chain chain;
	struct iovec read_iov[VIRTQ_MAX_SIZE];
};

static struct virtio_rng *to_rng(struct virtio_dev *vdev)
{
	return (struct virtio_rng *)(void *)((char *)vdev - offsetof(struct virtio_rng, vdev));
}

static uint64_t rng_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Bytes the rate limit allows now (UINT64_MAX without one). */
static uint64_t rng_budget(struct virtio_rng *r, uint64_t now)
{
	if (!r->max_bytes)
		return UINT64_MAX;
	if (now >= r->period_end_ns) {
		r->quota = r->max_bytes;
		r->period_end_ns = now + r->period_ns;
	}
	return r->quota;
}

static void rng_arm_timer(struct virtio_rng *r, uint64_t now)
{
	if (r->timer_fd < 0)
		return; /* no loop: the next notification retries */
	uint64_t ns = r->period_end_ns > now ? r->period_end_ns - now : 1;
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(ns / 1000000000ull),
			 .tv_nsec = (long)(ns % 1000000000ull)},
	};
	if (timerfd_settime(r->timer_fd, 0, &its, NULL) < 0)
		log_warn("%s: timerfd_settime: %s", r->vdev.id, strerror(errno));
}

/* Loop thread, outside the transport lock: only asks for another run. */
static void rng_timer_fired(void *opaque, uint32_t events)
{
	struct virtio_rng *r = opaque;
	uint64_t expirations;
	(void)events;
	ssize_t n = read(r->timer_fd, &expirations, sizeof(expirations));
	(void)n;
	virtio_dev_kick(&r->vdev, 0);
}

/* The file had nothing (EAGAIN, e.g. /dev/random early at boot); the loop
 * tells us when it has, once. */
static void rng_fd_readable(void *opaque, uint32_t events)
{
	struct virtio_rng *r = opaque;
	(void)events;
	eventloop_remove(r->vdev.loop, r->fd);
	r->fd_in_loop = false;
	virtio_dev_kick(&r->vdev, 0);
}

static void rng_wait_readable(struct virtio_rng *r)
{
	if (r->fd_in_loop || !r->vdev.loop)
		return;
	int ret = eventloop_add(r->vdev.loop, r->fd, EPOLLIN, rng_fd_readable, r);
	if (ret < 0)
		log_warn("%s: %s cannot be polled (%s); requests wait for the next notification",
			 r->vdev.id, r->filename, strerror(-ret));
	else
		r->fd_in_loop = true;
}

static void rng_stall(struct virtio_rng *r, const char *why)
{
	if (!r->stalled)
		log_error("%s: reading %s: %s; the guest gets no more entropy", r->vdev.id,
			  r->filename, why);
	r->stalled = true;
}

/* Fills the pending chain; false when it has to wait (quota, EAGAIN, EOF). */
static bool rng_fill_pending(struct virtio_rng *r, struct virtqueue *vq)
{
	struct virtq_chain *c = &r->chain;
	if (c->in_len == 0) {
		LOG_GUEST_RATELIMITED(&r->ratelimit, "%s: request %u has no writable buffer",
				      r->vdev.id, c->head);
		virtq_push_used(vq, c->head, 0);
		return true;
	}
	uint64_t now = rng_now_ns();
	uint64_t want = rng_budget(r, now);
	if (want == 0) {
		rng_arm_timer(r, now);
		return false;
	}
	if (want > c->in_len)
		want = c->in_len;
	if (want > RNG_MAX_READ)
		want = RNG_MAX_READ;
	int n = virtq_iov_slice(virtq_chain_in(c), c->n_in, 0, (size_t)want, r->read_iov,
				VIRTQ_MAX_SIZE);
	if (n < 0)
		return false; /* cannot happen: want <= in_len */
	ssize_t got;
	do {
		got = readv(r->fd, r->read_iov, n);
	} while (got < 0 && errno == EINTR);
	if (got < 0 && errno == EAGAIN) {
		rng_wait_readable(r);
		return false;
	}
	if (got < 0) {
		rng_stall(r, strerror(errno));
		return false;
	}
	if (got == 0) {
		rng_stall(r, "end of file");
		return false;
	}
	if (r->max_bytes)
		r->quota -= (uint64_t)got;
	virtq_push_used(vq, c->head, (uint32_t)got);
	return true;
}

/* §5.4.6: the device fills each buffer with random bytes, any amount. */
static void rng_queue_notify(struct virtio_dev *vdev, unsigned index)
{
	struct virtio_rng *r = to_rng(vdev);
	struct virtqueue *vq = &vdev->vqs[index];
	while (!r->stalled) {
		if (!r->have_pending) {
			if (virtq_pop_desc_chain(vq, &r->chain) <= 0)
				break;
			r->have_pending = true;
		}
		if (!rng_fill_pending(r, vq))
			break;
		r->have_pending = false;
	}
	virtq_notify_used(vq);
}

static void rng_reset(struct virtio_dev *vdev)
{
	/* A waiting chain belongs to the old rings. */
	to_rng(vdev)->have_pending = false;
}

static int rng_realize(struct virtio_dev *vdev, struct perr *err)
{
	struct virtio_rng *r = to_rng(vdev);
	/* Non-blocking: a source that runs dry must not stall the loop. */
	r->fd = open(r->filename, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (r->fd < 0)
		return perr_set(err, -errno, "-object %s: open %s", r->object_id, r->filename);
	if (!r->max_bytes || !vdev->loop)
		return 0;
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->timer_fd < 0)
		return perr_set(err, -errno, "timerfd");
	int ret = eventloop_add(vdev->loop, r->timer_fd, EPOLLIN, rng_timer_fired, r);
	if (ret < 0)
		return perr_set(err, ret, "watching the rate-limit timer");
	r->timer_in_loop = true;
	return 0;
}

static void rng_destroy(struct virtio_dev *vdev)
{
	struct virtio_rng *r = to_rng(vdev);
	if (r->timer_in_loop)
		eventloop_remove(vdev->loop, r->timer_fd);
	if (r->fd_in_loop)
		eventloop_remove(vdev->loop, r->fd);
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

/* A chain waiting for entropy goes back to the ring. */
static int rng_snapshot_check(struct virtio_dev *vdev, uint16_t *held, struct perr *err)
{
	(void)err;
	held[0] = to_rng(vdev)->have_pending;
	return 0;
}

static const struct virtio_dev_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_ENTROPY,
    .num_queues = 1,
    .max_queue_size = RNG_QUEUE_SIZE,
    .realize = rng_realize,
    .queue_notify = rng_queue_notify,
    .reset = rng_reset,
    .destroy = rng_destroy,
    .snapshot_check = rng_snapshot_check,
};

int virtio_rng_create(const struct vmm_rng *cfg, struct virtio_dev **out, struct perr *err)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r)
		return perr_set(err, -ENOMEM, "-device virtio-rng-device");
	r->vdev.ops = &rng_ops;
	r->fd = -1;
	r->timer_fd = -1;
	snprintf(r->object_id, sizeof(r->object_id), "%s", cfg->object_id);
	snprintf(r->filename, sizeof(r->filename), "%s", cfg->filename);
	snprintf(r->vdev.id, sizeof(r->vdev.id), "virtio-rng %s", cfg->id[0] ? cfg->id : cfg->rng);
	r->max_bytes = cfg->max_bytes;
	uint64_t period_ms = cfg->period_ms ? cfg->period_ms : VIRTIO_RNG_DEFAULT_PERIOD_MS;
	if (period_ms > UINT64_MAX / 2000000ull)
		period_ms = UINT64_MAX / 2000000ull; /* now + period must not overflow */
	r->period_ns = period_ms * 1000000ull;
	*out = &r->vdev;
	return 0;
}
