/*
 * The tap backend of virtio-net: a /dev/net/tun queue in tap mode with a
 * 12-byte virtio-net header in front of every frame (IFF_VNET_HDR,
 * TUNSETVNETHDRSZ; struct virtio_net_hdr_v1, virtio 1.2 §5.1.6), so that
 * checksum and segmentation offloads pass between the guest and the host
 * kernel without being computed in the VMM.
 *
 *   -netdev tap,id=net0,ifname=tap0     TUNSETIFF on /dev/net/tun (needs CAP_NET_ADMIN
 *                                       unless the tap is persistent and owned by us)
 *   -netdev tap,id=net0,fd=N            an inherited queue fd (petrel-netsetup, libvirt)
 *   -netdev tap,id=net0,ifname=tap0,queues=N
 *                                       N queues of one tap, each opened with
 *                                       IFF_MULTI_QUEUE (the tap must be multi_queue
 *                                       if it exists already)
 *   -netdev tap,id=net0,fds=N:M...      one inherited queue fd per queue pair, all of
 *                                       one IFF_MULTI_QUEUE tap
 *
 * The fd returned is O_CLOEXEC and O_NONBLOCK; the caller owns it.
 */
#ifndef PETREL_VIRTIO_TAP_H
#define PETREL_VIRTIO_TAP_H

#include <net/if.h>
#include <stdbool.h>

#include "../../common/error.h"
#include "../cli/config.h"

/* sizeof(struct virtio_net_hdr_v1): the header every frame carries. */
#define TAP_VNET_HDR_LEN 12

/* Offloads the host may hand us (TUNSETOFFLOAD), from the guest's features. */
#define TAP_OFFLOAD_CSUM (1u << 0) /* TUN_F_CSUM: partial checksums */
#define TAP_OFFLOAD_TSO4 (1u << 1)
#define TAP_OFFLOAD_TSO6 (1u << 2)
#define TAP_OFFLOAD_ECN	 (1u << 3)

/* Opens the netdev->queues queues of `netdev` (ifname=, fd= or fds=), checks
 * that each is a queue of one tap with a vnet header and sets the header size
 * to 12 and the offloads to none. fds_out[0, netdev->queues) get the fds (all
 * attached) and ifname_out the interface name. Errors name the tap or the
 * fd: "open tap 'tap0': Operation not permitted", "fd=7: not a tap device".
 * Inherited fds are owned (and closed on failure). */
int tap_open(const struct vmm_netdev *netdev, int *fds_out, char ifname_out[IFNAMSIZ],
	     struct perr *err);

/* TUNSETQUEUE: attaches (enabled) or detaches a queue of a multi-queue tap.
 * The kernel steers frames only to attached queues, and refuses to detach a
 * detached one (EINVAL). -errno. */
int tap_set_queue_enabled(int fd, bool enabled);

/* TUNSETOFFLOAD with TAP_OFFLOAD_* bits; -errno. */
int tap_set_offload(int fd, unsigned offloads);

/* vhostfd=N: checks that N is an open /dev/vhost-net fd (VHOST_GET_FEATURES
 * works, VHOST_NET_SET_BACKEND is known). Errors read "vhostfd=9: ...". */
int tap_check_vhost_net_fd(int fd, struct perr *err);

#endif
