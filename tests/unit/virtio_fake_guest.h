/*
 * A fake guest for the virtio unit tests and the fuzzer: RAM is a calloc'ed
 * buffer registered in a struct guest_mem, and a tiny "driver" lays out
 * split rings in it the way a guest would (virtio 1.2 §2.7).
 */
#ifndef PETREL_TEST_VIRTIO_FAKE_GUEST_H
#define PETREL_TEST_VIRTIO_FAKE_GUEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../vmm/core/guest_mem.h"
#include "../../vmm/virtio/virtqueue.h"

/* RAM does not start at 0, so that gpa 0 is a handy "not RAM" address. */
#define FAKE_RAM_GPA 0x10000ull

struct fake_guest {
	struct guest_mem mem;
	uint8_t *ram;
	uint64_t size;
};

static inline int fake_guest_init(struct fake_guest *g, uint64_t size)
{
	memset(g, 0, sizeof(*g));
	g->ram = calloc(1, size);
	g->size = size;
	if (!g->ram)
		return -1;
	return guest_mem_add_region(&g->mem, FAKE_RAM_GPA, size, g->ram);
}

static inline void fake_guest_free(struct fake_guest *g)
{
	free(g->ram);
	g->ram = NULL;
}

static inline void *fake_ptr(struct fake_guest *g, uint64_t gpa)
{
	return g->ram + (gpa - FAKE_RAM_GPA);
}

static inline void fake_put16(struct fake_guest *g, uint64_t gpa, uint16_t v)
{
	memcpy(fake_ptr(g, gpa), &v, 2);
}

static inline uint16_t fake_get16(struct fake_guest *g, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, fake_ptr(g, gpa), 2);
	return v;
}

static inline uint32_t fake_get32(struct fake_guest *g, uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, fake_ptr(g, gpa), 4);
	return v;
}

/* The driver's view of one split queue. */
struct fake_vring {
	struct fake_guest *g;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;
};

/* Rings at `base` (16-aligned): descriptors, then avail, then used (4-aligned). */
static inline void fake_vring_init(struct fake_vring *vr, struct fake_guest *g, uint16_t size,
				   uint64_t base)
{
	vr->g = g;
	vr->size = size;
	vr->desc = base;
	vr->avail = base + VIRTQ_DESC_BYTES(size);
	vr->used = (vr->avail + VIRTQ_AVAIL_BYTES(size) + 3) & ~3ull;
	vr->avail_idx = 0;
	memset(fake_ptr(g, base), 0, (size_t)(vr->used + VIRTQ_USED_BYTES(size) - base));
}

/* Writes descriptor i of the table at table_gpa (the ring's own table by default). */
static inline void fake_desc_at(struct fake_guest *g, uint64_t table_gpa, unsigned i, uint64_t addr,
				uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc d = {addr, len, flags, next};
	memcpy(fake_ptr(g, table_gpa + 16ull * i), &d, sizeof(d));
}

static inline void fake_desc(struct fake_vring *vr, unsigned i, uint64_t addr, uint32_t len,
			     uint16_t flags, uint16_t next)
{
	fake_desc_at(vr->g, vr->desc, i, addr, len, flags, next);
}

static inline void fake_avail_push(struct fake_vring *vr, uint16_t head)
{
	fake_put16(vr->g, vr->avail + 4 + 2ull * (vr->avail_idx % vr->size), head);
	vr->avail_idx++;
	fake_put16(vr->g, vr->avail + 2, vr->avail_idx);
}

static inline void fake_avail_set_idx(struct fake_vring *vr, uint16_t idx)
{
	vr->avail_idx = idx;
	fake_put16(vr->g, vr->avail + 2, idx);
}

static inline void fake_set_avail_flags(struct fake_vring *vr, uint16_t flags)
{
	fake_put16(vr->g, vr->avail, flags);
}

static inline void fake_set_used_event(struct fake_vring *vr, uint16_t v)
{
	fake_put16(vr->g, vr->avail + 4 + 2ull * vr->size, v);
}

static inline uint16_t fake_avail_event(struct fake_vring *vr)
{
	return fake_get16(vr->g, vr->used + 4 + 8ull * vr->size);
}

static inline uint16_t fake_used_idx(struct fake_vring *vr)
{
	return fake_get16(vr->g, vr->used + 2);
}

static inline uint32_t fake_used_id(struct fake_vring *vr, uint16_t n)
{
	return fake_get32(vr->g, vr->used + 4 + 8ull * (n % vr->size));
}

static inline uint32_t fake_used_len(struct fake_vring *vr, uint16_t n)
{
	return fake_get32(vr->g, vr->used + 8 + 8ull * (n % vr->size));
}

#endif
