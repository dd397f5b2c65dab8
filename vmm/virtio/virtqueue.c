#include "virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/guest_mem.h"
#include "virtio_dev.h"

/*
 * The rings live in guest memory that the guest changes concurrently. Ring
 * fields are read and written with __atomic accesses (the ring pointers were
 * checked for natural alignment), descriptors are copied out once and only
 * the copy is looked at, so a racing guest cannot make us check one value and
 * use another.
 */

static uint16_t ring_load16(const uint8_t *ring, size_t off, int order)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)(ring + off), order));
}

static void ring_store16(uint8_t *ring, size_t off, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)(void *)(ring + off), htole16(v), order);
}

static void ring_store32(uint8_t *ring, size_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)(ring + off), htole32(v), __ATOMIC_RELAXED);
}

/* avail: flags, idx, ring[size], used_event. used: flags, idx, ring[size], avail_event. */
#define AVAIL_FLAGS   0
#define AVAIL_IDX     2
#define AVAIL_RING(i) (4 + 2 * (size_t)(i))
#define USED_IDX      2
#define USED_RING(i)  (4 + 8 * (size_t)(i))

static void desc_read(const uint8_t *table, unsigned i, struct virtq_desc *d)
{
	memcpy(d, table + 16 * (size_t)i, sizeof(*d));
	/* Compiler barrier: d is the only copy we look at from here on. */
	__asm__ __volatile__("" ::: "memory");
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

void virtq_init(struct virtqueue *vq, struct virtio_dev *dev, const struct guest_mem *mem,
		unsigned index)
{
	memset(vq, 0, sizeof(*vq));
	vq->dev = dev;
	vq->mem = mem;
	vq->index = index;
}

void virtq_reset(struct virtqueue *vq)
{
	struct log_ratelimit rl = vq->ratelimit;
	virtq_init(vq, vq->dev, vq->mem, vq->index);
	/* Keep the limiter: a guest that resets in a loop must not flood the log. */
	vq->ratelimit = rl;
}

static void *ring_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len, unsigned align,
			const char *what, struct perr *err)
{
	void *p = NULL;
	if (gpa % align) {
		perr_setx(err, -EINVAL, "%s ring at 0x%llx is not %u-byte aligned", what,
			  (unsigned long long)gpa, align);
	} else if (!(p = guest_mem_slice(mem, gpa, len))) {
		perr_setx(err, -EINVAL, "%s ring [0x%llx, +0x%llx) is not in guest RAM", what,
			  (unsigned long long)gpa, (unsigned long long)len);
	} else if ((uintptr_t)p % align) {
		/* The atomic ring accesses need host alignment too; guest RAM is
		 * page-aligned in practice, but nothing else guarantees it. */
		perr_setx(err, -EINVAL, "%s ring at 0x%llx is not aligned in host memory", what,
			  (unsigned long long)gpa);
		p = NULL;
	}
	return p;
}

int virtq_setup(struct virtqueue *vq, uint16_t size, uint16_t max_size, uint64_t desc_gpa,
		uint64_t avail_gpa, uint64_t used_gpa, uint64_t features, struct perr *err)
{
	/* §2.7: split queue sizes are powers of 2; the device offers max_size. */
	if (size == 0 || (size & (size - 1)) || size > max_size || size > VIRTQ_MAX_SIZE)
		return perr_setx(err, -EINVAL, "queue size %u is not a power of 2 in 1..%u", size,
				 max_size);
	/* Alignment from the table in §2.7. */
	uint8_t *desc =
	    ring_slice(vq->mem, desc_gpa, VIRTQ_DESC_BYTES(size), 16, "descriptor", err);
	if (!desc)
		return -EINVAL;
	uint8_t *avail = ring_slice(vq->mem, avail_gpa, VIRTQ_AVAIL_BYTES(size), 2, "driver", err);
	if (!avail)
		return -EINVAL;
	uint8_t *used = ring_slice(vq->mem, used_gpa, VIRTQ_USED_BYTES(size), 4, "device", err);
	if (!used)
		return -EINVAL;

	virtq_reset(vq);
	vq->size = size;
	vq->desc_gpa = desc_gpa;
	vq->avail_gpa = avail_gpa;
	vq->used_gpa = used_gpa;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->event_idx = (features & VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX)) != 0;
	vq->indirect = (features & VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC)) != 0;
	vq->ready = true;
	return 0;
}

void virtq_set_broken(struct virtqueue *vq, const char *fmt, ...)
{
	bool first = !vq->broken;
	vq->broken = true;
	if (log_ratelimit_ok(&vq->ratelimit)) {
		char msg[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		log_warn("%s: queue %u: %s; the device needs a reset",
			 vq->dev && vq->dev->id[0] ? vq->dev->id : "virtio", vq->index, msg);
	}
	if (first && vq->dev)
		virtio_dev_needs_reset(vq->dev);
}

/* Number of available entries not yet taken; marks the queue broken when the
 * guest moved avail->idx by more than the queue size. */
static int virtq_pending(struct virtqueue *vq)
{
	/* Acquire: ring entries are read after the index that publishes them (§2.7.13). */
	uint16_t avail_idx = ring_load16(vq->avail, AVAIL_IDX, __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail_idx);
	if (pending > vq->size) {
		virtq_set_broken(vq, "avail idx jumped from %u to %u (queue size %u)",
				 vq->last_avail_idx, avail_idx, vq->size);
		return -EIO;
	}
	return pending;
}

/* Entries waiting. With EVENT_IDX, an empty ring first asks to be notified
 * for the next entry (§2.7.10), then looks again, so that an entry added
 * before the guest saw avail_event is not missed. */
static int virtq_available(struct virtqueue *vq)
{
	int pending = virtq_pending(vq);
	if (pending == 0 && vq->event_idx) {
		ring_store16(vq->used, USED_RING(vq->size), vq->last_avail_idx, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		pending = virtq_pending(vq);
	}
	return pending;
}

bool virtq_has_avail(struct virtqueue *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	return virtq_available(vq) > 0;
}

static int virtq_add_buffer(struct virtqueue *vq, struct virtq_chain *c, const struct virtq_desc *d)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	if (!writable && c->n_in) {
		virtq_set_broken(vq, "chain %u: device-readable buffer after a writable one",
				 c->head);
		return -EIO;
	}
	if (d->len == 0)
		return 0;
	if (c->n_out + c->n_in >= vq->size || c->n_out + c->n_in >= VIRTQ_MAX_SIZE) {
		virtq_set_broken(vq, "chain %u: longer than the queue size %u", c->head, vq->size);
		return -EIO;
	}
	void *p = guest_mem_slice(vq->mem, d->addr, d->len);
	if (!p) {
		virtq_set_broken(vq, "chain %u: buffer [0x%llx, +0x%x) is not in guest RAM",
				 c->head, (unsigned long long)d->addr, d->len);
		return -EIO;
	}
	/* The used ring reports lengths in 32 bits (§2.7.8). */
	size_t total = c->out_len + c->in_len + d->len;
	if (total > UINT32_MAX) {
		virtq_set_broken(vq, "chain %u: total length overflows 32 bits", c->head);
		return -EIO;
	}
	c->iov[c->n_out + c->n_in] = (struct iovec){.iov_base = p, .iov_len = d->len};
	if (writable) {
		c->n_in++;
		c->in_len += d->len;
	} else {
		c->n_out++;
		c->out_len += d->len;
	}
	return 0;
}

/* §2.7.5.3: the table an indirect descriptor points to, or NULL (queue broken). */
static const uint8_t *virtq_indirect_table(struct virtqueue *vq, uint16_t head,
					   const struct virtq_desc *d, bool nested,
					   unsigned *entries)
{
	const char *bad = NULL;
	if (!vq->indirect)
		bad = "indirect descriptor not negotiated";
	else if (nested)
		bad = "nested indirect descriptor";
	else if (d->flags & VIRTQ_DESC_F_NEXT)
		bad = "indirect descriptor with NEXT";
	else if (d->len == 0 || d->len % sizeof(struct virtq_desc) ||
		 d->len / sizeof(struct virtq_desc) > vq->size)
		bad = "indirect table size is not a multiple of 16 in 1..queue size";
	if (bad) {
		virtq_set_broken(vq, "chain %u: %s (length %u)", head, bad, d->len);
		return NULL;
	}
	const uint8_t *table = guest_mem_slice(vq->mem, d->addr, d->len);
	if (!table) {
		virtq_set_broken(vq, "chain %u: indirect table [0x%llx, +0x%x) is not in guest RAM",
				 head, (unsigned long long)d->addr, d->len);
		return NULL;
	}
	*entries = d->len / sizeof(struct virtq_desc);
	return table;
}

/* Walks the chain at `head` (§2.7.5.2), following at most one indirect table.
 * Loops are caught by counting: a chain that visits more descriptors than
 * its table holds must repeat one. */
static int virtq_walk_chain(struct virtqueue *vq, uint16_t head, struct virtq_chain *c)
{
	const uint8_t *table = vq->desc;
	unsigned table_size = vq->size;
	unsigned visited = 0;
	bool in_indirect = false;
	unsigned i = head;

	c->head = head;
	c->n_out = c->n_in = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		struct virtq_desc d;
		if (++visited > table_size) {
			virtq_set_broken(vq, "chain %u: descriptor loop", head);
			return -EIO;
		}
		desc_read(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			table = virtq_indirect_table(vq, head, &d, in_indirect, &table_size);
			if (!table)
				return -EIO;
			in_indirect = true;
			visited = 0;
			i = 0;
			continue;
		}
		if (virtq_add_buffer(vq, c, &d) < 0)
			return -EIO;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= table_size) {
			virtq_set_broken(vq, "chain %u: next index %u beyond table size %u", head,
					 d.next, table_size);
			return -EIO;
		}
		i = d.next;
	}
}

int virtq_pop_desc_chain(struct virtqueue *vq, struct virtq_chain *chain)
{
	if (!vq->ready)
		return 0;
	if (vq->broken)
		return -EIO;
	int pending = virtq_available(vq);
	if (pending < 0)
		return pending;
	if (pending == 0)
		return 0;

	uint16_t head =
	    ring_load16(vq->avail, AVAIL_RING(vq->last_avail_idx % vq->size), __ATOMIC_RELAXED);
	if (head >= vq->size) {
		virtq_set_broken(vq, "avail entry %u: head index %u beyond queue size %u",
				 vq->last_avail_idx, head, vq->size);
		return -EIO;
	}
	if (virtq_walk_chain(vq, head, chain) < 0)
		return -EIO;
	vq->last_avail_idx++;
	return 1;
}

void virtq_push_used(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	if (!vq->ready || vq->broken)
		return;
	size_t slot = vq->used_idx % vq->size;
	ring_store32(vq->used, USED_RING(slot), head);
	ring_store32(vq->used, USED_RING(slot) + 4, len);
	vq->used_idx++;
	/* Release: the element is visible before the index that publishes it (§2.7.8). */
	ring_store16(vq->used, USED_IDX, vq->used_idx, __ATOMIC_RELEASE);
	vq->pending_notify = true;
}

/* §2.7.10: with EVENT_IDX, interrupt only when used_event lies in the
 * entries published since the last decision. */
static bool virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

void virtq_notify_used(struct virtqueue *vq)
{
	if (!vq->ready || !vq->pending_notify)
		return;
	vq->pending_notify = false;
	/* The used idx store must be visible before we read the guest's suppression
	 * state; otherwise both sides may decide that the other will act. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bool notify;
	if (vq->event_idx) {
		uint16_t old_idx = vq->signalled_used;
		bool valid = vq->signalled_used_valid;
		vq->signalled_used = vq->used_idx;
		vq->signalled_used_valid = true;
		uint16_t event = ring_load16(vq->avail, AVAIL_RING(vq->size), __ATOMIC_RELAXED);
		notify = !valid || virtq_need_event(event, vq->used_idx, old_idx);
	} else {
		notify = !(ring_load16(vq->avail, AVAIL_FLAGS, __ATOMIC_RELAXED) &
			   VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	if (notify && vq->dev)
		virtio_dev_raise_irq(vq->dev, VIRTIO_ISR_QUEUE);
}

size_t virtq_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - skip;
		if (chunk > len - done)
			chunk = len - done;
		memcpy((uint8_t *)buf + done, (const uint8_t *)iov[i].iov_base + skip, chunk);
		done += chunk;
		skip = 0;
	}
	return done;
}

size_t virtq_iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
			  size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - skip;
		if (chunk > len - done)
			chunk = len - done;
		memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)buf + done, chunk);
		done += chunk;
		skip = 0;
	}
	return done;
}

int virtq_iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len, struct iovec *out,
		    unsigned max)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - skip;
		if (chunk > len)
			chunk = len;
		if (k >= max)
			return -1;
		out[k++] = (struct iovec){(uint8_t *)iov[i].iov_base + skip, chunk};
		len -= chunk;
		skip = 0;
	}
	return len ? -1 : (int)k;
}
