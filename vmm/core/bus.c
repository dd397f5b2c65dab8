#include "bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque)
{
	if (!len || base + len < base)
		return -EINVAL;
	int ret = 0;
	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned i = 0; i < bus->n_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len) {
			ret = -EBUSY;
			goto out;
		}
	}
	if (bus->n_ranges >= BUS_MAX_RANGES) {
		ret = -ENOSPC;
		goto out;
	}
	bus->ranges[bus->n_ranges++] = (struct bus_range){base, len, ops, opaque};
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	int ret = -ENOENT;
	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned i = 0; i < bus->n_ranges; i++) {
		if (bus->ranges[i].base == base) {
			bus->ranges[i] = bus->ranges[--bus->n_ranges];
			ret = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

static const struct bus_range *bus_lookup(const struct bus *bus, uint64_t addr, unsigned len)
{
	for (unsigned i = 0; i < bus->n_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (addr >= r->base && addr - r->base < r->len && len <= r->len - (addr - r->base))
			return r;
	}
	return NULL;
}

bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len)
{
	pthread_rwlock_rdlock(&bus->lock);
	const struct bus_range *r = bus_lookup(bus, addr, len);
	if (r && r->ops->read)
		r->ops->read(r->opaque, addr - r->base, data, len);
	else
		memset(data, 0xff, len);
	pthread_rwlock_unlock(&bus->lock);
	return r != NULL;
}

bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len)
{
	pthread_rwlock_rdlock(&bus->lock);
	const struct bus_range *r = bus_lookup(bus, addr, len);
	if (r && r->ops->write)
		r->ops->write(r->opaque, addr - r->base, data, len);
	pthread_rwlock_unlock(&bus->lock);
	return r != NULL;
}
