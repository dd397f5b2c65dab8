/*
 * A fake guest for the virtio unit tests: RAM is a calloc'ed buffer
 * registered in a struct guest_mem, and a tiny "driver" lays out split rings
 * in it the way a guest would (virtio 1.2 §2.7) and, for the device tests,
 * drives a device on the MMIO transport at FAKE_MMIO_BASE of a test bus
 * (§4.2): attach, feature negotiation, queue setup, interrupt counting.
 */
#ifndef PETREL_TEST_VIRTIO_FAKE_GUEST_H
#define PETREL_TEST_VIRTIO_FAKE_GUEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../vmm/core/bus.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/core/guest_mem.h"
#include "../../vmm/virtio/transport-mmio.h"
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

/* Where the device under test sits on the test bus, and its interrupt line. */
#define FAKE_MMIO_BASE 0xd0000000ull
#define FAKE_MMIO_GSI  5

/* The virtio-mmio registers a driver's initialization writes (§4.2.2). */
#define FAKE_MMIO_DEV_FEATURES	   0x010
#define FAKE_MMIO_DEV_FEATURES_SEL 0x014
#define FAKE_MMIO_DRV_FEATURES	   0x020
#define FAKE_MMIO_DRV_FEATURES_SEL 0x024
#define FAKE_MMIO_QUEUE_SEL	   0x030
#define FAKE_MMIO_QUEUE_NUM	   0x038
#define FAKE_MMIO_QUEUE_READY	   0x044
#define FAKE_MMIO_STATUS	   0x070
#define FAKE_MMIO_QUEUE_DESC	   0x080
#define FAKE_MMIO_QUEUE_AVAIL	   0x090
#define FAKE_MMIO_QUEUE_USED	   0x0a0

static inline uint32_t fake_mmio_read(struct bus *bus, uint64_t off)
{
	uint32_t v = 0;
	bus_read(bus, FAKE_MMIO_BASE + off, &v, 4);
	return v;
}

static inline void fake_mmio_write(struct bus *bus, uint64_t off, uint32_t v)
{
	bus_write(bus, FAKE_MMIO_BASE + off, &v, 4);
}

static inline void fake_mmio_write64(struct bus *bus, uint64_t off, uint64_t v)
{
	fake_mmio_write(bus, off, (uint32_t)v);
	fake_mmio_write(bus, off + 4, (uint32_t)(v >> 32));
}

/* The transport's irq_raise: counts interrupts in the int at opaque. */
static inline void fake_irq_count(void *opaque, unsigned gsi)
{
	(void)gsi;
	(*(int *)opaque)++;
}

/*
 * Attaches vdev (which the transport then owns) at FAKE_MMIO_BASE of bus,
 * over g's RAM, counting its interrupts in *irqs. With loop NULL, queues run
 * synchronously on QueueNotify writes.
 */
static inline int fake_mmio_attach(struct fake_guest *g, struct bus *bus, struct eventloop *loop,
				   struct virtio_dev *vdev, int *irqs, struct virtio_mmio **t,
				   struct perr *err)
{
	struct virtio_mmio_host host = {
	    .mem = &g->mem,
	    .mmio_bus = bus,
	    .loop = loop,
	    .vm_fd = -1,
	    .base = FAKE_MMIO_BASE,
	    .gsi = FAKE_MMIO_GSI,
	    .irq_raise = fake_irq_count,
	    .irq_opaque = irqs,
	};
	return virtio_mmio_attach(&host, vdev, t, err);
}

/*
 * Linux's probe sequence up to FEATURES_OK (§3.1.1): reset, ACKNOWLEDGE,
 * DRIVER, then accept the offered features that are in `accept`. Returns
 * what the device offered.
 */
static inline uint64_t fake_mmio_negotiate(struct bus *bus, uint64_t accept)
{
	fake_mmio_write(bus, FAKE_MMIO_STATUS, 0);
	fake_mmio_write(bus, FAKE_MMIO_STATUS, 1);
	fake_mmio_write(bus, FAKE_MMIO_STATUS, 3);
	fake_mmio_write(bus, FAKE_MMIO_DEV_FEATURES_SEL, 0);
	uint64_t offered = fake_mmio_read(bus, FAKE_MMIO_DEV_FEATURES);
	fake_mmio_write(bus, FAKE_MMIO_DEV_FEATURES_SEL, 1);
	offered |= (uint64_t)fake_mmio_read(bus, FAKE_MMIO_DEV_FEATURES) << 32;
	uint64_t f = offered & accept;
	fake_mmio_write(bus, FAKE_MMIO_DRV_FEATURES_SEL, 0);
	fake_mmio_write(bus, FAKE_MMIO_DRV_FEATURES, (uint32_t)f);
	fake_mmio_write(bus, FAKE_MMIO_DRV_FEATURES_SEL, 1);
	fake_mmio_write(bus, FAKE_MMIO_DRV_FEATURES, (uint32_t)(f >> 32));
	fake_mmio_write(bus, FAKE_MMIO_STATUS, 11);
	return offered;
}

/* Lays out a ring of `size` at `base` in g and makes it queue `index` (§4.2.3.2). */
static inline void fake_mmio_setup_queue(struct bus *bus, unsigned index, struct fake_vring *vr,
					 struct fake_guest *g, uint16_t size, uint64_t base)
{
	fake_vring_init(vr, g, size, base);
	fake_mmio_write(bus, FAKE_MMIO_QUEUE_SEL, index);
	fake_mmio_write(bus, FAKE_MMIO_QUEUE_NUM, size);
	fake_mmio_write64(bus, FAKE_MMIO_QUEUE_DESC, vr->desc);
	fake_mmio_write64(bus, FAKE_MMIO_QUEUE_AVAIL, vr->avail);
	fake_mmio_write64(bus, FAKE_MMIO_QUEUE_USED, vr->used);
	fake_mmio_write(bus, FAKE_MMIO_QUEUE_READY, 1);
}

static inline void fake_mmio_driver_ok(struct bus *bus)
{
	fake_mmio_write(bus, FAKE_MMIO_STATUS, 15);
}

static inline void fake_loop_stop_cb(void *opaque, uint32_t events)
{
	(void)events;
	eventloop_stop(opaque);
}

/* Turns loop for about ms milliseconds. */
static inline void fake_run_loop_ms(struct eventloop *loop, unsigned ms)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {
	    .it_value = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}};
	timerfd_settime(tfd, 0, &its, NULL);
	eventloop_add(loop, tfd, EPOLLIN, fake_loop_stop_cb, loop);
	eventloop_run(loop);
	eventloop_remove(loop, tfd);
	close(tfd);
}

#endif
