#include "balloon.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../core/eventloop.h"
#include "../core/guest_mem.h"
#include "virtqueue.h"

/* Feature bits (§5.5.3). */
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2

#define BALLOON_QUEUE_SIZE    128
#define BALLOON_INFLATE_QUEUE 0
#define BALLOON_DEFLATE_QUEUE 1
/* PFNs read from a buffer at a time. */
#define BALLOON_PFN_BATCH 256

/* §5.5.4, little-endian. free_page_hint_cmd_id and poison_val exist only
 * with features we do not offer. */
struct virtio_balloon_config {
	uint32_t num_pages;
	uint32_t actual;
};

struct virtio_balloon {
	struct virtio_dev vdev; /* first: the transport hands us &vdev */
	uint64_t features;
	uint64_t ram_bytes;
	/* __atomic: set by QMP (main loop) and the guest (vCPU threads). */
	uint32_t num_pages;
	uint32_t actual;

	/* Guest writes to `actual` arrive on vCPU threads; the hook runs on
	 * the loop, woken by change_efd. */
	virtio_balloon_change_fn hook;
	void *hook_opaque;
	int change_efd;
	bool change_in_loop;
	uint32_t reported_actual; /* loop thread: the last value the hook saw */
	/* At most one report per VIRTIO_BALLOON_EVENT_INTERVAL_MS, the latest
	 * value at the end of the interval: a guest updates `actual` every
	 * 256 pages (QEMU limits BALLOON_CHANGE the same way). */
	uint64_t last_report_ns;
	int timer_fd;
	bool timer_in_loop;
	bool timer_armed;

	bool remove_unsupported; /* MADV_REMOVE refused: private RAM, use DONTNEED */
	struct log_ratelimit ratelimit;
	struct log_ratelimit host_ratelimit;
	struct virtq_chain chain;
	uint32_t pfns[BALLOON_PFN_BATCH];
};

static struct virtio_balloon *to_balloon(struct virtio_dev *vdev)
{
	return (struct virtio_balloon *)(void *)((char *)vdev -
						 offsetof(struct virtio_balloon, vdev));
}

static uint64_t balloon_bytes_left(const struct virtio_balloon *b, uint32_t pages)
{
	uint64_t taken = (uint64_t)pages << VIRTIO_BALLOON_PFN_SHIFT;
	return taken >= b->ram_bytes ? 0 : b->ram_bytes - taken;
}

/* The change hook. */

static uint64_t balloon_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Loop thread (or, without a loop, the caller's). */
static void balloon_report_change(struct virtio_balloon *b)
{
	uint32_t actual = __atomic_load_n(&b->actual, __ATOMIC_SEQ_CST);
	if (actual == b->reported_actual || b->timer_armed)
		return;
	uint64_t now = balloon_now_ns();
	uint64_t interval = VIRTIO_BALLOON_EVENT_INTERVAL_MS * 1000000ull;
	if (b->timer_fd >= 0 && b->last_report_ns && now - b->last_report_ns < interval) {
		uint64_t ns = b->last_report_ns + interval - now;
		struct itimerspec its = {
		    .it_value = {.tv_sec = (time_t)(ns / 1000000000ull),
				 .tv_nsec = (long)(ns % 1000000000ull)},
		};
		if (timerfd_settime(b->timer_fd, 0, &its, NULL) == 0) {
			b->timer_armed = true;
			return;
		}
	}
	b->reported_actual = actual;
	b->last_report_ns = now;
	if (b->hook)
		b->hook(b->hook_opaque, balloon_bytes_left(b, actual));
}

static void balloon_report_timer(void *opaque, uint32_t events)
{
	struct virtio_balloon *b = opaque;
	uint64_t v;
	(void)events;
	ssize_t n = read(b->timer_fd, &v, sizeof(v));
	(void)n;
	b->timer_armed = false;
	b->last_report_ns = 0; /* the interval is over */
	balloon_report_change(b);
}

static void balloon_change_ready(void *opaque, uint32_t events)
{
	struct virtio_balloon *b = opaque;
	uint64_t v;
	(void)events;
	ssize_t n = read(b->change_efd, &v, sizeof(v));
	(void)n;
	balloon_report_change(b);
}

/* Any thread (a vCPU's config write, a reset). */
static void balloon_actual_changed(struct virtio_balloon *b)
{
	if (b->change_efd < 0) {
		balloon_report_change(b); /* no loop (tests): synchronously */
		return;
	}
	uint64_t one = 1;
	ssize_t n = write(b->change_efd, &one, sizeof(one));
	(void)n;
}

/* Discarding pages. */

/* Drops the host pages behind [hva, hva + len): the guest gave them up. */
static void balloon_discard(struct virtio_balloon *b, uint8_t *hva, size_t len)
{
	/* Shared RAM (mem-share=on) keeps its pages in shmem after
	 * MADV_DONTNEED; only MADV_REMOVE frees them. Private RAM refuses
	 * MADV_REMOVE (EINVAL, or EACCES for private file mappings), once. */
	if (!b->remove_unsupported) {
		if (madvise(hva, len, MADV_REMOVE) == 0)
			return;
		if (errno != EINVAL && errno != EACCES && errno != EOPNOTSUPP)
			goto fail;
		b->remove_unsupported = true;
	}
	if (madvise(hva, len, MADV_DONTNEED) == 0)
		return;
fail:
	LOG_GUEST_RATELIMITED(&b->host_ratelimit, "%s: discarding %zu bytes of guest RAM: %s",
			      b->vdev.id, len, strerror(errno));
}

/* One inflate buffer: an array of le32 PFNs (§5.5.6). Each is checked
 * against guest RAM; runs of adjacent host pages go to one madvise. */
static void balloon_inflate_chain(struct virtio_balloon *b, struct virtq_chain *c)
{
	uint8_t *run = NULL;
	size_t run_len = 0;
	size_t total = c->out_len / sizeof(uint32_t);
	if (c->out_len % sizeof(uint32_t))
		LOG_GUEST_RATELIMITED(&b->ratelimit,
				      "%s: inflate buffer of %zu bytes is not whole PFNs",
				      b->vdev.id, c->out_len);
	for (size_t done = 0; done < total;) {
		size_t n = total - done < BALLOON_PFN_BATCH ? total - done : BALLOON_PFN_BATCH;
		virtq_iov_to_buf(c->iov, c->n_out, done * sizeof(uint32_t), b->pfns,
				 n * sizeof(uint32_t));
		for (size_t i = 0; i < n; i++) {
			uint64_t gpa = (uint64_t)le32toh(b->pfns[i]) << VIRTIO_BALLOON_PFN_SHIFT;
			uint8_t *hva = guest_mem_slice(b->vdev.mem, gpa, VIRTIO_BALLOON_PAGE_SIZE);
			if (!hva) {
				LOG_GUEST_RATELIMITED(
				    &b->ratelimit, "%s: inflated PFN %#x is not guest RAM, ignored",
				    b->vdev.id, le32toh(b->pfns[i]));
				continue;
			}
			if (run && hva == run + run_len) {
				run_len += VIRTIO_BALLOON_PAGE_SIZE;
				continue;
			}
			if (run)
				balloon_discard(b, run, run_len);
			run = hva;
			run_len = VIRTIO_BALLOON_PAGE_SIZE;
		}
		done += n;
	}
	if (run)
		balloon_discard(b, run, run_len);
}

static void balloon_queue_notify(struct virtio_dev *vdev, unsigned index)
{
	struct virtio_balloon *b = to_balloon(vdev);
	struct virtqueue *vq = &vdev->vqs[index];
	while (virtq_pop_desc_chain(vq, &b->chain) > 0) {
		/* Deflated pages need nothing: without VIRTIO_BALLOON_F_MUST_TELL_HOST
		 * the guest may already use them, and a discarded page faults back in
		 * as zeros. */
		if (index == BALLOON_INFLATE_QUEUE)
			balloon_inflate_chain(b, &b->chain);
		virtq_push_used(vq, b->chain.head, 0);
	}
	virtq_notify_used(vq);
}

/* Device ops. */

static uint64_t balloon_get_features(struct virtio_dev *vdev)
{
	return to_balloon(vdev)->features;
}

static uint32_t balloon_config_size(struct virtio_dev *vdev)
{
	(void)vdev;
	return sizeof(struct virtio_balloon_config);
}

static void balloon_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
	struct virtio_balloon *b = to_balloon(vdev);
	struct virtio_balloon_config cfg = {
	    .num_pages = htole32(__atomic_load_n(&b->num_pages, __ATOMIC_SEQ_CST)),
	    .actual = htole32(__atomic_load_n(&b->actual, __ATOMIC_SEQ_CST)),
	};
	memcpy(data, (const uint8_t *)&cfg + offset, len);
}

/* §5.5.6: the driver writes `actual`; num_pages is the device's. */
static void balloon_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
				 unsigned len)
{
	struct virtio_balloon *b = to_balloon(vdev);
	const uint32_t actual_off = offsetof(struct virtio_balloon_config, actual);
	if (offset < actual_off) {
		LOG_GUEST_RATELIMITED(&b->ratelimit, "%s: %u-byte write to num_pages ignored",
				      vdev->id, len);
		return;
	}
	uint32_t actual = htole32(__atomic_load_n(&b->actual, __ATOMIC_SEQ_CST));
	memcpy((uint8_t *)&actual + (offset - actual_off), data, len);
	__atomic_store_n(&b->actual, le32toh(actual), __ATOMIC_SEQ_CST);
	balloon_actual_changed(b);
}

static void balloon_reset(struct virtio_dev *vdev)
{
	/* A new driver starts with an empty balloon: the old one's pages are
	 * the guest's again. */
	struct virtio_balloon *b = to_balloon(vdev);
	__atomic_store_n(&b->actual, 0, __ATOMIC_SEQ_CST);
	balloon_actual_changed(b);
}

static int balloon_realize(struct virtio_dev *vdev, struct perr *err)
{
	struct virtio_balloon *b = to_balloon(vdev);
	if (!vdev->loop)
		return 0;
	b->change_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->change_efd < 0)
		return perr_set(err, -errno, "eventfd");
	int ret = eventloop_add(vdev->loop, b->change_efd, EPOLLIN, balloon_change_ready, b);
	if (ret < 0)
		return perr_set(err, ret, "watching the balloon's eventfd");
	b->change_in_loop = true;
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timer_fd < 0)
		return perr_set(err, -errno, "timerfd");
	ret = eventloop_add(vdev->loop, b->timer_fd, EPOLLIN, balloon_report_timer, b);
	if (ret < 0)
		return perr_set(err, ret, "watching the balloon's timer");
	b->timer_in_loop = true;
	return 0;
}

static void balloon_destroy(struct virtio_dev *vdev)
{
	struct virtio_balloon *b = to_balloon(vdev);
	if (b->change_in_loop)
		eventloop_remove(vdev->loop, b->change_efd);
	if (b->change_efd >= 0)
		close(b->change_efd);
	if (b->timer_in_loop)
		eventloop_remove(vdev->loop, b->timer_fd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	free(b);
}

static const struct virtio_dev_ops balloon_ops = {
    .name = "virtio-balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .num_queues = 2,
    .max_queue_size = BALLOON_QUEUE_SIZE,
    .get_features = balloon_get_features,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .config_size = balloon_config_size,
    .realize = balloon_realize,
    .queue_notify = balloon_queue_notify,
    .reset = balloon_reset,
    .destroy = balloon_destroy,
};

/* Public API. */

int virtio_balloon_create(const struct vmm_balloon *cfg, uint64_t ram_bytes,
			  struct virtio_dev **out, struct perr *err)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	if (!b)
		return perr_set(err, -ENOMEM, "-device virtio-balloon-device");
	b->vdev.ops = &balloon_ops;
	b->ram_bytes = ram_bytes;
	b->change_efd = -1;
	b->timer_fd = -1;
	if (cfg->deflate_on_oom)
		b->features |= VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	snprintf(b->vdev.id, sizeof(b->vdev.id), "virtio-balloon %s",
		 cfg->id[0] ? cfg->id : "balloon0");
	*out = &b->vdev;
	return 0;
}

void virtio_balloon_set_change_hook(struct virtio_dev *dev, virtio_balloon_change_fn hook,
				    void *opaque)
{
	struct virtio_balloon *b = to_balloon(dev);
	b->hook = hook;
	b->hook_opaque = opaque;
}

int virtio_balloon_set_target(struct virtio_dev *dev, uint64_t target_bytes, struct perr *err)
{
	struct virtio_balloon *b = to_balloon(dev);
	if (target_bytes == 0 || target_bytes > b->ram_bytes)
		return perr_setx(err, -ERANGE,
				 "Parameter 'value' expects a size in [1, %llu] (bytes of guest "
				 "RAM)",
				 (unsigned long long)b->ram_bytes);
	uint64_t pages = (b->ram_bytes - target_bytes) >> VIRTIO_BALLOON_PFN_SHIFT;
	if (pages > UINT32_MAX)
		pages = UINT32_MAX; /* num_pages is 32 bits: 16 TiB, beyond -m's limit */
	__atomic_store_n(&b->num_pages, (uint32_t)pages, __ATOMIC_SEQ_CST);
	/* §5.5.6.1: the driver rereads num_pages on a configuration change. */
	virtio_dev_raise_irq(dev, VIRTIO_ISR_CONFIG);
	return 0;
}

uint64_t virtio_balloon_actual_bytes(struct virtio_dev *dev)
{
	struct virtio_balloon *b = to_balloon(dev);
	return balloon_bytes_left(b, __atomic_load_n(&b->actual, __ATOMIC_SEQ_CST));
}

uint64_t virtio_balloon_ram_bytes(struct virtio_dev *dev)
{
	return to_balloon(dev)->ram_bytes;
}
