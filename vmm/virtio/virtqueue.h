/*
 * Split virtqueues (virtio 1.2 §2.7), device side.
 *
 * The transport configures a queue with virtq_setup(), which checks the ring
 * addresses against guest memory once. A device then takes validated
 * descriptor chains with virtq_pop_desc_chain(): every buffer address and
 * length is checked through guest_mem_slice(), loops, out-of-range indices,
 * bad indirect tables and avail-index jumps are detected. A bad ring marks
 * the queue broken and sets the device's DEVICE_NEEDS_RESET; the VMM goes on.
 *
 * Not thread-safe: the caller (the transport lock) serialises access.
 */
#ifndef PETREL_VIRTQUEUE_H
#define PETREL_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../../common/error.h"
#include "../../common/log.h"

struct virtio_dev;
struct guest_mem;

/* Largest queue size a device may offer (§2.7: at most 32768; we stay small). */
#define VIRTQ_MAX_SIZE 1024

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

/* Guest-memory layouts (§2.7.5, §2.7.6, §2.7.8); little-endian. */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* Ring sizes in bytes, including used_event / avail_event (§2.7 table). */
#define VIRTQ_DESC_BYTES(n)  (16ull * (n))
#define VIRTQ_AVAIL_BYTES(n) (6ull + 2ull * (n))
#define VIRTQ_USED_BYTES(n)  (6ull + 8ull * (n))

struct virtqueue {
	struct virtio_dev *dev;
	const struct guest_mem *mem;
	unsigned index;

	bool ready;  /* set up and validated */
	bool broken; /* a bad ring was seen: nothing more until reset */
	bool event_idx;
	bool indirect;
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;

	/* Host views of the rings, validated by virtq_setup(). */
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;

	uint16_t last_avail_idx; /* next avail entry to take */
	uint16_t used_idx;	 /* shadow of used->idx */
	uint16_t signalled_used; /* used_idx at the last interrupt decision */
	bool signalled_used_valid;
	bool pending_notify; /* used entries pushed since the last virtq_notify_used */

	struct log_ratelimit ratelimit;
};

/* A validated chain: device-readable buffers iov[0, n_out), then
 * device-writable buffers iov[n_out, n_out + n_in) (§2.7.4.2). */
struct virtq_chain {
	uint16_t head;
	unsigned n_out;
	unsigned n_in;
	size_t out_len;
	size_t in_len;
	struct iovec iov[VIRTQ_MAX_SIZE];
};

static inline struct iovec *virtq_chain_in(struct virtq_chain *c)
{
	return c->iov + c->n_out;
}

void virtq_init(struct virtqueue *vq, struct virtio_dev *dev, const struct guest_mem *mem,
		unsigned index);
/* Validates size (power of 2, 1..max_size) and the three rings (alignment,
 * whole ring in guest RAM), then makes the queue ready. -EINVAL with a message
 * naming the problem otherwise; the queue stays not ready. */
int virtq_setup(struct virtqueue *vq, uint16_t size, uint16_t max_size, uint64_t desc_gpa,
		uint64_t avail_gpa, uint64_t used_gpa, uint64_t features, struct perr *err);
/* Back to the state after virtq_init(). */
void virtq_reset(struct virtqueue *vq);

/* 1 and a chain in *chain, 0 when the ring is empty, -EIO when the queue is
 * (or has just become) broken. With EVENT_IDX, finding the ring empty
 * re-arms avail_event, so the guest notifies for the next buffer. */
int virtq_pop_desc_chain(struct virtqueue *vq, struct virtq_chain *chain);
/* True when the guest has made buffers available, without taking one (e.g. a
 * receive path checking for room before reading from its backend). */
bool virtq_has_avail(struct virtqueue *vq);
/* Returns a chain to the guest with `len` bytes written into its writable buffers. */
void virtq_push_used(struct virtqueue *vq, uint16_t head, uint32_t len);
/* Interrupts the guest for the entries pushed since the last call, unless it
 * asked not to be (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). */
void virtq_notify_used(struct virtqueue *vq);
/* Marks the queue broken: logs (rate-limited) and sets DEVICE_NEEDS_RESET. */
void virtq_set_broken(struct virtqueue *vq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* iovec helpers for devices. */
/* Copies up to len bytes from iov starting at byte `skip`; returns bytes copied. */
size_t virtq_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
/* Copies up to len bytes into iov starting at byte `skip`; returns bytes copied. */
size_t virtq_iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
			  size_t len);
/* Describes bytes [skip, skip + len) of iov in out[] (at most max entries);
 * returns the entry count, or -1 when iov is shorter or out is too small. */
int virtq_iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len, struct iovec *out,
		    unsigned max);

#endif
