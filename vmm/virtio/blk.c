#include "blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../core/eventloop.h"
#include "virtqueue.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO	      5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9
#define VIRTIO_BLK_F_TOPOLOGY 10

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN	    0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20

#define BLK_SECTOR_SIZE 512u
#define BLK_QUEUE_SIZE	256
/* Bounce buffer for direct=on when guest buffers are not aligned. */
#define BLK_BOUNCE_SIZE (1u << 20)

/* §5.2.4, little-endian. */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

struct virtio_blk_req_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* throttling.iops-total: a token bucket refilled at `rate` per second that
 * holds at most one second's worth, so a guest may burst after idling. */
struct blk_throttle {
	uint64_t rate; /* 0: unlimited */
	double tokens;
	uint64_t last_ns;
};

struct virtio_blk {
	struct virtio_dev vdev; /* first: the transport hands us &vdev */
	char drive_id[VMM_ID_MAX];
	int fd;
	bool readonly;
	bool direct;
	unsigned dio_offset_align; /* direct=on: file offsets and lengths */
	unsigned dio_mem_align;	   /* direct=on: buffer addresses */
	uint64_t capacity;	   /* in 512-byte sectors */
	uint64_t features;
	uint8_t serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config config;

	struct blk_throttle throttle;
	int timer_fd;
	bool timer_in_loop;
	bool have_pending; /* chain popped but not yet admitted by the throttle */

	void *bounce;
	struct log_ratelimit ratelimit;
	struct virtq_chain chain;
	struct iovec data_iov[VIRTQ_MAX_SIZE];
};

static struct virtio_blk *to_blk(struct virtio_dev *vdev)
{
	return (struct virtio_blk *)(void *)((char *)vdev - offsetof(struct virtio_blk, vdev));
}

#define blk_guest_warn(b, ...) LOG_GUEST_RATELIMITED(&(b)->ratelimit, __VA_ARGS__)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Throttling. */

static void blk_throttle_init(struct blk_throttle *th, uint64_t rate)
{
	th->rate = rate;
	th->tokens = (double)rate;
	th->last_ns = now_ns();
}

static bool blk_throttle_take(struct blk_throttle *th, uint64_t now)
{
	if (!th->rate)
		return true;
	double burst = (double)th->rate;
	th->tokens += (double)(now - th->last_ns) * (double)th->rate / 1e9;
	if (th->tokens > burst)
		th->tokens = burst;
	th->last_ns = now;
	if (th->tokens < 1.0)
		return false;
	th->tokens -= 1.0;
	return true;
}

static uint64_t blk_throttle_wait_ns(const struct blk_throttle *th)
{
	return (uint64_t)((1.0 - th->tokens) * 1e9 / (double)th->rate) + 1;
}

static void blk_throttle_arm(struct virtio_blk *b)
{
	if (b->timer_fd < 0)
		return; /* no loop: the next notification retries */
	uint64_t ns = blk_throttle_wait_ns(&b->throttle);
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(ns / 1000000000ull),
			 .tv_nsec = (long)(ns % 1000000000ull)},
	};
	if (timerfd_settime(b->timer_fd, 0, &its, NULL) < 0)
		log_warn("drive %s: timerfd_settime: %s", b->drive_id, strerror(errno));
}

/* On the loop thread, outside the transport lock: only asks for another run. */
static void blk_throttle_timer(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;
	(void)events;
	eventloop_fd_consume(b->timer_fd);
	virtio_dev_kick(&b->vdev, 0);
}

/* I/O. */

static bool blk_dio_aligned(const struct virtio_blk *b, uint64_t offset, const struct iovec *iov,
			    int n)
{
	if (offset % b->dio_offset_align)
		return false;
	for (int i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base % b->dio_mem_align ||
		    iov[i].iov_len % b->dio_offset_align)
			return false;
	return true;
}

/* Whole transfer with preadv/pwritev, resuming after short transfers. */
static int blk_rw_iov(struct virtio_blk *b, bool write, uint64_t offset, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t done = write ? pwritev(b->fd, iov, n, (off_t)offset)
				     : preadv(b->fd, iov, n, (off_t)offset);
		if (done < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (done == 0)
			return -EIO; /* the image shrank under us */
		offset += (uint64_t)done;
		size_t left = (size_t)done;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static int blk_rw_buf(struct virtio_blk *b, bool write, uint64_t offset, void *buf, size_t len)
{
	struct iovec iov = {buf, len};
	return blk_rw_iov(b, write, offset, &iov, 1);
}

/* direct=on with guest buffers or offsets that O_DIRECT would refuse: go
 * through an aligned bounce buffer, chunk by chunk, reading back partially
 * covered blocks before writing them (requests run one at a time, so the
 * read-modify-write cannot race with another request). */
static int blk_rw_bounce(struct virtio_blk *b, bool write, uint64_t offset, const struct iovec *iov,
			 int n, size_t len)
{
	uint64_t align = b->dio_offset_align;
	uint64_t start = offset - offset % align;
	uint64_t end = offset + len;
	if (end % align)
		end += align - end % align;
	for (uint64_t pos = start; pos < end; pos += BLK_BOUNCE_SIZE) {
		size_t chunk = end - pos < BLK_BOUNCE_SIZE ? (size_t)(end - pos) : BLK_BOUNCE_SIZE;
		uint64_t lo = pos > offset ? pos : offset;
		uint64_t hi = pos + chunk < offset + len ? pos + chunk : offset + len;
		size_t skip = (size_t)(lo - offset);
		uint8_t *buf = (uint8_t *)b->bounce + (lo - pos);
		int ret;
		if (!write || lo != pos || hi != pos + chunk) {
			ret = blk_rw_buf(b, false, pos, b->bounce, chunk);
			if (ret < 0)
				return ret;
		}
		if (!write) {
			virtq_iov_from_buf(iov, (unsigned)n, skip, buf, (size_t)(hi - lo));
			continue;
		}
		virtq_iov_to_buf(iov, (unsigned)n, skip, buf, (size_t)(hi - lo));
		ret = blk_rw_buf(b, true, pos, b->bounce, chunk);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static uint8_t blk_rw(struct virtio_blk *b, bool write, uint64_t sector, const struct iovec *src,
		      unsigned n_src, size_t skip, size_t len)
{
	const char *what = write ? "write" : "read";
	/* §5.2.6.1: data is a multiple of 512 bytes and within the capacity. */
	if (len % BLK_SECTOR_SIZE) {
		blk_guest_warn(b, "drive %s: %s of %zu bytes, not a multiple of 512", b->drive_id,
			       what, len);
		return VIRTIO_BLK_S_IOERR;
	}
	uint64_t sectors = len / BLK_SECTOR_SIZE;
	if (sector > b->capacity || sectors > b->capacity - sector) {
		blk_guest_warn(b, "drive %s: %s of sectors [%llu, +%llu) beyond capacity %llu",
			       b->drive_id, what, (unsigned long long)sector,
			       (unsigned long long)sectors, (unsigned long long)b->capacity);
		return VIRTIO_BLK_S_IOERR;
	}
	if (write && b->readonly) {
		blk_guest_warn(b, "drive %s: write to a read-only drive refused", b->drive_id);
		return VIRTIO_BLK_S_IOERR;
	}
	if (len == 0)
		return VIRTIO_BLK_S_OK;
	int n = virtq_iov_slice(src, n_src, skip, len, b->data_iov, VIRTQ_MAX_SIZE);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	uint64_t offset = sector * BLK_SECTOR_SIZE;
	int ret;
	if (b->direct && !blk_dio_aligned(b, offset, b->data_iov, n))
		ret = blk_rw_bounce(b, write, offset, b->data_iov, n, len);
	else
		ret = blk_rw_iov(b, write, offset, b->data_iov, n);
	if (ret < 0) {
		blk_guest_warn(b, "drive %s: %s at sector %llu: %s", b->drive_id, what,
			       (unsigned long long)sector, strerror(-ret));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Handles one request (§5.2.6); returns the number of bytes written into
 * the chain's device-writable buffers, status byte included. */
static uint32_t blk_handle_request(struct virtio_blk *b, struct virtq_chain *c)
{
	struct iovec *in = virtq_chain_in(c);
	/* The status byte is the last writable byte; without it nothing can be reported. */
	if (c->in_len == 0) {
		blk_guest_warn(b, "drive %s: request %u has no writable status byte", b->drive_id,
			       c->head);
		return 0;
	}
	size_t in_data_len = c->in_len - 1;
	struct virtio_blk_req_header hdr;
	uint8_t status;
	size_t written = 0;

	if (virtq_iov_to_buf(c->iov, c->n_out, 0, &hdr, sizeof(hdr)) < sizeof(hdr)) {
		blk_guest_warn(b, "drive %s: request %u: header shorter than %zu bytes",
			       b->drive_id, c->head, sizeof(hdr));
		status = VIRTIO_BLK_S_IOERR;
		goto done;
	}
	uint32_t type = le32toh(hdr.type);
	uint64_t sector = le64toh(hdr.sector);
	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = blk_rw(b, false, sector, in, c->n_in, 0, in_data_len);
		written = in_data_len;
		break;
	case VIRTIO_BLK_T_OUT:
		status = blk_rw(b, true, sector, c->iov, c->n_out, sizeof(hdr),
				c->out_len - sizeof(hdr));
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = VIRTIO_BLK_S_OK;
		if (!b->readonly && fdatasync(b->fd) < 0) {
			blk_guest_warn(b, "drive %s: flush: %s", b->drive_id, strerror(errno));
			status = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_GET_ID:
		/* §5.2.6: up to 20 bytes, NUL-padded when shorter. */
		written = virtq_iov_from_buf(
		    in, c->n_in, 0, b->serial,
		    in_data_len < VIRTIO_BLK_ID_BYTES ? in_data_len : VIRTIO_BLK_ID_BYTES);
		status = VIRTIO_BLK_S_OK;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
done:
	virtq_iov_from_buf(in, c->n_in, in_data_len, &status, 1);
	return (uint32_t)(written + 1);
}

/* Device ops. */

static uint64_t blk_get_features(struct virtio_dev *vdev)
{
	return to_blk(vdev)->features;
}

static uint32_t blk_config_size(struct virtio_dev *vdev)
{
	(void)vdev;
	return sizeof(struct virtio_blk_config);
}

static void blk_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&to_blk(vdev)->config + offset, len);
}

static void blk_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
			     unsigned len)
{
	/* Only `writeback` is writable, and only with CONFIG_WCE, which we do not offer. */
	struct virtio_blk *b = to_blk(vdev);
	(void)data;
	blk_guest_warn(b, "drive %s: %u-byte config write at %u ignored", b->drive_id, len, offset);
}

static void blk_queue_notify(struct virtio_dev *vdev, unsigned index)
{
	struct virtio_blk *b = to_blk(vdev);
	struct virtqueue *vq = &vdev->vqs[index];
	for (;;) {
		if (!b->have_pending) {
			if (virtq_pop_desc_chain(vq, &b->chain) <= 0)
				break;
			b->have_pending = true;
		}
		if (!blk_throttle_take(&b->throttle, now_ns())) {
			blk_throttle_arm(b);
			break;
		}
		b->have_pending = false;
		uint32_t written = blk_handle_request(b, &b->chain);
		virtq_push_used(vq, b->chain.head, written);
	}
	virtq_notify_used(vq);
}

static void blk_reset(struct virtio_dev *vdev)
{
	struct virtio_blk *b = to_blk(vdev);
	/* A throttled chain belongs to the old rings. */
	b->have_pending = false;
}

static int blk_realize(struct virtio_dev *vdev, struct perr *err)
{
	struct virtio_blk *b = to_blk(vdev);
	if (!b->throttle.rate || !vdev->loop)
		return 0;
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timer_fd < 0)
		return perr_set(err, -errno, "-drive %s: timerfd", b->drive_id);
	int ret = eventloop_add(vdev->loop, b->timer_fd, EPOLLIN, blk_throttle_timer, b);
	if (ret < 0)
		return perr_set(err, ret, "-drive %s: watching the throttle timer", b->drive_id);
	b->timer_in_loop = true;
	return 0;
}

static void blk_destroy(struct virtio_dev *vdev)
{
	struct virtio_blk *b = to_blk(vdev);
	if (b->timer_in_loop)
		eventloop_remove(vdev->loop, b->timer_fd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	if (b->fd >= 0)
		close(b->fd);
	free(b->bounce);
	free(b);
}

/* A chain waiting for the throttle goes back to the ring. */
static int blk_snapshot_check(struct virtio_dev *vdev, uint16_t *held, struct perr *err)
{
	(void)err;
	held[0] = to_blk(vdev)->have_pending;
	return 0;
}

static const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .max_queue_size = BLK_QUEUE_SIZE,
    .get_features = blk_get_features,
    .config_read = blk_config_read,
    .config_write = blk_config_write,
    .config_size = blk_config_size,
    .realize = blk_realize,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
    .destroy = blk_destroy,
    .snapshot_check = blk_snapshot_check,
};

/* Creation. */

static int blk_image_size(int fd, const char *path, uint64_t *size, struct perr *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return perr_set(err, -errno, "stat %s", path);
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return perr_set(err, -errno, "%s: BLKGETSIZE64", path);
		return 0;
	}
	return perr_setx(err, -EINVAL, "%s is not a regular file or a block device", path);
}

/* The alignment O_DIRECT needs. statx(STATX_DIOALIGN) knows it on Linux >= 6.1;
 * otherwise 4096, which is safe for every common logical block size. */
static int blk_dio_alignment(struct virtio_blk *b, const char *path, struct perr *err)
{
	struct statx stx;
	b->dio_offset_align = 4096;
	b->dio_mem_align = 4096;
	if (statx(b->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		if (!stx.stx_dio_offset_align)
			return perr_setx(err, -EINVAL,
					 "open %s with direct=on: the filesystem does not support "
					 "O_DIRECT for this file",
					 path);
		b->dio_offset_align = stx.stx_dio_offset_align;
		b->dio_mem_align = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 1;
	}
	if (b->dio_offset_align > BLK_BOUNCE_SIZE ||
	    (b->dio_offset_align & (b->dio_offset_align - 1)) ||
	    (b->dio_mem_align & (b->dio_mem_align - 1)))
		return perr_setx(err, -EINVAL, "%s: unusual O_DIRECT alignment %u/%u", path,
				 b->dio_offset_align, b->dio_mem_align);
	if (posix_memalign(&b->bounce, 4096, BLK_BOUNCE_SIZE) != 0)
		return perr_set(err, -ENOMEM, "bounce buffer");
	return 0;
}

static int blk_open(struct virtio_blk *b, const struct vmm_drive *drive, struct perr *err)
{
	int flags = (drive->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	if (drive->direct)
		flags |= O_DIRECT;
	b->fd = open(drive->file, flags);
	if (b->fd < 0) {
		if (drive->direct && errno == EINVAL)
			return perr_setx(err, -EINVAL,
					 "open %s with direct=on: the filesystem does not support "
					 "O_DIRECT (use direct=off)",
					 drive->file);
		return perr_set(err, -errno, "open %s", drive->file);
	}
	uint64_t size = 0;
	int ret = blk_image_size(b->fd, drive->file, &size, err);
	if (ret < 0)
		return ret;
	if (drive->direct) {
		ret = blk_dio_alignment(b, drive->file, err);
		if (ret < 0)
			return ret;
		/* A direct transfer always covers whole aligned blocks, so the last
		 * partial block (if any) cannot be used without extending the file. */
		if (size % b->dio_offset_align) {
			log_warn("drive %s: %s: the last %llu bytes are not a whole %u-byte block "
				 "and are not visible with direct=on",
				 drive->id, drive->file,
				 (unsigned long long)(size % b->dio_offset_align),
				 b->dio_offset_align);
			size -= size % b->dio_offset_align;
		}
	}
	if (size % BLK_SECTOR_SIZE)
		log_warn("drive %s: %s: size is not a multiple of 512; the last %llu bytes are "
			 "not visible",
			 drive->id, drive->file, (unsigned long long)(size % BLK_SECTOR_SIZE));
	b->capacity = size / BLK_SECTOR_SIZE;
	return 0;
}

static void blk_fill_config(struct virtio_blk *b)
{
	struct virtio_blk_config *cfg = &b->config;
	b->features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		      VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
	if (b->readonly)
		b->features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	cfg->capacity = htole64(b->capacity);
	/* Header and status take one descriptor each (§5.2.6). */
	cfg->seg_max = htole32(BLK_QUEUE_SIZE - 2);
	cfg->blk_size = htole32(BLK_SECTOR_SIZE);
	if (b->direct && b->dio_offset_align > BLK_SECTOR_SIZE) {
		/* Hint the guest to issue whole blocks, which avoids the bounce path. */
		b->features |= VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY);
		unsigned exp = 0;
		while ((BLK_SECTOR_SIZE << exp) < b->dio_offset_align)
			exp++;
		cfg->topology.physical_block_exp = (uint8_t)exp;
		cfg->topology.min_io_size = htole16((uint16_t)(1u << exp));
	}
}

int virtio_blk_create(const struct vmm_drive *drive, const struct vmm_blk_device *dev,
		      struct virtio_dev **out, struct perr *err)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return perr_set(err, -ENOMEM, "-drive %s", drive->id);
	b->vdev.ops = &blk_ops;
	b->fd = -1;
	b->timer_fd = -1;
	b->readonly = drive->readonly;
	b->direct = drive->direct;
	snprintf(b->drive_id, sizeof(b->drive_id), "%s", drive->id);
	snprintf(b->vdev.id, sizeof(b->vdev.id), "virtio-blk %s", dev->id[0] ? dev->id : drive->id);
	/* GET_ID returns the serial NUL-padded, unterminated when 20 bytes long. */
	size_t serial_len = strnlen(dev->serial, VIRTIO_BLK_ID_BYTES);
	memcpy(b->serial, dev->serial, serial_len);

	int ret = blk_open(b, drive, err);
	if (ret < 0) {
		perr_wrap(err, "-drive %s", drive->id);
		blk_destroy(&b->vdev);
		return ret;
	}
	blk_throttle_init(&b->throttle, drive->iops_total);
	blk_fill_config(b);
	*out = &b->vdev;
	return 0;
}
