/*
 * Kernel virtio backends (vhost: vhost-vsock, later vhost-net), the generic
 * part: the device node, feature negotiation, the memory table built from
 * struct guest_mem, and handing a validated virtqueue to the kernel with its
 * kick and call eventfds (see virtio_dev_queue_kick_fd / virtio_dev_call_fd).
 * The ioctls are those of <linux/vhost.h>.
 */
#ifndef PETREL_VHOST_H
#define PETREL_VHOST_H

#include <stdint.h>

#include "../../common/error.h"

struct guest_mem;
struct virtqueue;

/* Opens path (O_RDWR | O_CLOEXEC) and makes this process its owner
 * (VHOST_SET_OWNER, which starts the kernel worker). The fd, or -errno. */
int vhost_open(const char *path, struct perr *err);
int vhost_get_features(int fd, uint64_t *features, struct perr *err);
int vhost_set_features(int fd, uint64_t features, struct perr *err);
/* One vhost region per guest RAM region (guest_phys_addr -> our mapping). */
int vhost_set_mem_table(int fd, const struct guest_mem *mem, struct perr *err);
/* Hands vq (ready, validated by virtq_setup) to the kernel as vring `index`,
 * starting at its current avail index: VHOST_SET_VRING_NUM, _BASE, _ADDR,
 * _KICK (guest notifications arrive on kick_fd) and _CALL (the kernel writes
 * call_fd for a used-buffer interrupt). */
int vhost_set_vring(int fd, unsigned index, const struct virtqueue *vq, int kick_fd, int call_fd,
		    struct perr *err);
/* Detaches the eventfds of vring `index` (after the backend stopped). */
void vhost_clear_vring(int fd, unsigned index);

#endif
