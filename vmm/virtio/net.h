/*
 * virtio-net (virtio 1.2 §5.1) over a tap device (tap.h).
 *
 *   -netdev tap,id=net0,ifname=tap0|fd=N|fds=N:M...[,vhost=on|off][,vhostfd=N][,queues=P]
 *   -device virtio-net-device,netdev=net0,id=nic0[,mac=52:54:00:12:34:56]
 *
 * P receive/transmit queue pairs (queues=, 1 by default), each over its own
 * tap queue and, with vhost=on, its own vhost-net device; processed on the
 * device's loop (the main loop or an iothread's). With P > 1 the device
 * offers VIRTIO_NET_F_MQ (max_virtqueue_pairs = P) and a control queue whose
 * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET picks how many pairs carry traffic; the
 * tap queues of the others are detached (TUNSETQUEUE), so the host kernel
 * steers no frames to them. Frames go to and come from the tap with their
 * 12-byte virtio-net header, so checksum and TSO offloads cross untouched.
 * Without mac=, the MAC is 52:54:00:XX:YY:ZZ with XX YY ZZ the low 24 bits
 * (big-endian) of the 32-bit FNV-1a hash of "<VM name>/<device id>": stable
 * across restarts of the same VM, different between devices and VMs.
 */
#ifndef PETREL_VIRTIO_NET_H
#define PETREL_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../cli/config.h"
#include "virtio_dev.h"

/* The MAC used when mac= is not given (see above). */
void virtio_net_default_mac(const char *vm_name, const char *dev_id, uint8_t mac[6]);

/* Opens the tap of `netdev` for device `dev`. Errors read
 * "-netdev net0: open tap 'tap0': Operation not permitted". */
int virtio_net_create(const struct vmm_netdev *netdev, const struct vmm_net_device *dev,
		      const char *vm_name, struct virtio_dev **out, struct perr *err);

/* The device over an fd that behaves like a tap with a 12-byte vnet header
 * (one frame per read and write; tests use a SOCK_DGRAM socketpair). Takes
 * ownership of fd, also on failure. Offload ioctls are tried and their
 * failure ignored unless is_tap. */
int virtio_net_create_on_fd(int fd, bool is_tap, const char *ifname,
			    const struct vmm_net_device *dev, const uint8_t mac[6],
			    struct virtio_dev **out, struct perr *err);

/* The same with n_pairs queue pairs (1 to VMM_NET_MAX_QUEUE_PAIRS), fds[i]
 * the queue of pair i; with is_tap, the queues of one IFF_MULTI_QUEUE tap.
 * Takes ownership of every fd, also on failure. */
int virtio_net_create_on_fds(const int *fds, unsigned n_pairs, bool is_tap, const char *ifname,
			     const struct vmm_net_device *dev, const uint8_t mac[6],
			     struct virtio_dev **out, struct perr *err);

#endif
