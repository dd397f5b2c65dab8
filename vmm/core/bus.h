/*
 * Address → device dispatch for port I/O and MMIO exits. Handlers run on the
 * vCPU thread that took the exit, so a device with state shared with other
 * threads locks it itself. Registration may happen while vCPUs run (hotplug):
 * the bus is protected by a read-write lock.
 */
#ifndef PETREL_BUS_H
#define PETREL_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct bus_ops {
	/* offset is relative to the registered base; len is 1, 2, 4 or 8. */
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned len);
	void (*write)(void *opaque, uint64_t offset, const void *data, unsigned len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
};

#define BUS_MAX_RANGES 64

struct bus {
	pthread_rwlock_t lock;
	struct bus_range ranges[BUS_MAX_RANGES];
	unsigned n_ranges;
};

void bus_init(struct bus *bus);
void bus_destroy(struct bus *bus);
/* -EBUSY when it overlaps a registered range, -ENOSPC when full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque);
int bus_unregister(struct bus *bus, uint64_t base);
/* False when nothing is mapped there; reads of unmapped space return all ones. */
bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len);
bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len);

#endif
