/*
 * virtio-balloon (virtio 1.2 §5.5): the host asks the guest to give back
 * memory, in 4 KiB pages.
 *
 *   -device virtio-balloon-device[,id=balloon0][,deflate-on-oom=true|false]
 *
 * The inflate and deflate queues only (no statistics, no free page hinting
 * or reporting). Pages the guest puts in the balloon are checked against
 * guest RAM and discarded on the host with madvise (MADV_DONTNEED, or
 * MADV_REMOVE for shared RAM), so they stop counting in the VMM's RSS and
 * read as zeros when the guest takes them back. deflate-on-oom=true offers
 * VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest may take pages back from the
 * balloon rather than run out of memory.
 *
 * QMP's `balloon` sets the target through virtio_balloon_set_target();
 * the guest reports what it did in the `actual` config field, which the
 * change hook passes on (QMP's BALLOON_CHANGED event).
 */
#ifndef PETREL_VIRTIO_BALLOON_H
#define PETREL_VIRTIO_BALLOON_H

#include <stdint.h>

#include "../../common/error.h"
#include "../cli/config.h"
#include "virtio_dev.h"

#define VIRTIO_ID_BALLOON 5

/* The balloon's unit, whatever the host or guest page size (§5.5.6). */
#define VIRTIO_BALLOON_PFN_SHIFT 12
#define VIRTIO_BALLOON_PAGE_SIZE (1u << VIRTIO_BALLOON_PFN_SHIFT)

/* Changes of `actual` are reported at most once per interval (the latest
 * value at its end), as QEMU rate-limits BALLOON_CHANGE. */
#define VIRTIO_BALLOON_EVENT_INTERVAL_MS 1000

/* Called on the device's loop thread when the guest's `actual` changed;
 * actual_bytes is guest RAM minus the balloon. */
typedef void (*virtio_balloon_change_fn)(void *opaque, uint64_t actual_bytes);

/* ram_bytes: the guest RAM size (-m). */
int virtio_balloon_create(const struct vmm_balloon *cfg, uint64_t ram_bytes,
			  struct virtio_dev **out, struct perr *err);
/* Before the device is attached (the hook runs on the device's loop). */
void virtio_balloon_set_change_hook(struct virtio_dev *dev, virtio_balloon_change_fn hook,
				    void *opaque);

/* Any thread. The guest should be left with target_bytes of RAM: -ERANGE
 * unless 0 < target_bytes <= RAM size. The balloon size is rounded down to
 * whole 4 KiB pages. Raises a config-change interrupt. */
int virtio_balloon_set_target(struct virtio_dev *dev, uint64_t target_bytes, struct perr *err);
/* Any thread: guest RAM minus the pages the guest says are in the balloon. */
uint64_t virtio_balloon_actual_bytes(struct virtio_dev *dev);
uint64_t virtio_balloon_ram_bytes(struct virtio_dev *dev);

#endif
