#include "net.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../core/eventloop.h"
#include "tap.h"
#include "vhost.h"
#include "virtqueue.h"

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN	9
#define VIRTIO_NET_F_HOST_TSO4	11
#define VIRTIO_NET_F_HOST_TSO6	12
#define VIRTIO_NET_F_HOST_ECN	13
#define VIRTIO_NET_F_MRG_RXBUF	15
#define VIRTIO_NET_F_STATUS	16

#define VIRTIO_NET_S_LINK_UP 1

/* struct virtio_net_hdr_v1 fields (§5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE	    0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN	    0x80

/* Queues (§5.1.2): receiveq1, transmitq1. */
#define NET_RXQ	       0
#define NET_TXQ	       1
#define NET_QUEUE_SIZE 256

/* The largest frame either way: a 64 KiB GSO frame (the Linux limit) plus an
 * Ethernet header with a VLAN tag. */
#define NET_MAX_FRAME (65536u + 18u)
#define NET_MAX_CHAIN (TAP_VNET_HDR_LEN + NET_MAX_FRAME)
/* Frames handled per callback before the loop serves other fds (fairness
 * between rx, tx and other devices sharing the thread). */
#define NET_RX_BATCH 64
#define NET_TX_BATCH 128
/* iovecs of the rx buffers taken from the ring and not yet filled. */
#define NET_RX_IOV_MAX 1024
/* One readv: the buffers' iovecs plus the overflow tail (IOV_MAX is 1024). */
#define NET_READV_MAX 1024
/* Where the part of a frame beyond the guest's buffers lands, so that an
 * oversized frame is seen (and dropped with a message) instead of cut. */
#define NET_RX_TAIL_LEN (NET_MAX_CHAIN + 1)

struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

/* §5.1.4, little-endian; the fields after max_virtqueue_pairs are not offered. */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
} __attribute__((packed));

/* A receive chain taken from the ring, waiting for a frame. */
struct net_rx_buf {
	uint16_t head;
	unsigned iov_start; /* in rx_iov */
	unsigned n_iov;
	size_t len;
};

struct virtio_net {
	struct virtio_dev vdev; /* first: the transport hands us &vdev */
	char netdev_id[VMM_ID_MAX];
	char ifname[IFNAMSIZ];
	int fd;
	bool is_tap;
	uint64_t features;
	struct virtio_net_config config;

	/* Tap polling, only touched on the device's loop thread (the tap
	 * callback and the queue callbacks run there). */
	bool tap_in_loop;
	uint32_t tap_events; /* what the loop watches for now */
	bool rx_poll;	     /* watch EPOLLIN: the guest has receive buffers */
	bool rx_kicked;	     /* the rx queue was kicked and has not run since */
	bool tx_wait;	     /* watch EPOLLOUT: the tap refused a frame (EAGAIN) */

	/* Receive buffers taken from the ring in ring order (several per frame
	 * with MRG_RXBUF, §5.1.6.3.2). Under the transport lock. */
	struct net_rx_buf rx_bufs[NET_QUEUE_SIZE];
	unsigned rx_n;
	size_t rx_cap;
	struct iovec rx_iov[NET_RX_IOV_MAX];
	unsigned rx_iov_n;
	struct iovec readv_iov[NET_READV_MAX];
	uint8_t *rx_tail;

	bool tx_have_pending; /* tx_chain was popped but the tap said EAGAIN */
	struct virtq_chain tx_chain;
	struct virtq_chain rx_chain;

	/* vhost-net: the kernel moves frames between the rings and the tap;
	 * vhost_fd -1 means the userspace path above. */
	int vhost_fd;
	uint64_t vhost_features;
	int kick_fd[2]; /* the transport's */
	int call_fd;	/* the transport's */
	bool vhost_running;

	uint64_t rx_dropped, tx_dropped;
	struct log_ratelimit ratelimit;
};

static struct virtio_net *to_net(struct virtio_dev *vdev)
{
	return (struct virtio_net *)(void *)((char *)vdev - offsetof(struct virtio_net, vdev));
}

#define net_guest_warn(n, fmt, ...) \
	LOG_GUEST_RATELIMITED(&(n)->ratelimit, "%s: " fmt, (n)->vdev.id, __VA_ARGS__)

static bool net_has(const struct virtio_net *n, unsigned bit)
{
	return virtio_dev_has_feature(&n->vdev, bit);
}

/* Tap polling. */

static void net_update_poll(struct virtio_net *n)
{
	if (!n->tap_in_loop)
		return;
	uint32_t events = (n->rx_poll ? EPOLLIN : 0) | (n->tx_wait ? EPOLLOUT : 0);
	if (events == n->tap_events)
		return;
	int ret = eventloop_modify(n->vdev.loop, n->fd, events);
	if (ret < 0) {
		log_warn("%s: tap '%s': epoll: %s", n->vdev.id, n->ifname, strerror(-ret));
		return;
	}
	n->tap_events = events;
}

/* On the loop thread, outside the transport lock: the queues are only
 * touched from their callbacks, so this asks for those to run. A tap that is
 * still readable after a kick that did not run (a device without a live
 * driver) is no longer watched until the receive queue runs, so that frames
 * that cannot be delivered do not spin the loop; the common case costs no
 * epoll_ctl. */
static void net_tap_event(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* tun reports EPOLLERR once the device is gone (ip link del). */
		log_error("%s: tap '%s' is gone; the guest's link carries nothing from now on",
			  n->vdev.id, n->ifname);
		eventloop_remove(n->vdev.loop, n->fd);
		n->tap_in_loop = false;
		return;
	}
	if (events & EPOLLIN) {
		if (n->rx_kicked)
			n->rx_poll = false;
		n->rx_kicked = true;
		virtio_dev_kick(&n->vdev, NET_RXQ);
	}
	if (events & EPOLLOUT) {
		n->tx_wait = false;
		virtio_dev_kick(&n->vdev, NET_TXQ);
	}
	net_update_poll(n);
}

/* Receive (§5.1.6.3, §5.1.6.4). */

/* Drops the first k buffers (they were filled and returned). */
static void net_rx_consume(struct virtio_net *n, unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		n->rx_cap -= n->rx_bufs[i].len;
	if (k >= n->rx_n) {
		n->rx_n = 0;
		n->rx_iov_n = 0;
		n->rx_cap = 0;
		return;
	}
	unsigned base = n->rx_bufs[k].iov_start;
	memmove(n->rx_bufs, n->rx_bufs + k, (n->rx_n - k) * sizeof(n->rx_bufs[0]));
	n->rx_n -= k;
	for (unsigned i = 0; i < n->rx_n; i++)
		n->rx_bufs[i].iov_start -= base;
	memmove(n->rx_iov, n->rx_iov + base, (n->rx_iov_n - base) * sizeof(n->rx_iov[0]));
	n->rx_iov_n -= base;
}

/* Takes receive chains from the ring until one frame of any size fits (one
 * chain without MRG_RXBUF, whose frames must fit a single chain). False
 * when the guest has given no buffer at all. */
static bool net_rx_take_buffers(struct virtio_net *n, struct virtqueue *vq)
{
	bool mrg = net_has(n, VIRTIO_NET_F_MRG_RXBUF);
	while (n->rx_n < NET_QUEUE_SIZE && (n->rx_n == 0 || (mrg && n->rx_cap < NET_MAX_CHAIN))) {
		/* A chain has at most queue-size descriptors. */
		if (n->rx_iov_n + vq->size > NET_RX_IOV_MAX)
			break;
		struct virtq_chain *c = &n->rx_chain;
		if (virtq_pop_desc_chain(vq, c) <= 0)
			break;
		if (c->n_out || c->in_len < TAP_VNET_HDR_LEN) {
			/* §5.1.6.3: receive buffers are device-writable and hold a header. */
			net_guest_warn(n,
				       "receive chain %u has %u read-only buffers and %zu writable "
				       "bytes; returned unused",
				       c->head, c->n_out, c->in_len);
			virtq_push_used(vq, c->head, 0);
			continue;
		}
		struct net_rx_buf *b = &n->rx_bufs[n->rx_n++];
		b->head = c->head;
		b->iov_start = n->rx_iov_n;
		b->n_iov = c->n_in;
		b->len = c->in_len;
		memcpy(n->rx_iov + n->rx_iov_n, virtq_chain_in(c), c->n_in * sizeof(struct iovec));
		n->rx_iov_n += c->n_in;
		n->rx_cap += c->in_len;
	}
	return n->rx_n > 0;
}

/* The readv vector: as many held buffers as one frame may need, then the
 * tail. *n_bufs and *cap say which buffers are in it. */
static int net_rx_build_iov(struct virtio_net *n, unsigned *n_bufs, size_t *cap)
{
	bool mrg = net_has(n, VIRTIO_NET_F_MRG_RXBUF);
	unsigned k = 0, b;
	size_t c = 0;
	for (b = 0; b < n->rx_n; b++) {
		const struct net_rx_buf *rb = &n->rx_bufs[b];
		if (b > 0 && (!mrg || c >= NET_MAX_CHAIN))
			break;
		if (k + rb->n_iov >= NET_READV_MAX)
			break;
		memcpy(n->readv_iov + k, n->rx_iov + rb->iov_start,
		       rb->n_iov * sizeof(struct iovec));
		k += rb->n_iov;
		c += rb->len;
	}
	n->readv_iov[k++] = (struct iovec){n->rx_tail, NET_RX_TAIL_LEN};
	*n_bufs = b;
	*cap = c;
	return (int)k;
}

/* A frame of len bytes (header included) is in the first buffers: finish
 * its header and return them. */
static void net_rx_deliver(struct virtio_net *n, struct virtqueue *vq, size_t len)
{
	unsigned used = 0;
	for (size_t left = len; left > 0 && used < n->rx_n; used++)
		left -= left < n->rx_bufs[used].len ? left : n->rx_bufs[used].len;
	const struct net_rx_buf *first = &n->rx_bufs[0];
	const struct iovec *hiov = n->rx_iov + first->iov_start;
	/* §5.1.6.4: num_buffers is the number of chains used (1 without
	 * MRG_RXBUF); without GUEST_CSUM, flags must be zero (the host already
	 * completed the checksum: no TUN_F_CSUM was set). */
	uint16_t num_buffers = htole16((uint16_t)used);
	virtq_iov_from_buf(hiov, first->n_iov, offsetof(struct virtio_net_hdr_v1, num_buffers),
			   &num_buffers, sizeof(num_buffers));
	if (!net_has(n, VIRTIO_NET_F_GUEST_CSUM)) {
		uint8_t zero = 0;
		virtq_iov_from_buf(hiov, first->n_iov, 0, &zero, 1);
	}
	size_t left = len;
	for (unsigned i = 0; i < used; i++) {
		size_t take = left < n->rx_bufs[i].len ? left : n->rx_bufs[i].len;
		virtq_push_used(vq, n->rx_bufs[i].head, (uint32_t)take);
		left -= take;
	}
	net_rx_consume(n, used);
}

static void net_rx(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vqs[NET_RXQ];
	unsigned frames = 0;
	n->rx_kicked = false;
	for (;;) {
		if (frames == NET_RX_BATCH) {
			/* More may be waiting: the level-triggered tap event comes back
			 * after the other fds had their turn. */
			n->rx_poll = true;
			break;
		}
		if (!net_rx_take_buffers(n, vq)) {
			/* Frames stay in the tap's queue; the guest notifies this
			 * queue when it adds buffers, which brings us back. */
			n->rx_poll = false;
			break;
		}
		unsigned n_bufs;
		size_t cap;
		int cnt = net_rx_build_iov(n, &n_bufs, &cap);
		ssize_t got = readv(n->fd, n->readv_iov, cnt);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				net_guest_warn(n, "read from tap '%s': %s", n->ifname,
					       strerror(errno));
			n->rx_poll = true;
			break;
		}
		frames++;
		if ((size_t)got > cap || (size_t)got < TAP_VNET_HDR_LEN) {
			n->rx_dropped++;
			net_guest_warn(n,
				       "received frame of %zd bytes (header included) does not fit "
				       "the %zu bytes of guest receive buffers; dropped",
				       got, cap);
			continue;
		}
		net_rx_deliver(n, vq, (size_t)got);
	}
	net_update_poll(n);
	virtq_notify_used(vq);
}

/* Transmit (§5.1.6.2). */

/* Why the header cannot go to the tap, or NULL. The tap checks the rest
 * (lengths, offsets) and refuses a bad frame with EINVAL. */
static const char *net_tx_header_problem(const struct virtio_net *n,
					 const struct virtio_net_hdr_v1 *h)
{
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !net_has(n, VIRTIO_NET_F_CSUM))
		return "asks for a checksum without VIRTIO_NET_F_CSUM";
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	bool ecn = h->gso_type & VIRTIO_NET_HDR_GSO_ECN;
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return ecn ? "has GSO_ECN without a GSO type" : NULL;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4 && !net_has(n, VIRTIO_NET_F_HOST_TSO4))
		return "uses TSO over IPv4 without VIRTIO_NET_F_HOST_TSO4";
	if (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !net_has(n, VIRTIO_NET_F_HOST_TSO6))
		return "uses TSO over IPv6 without VIRTIO_NET_F_HOST_TSO6";
	if (gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6)
		return "has a GSO type that was not offered";
	if (ecn && !net_has(n, VIRTIO_NET_F_HOST_ECN))
		return "uses GSO_ECN without VIRTIO_NET_F_HOST_ECN";
	return NULL;
}

/* 0 when the chain is done with (sent or dropped), -EAGAIN when the tap
 * cannot take it now. */
static int net_tx_frame(struct virtio_net *n, struct virtq_chain *c)
{
	struct virtio_net_hdr_v1 hdr;
	const char *bad = NULL;
	if (c->n_in)
		bad = "has device-writable buffers";
	else if (c->out_len < TAP_VNET_HDR_LEN)
		bad = "is shorter than the 12-byte virtio-net header";
	else if (c->out_len > NET_MAX_CHAIN)
		bad = "is longer than a 64 KiB frame and its header";
	else if (virtq_iov_to_buf(c->iov, c->n_out, 0, &hdr, sizeof(hdr)) == sizeof(hdr))
		bad = net_tx_header_problem(n, &hdr);
	if (bad) {
		n->tx_dropped++;
		net_guest_warn(n, "transmit chain %u (%zu bytes) %s; dropped", c->head, c->out_len,
			       bad);
		return 0;
	}
	for (;;) {
		if (writev(n->fd, c->iov, (int)c->n_out) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return -EAGAIN;
		/* EIO: the tap is down; EINVAL: the tap refused the header. */
		n->tx_dropped++;
		net_guest_warn(n, "write to tap '%s': %s; frame dropped", n->ifname,
			       strerror(errno));
		return 0;
	}
}

static void net_tx(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vqs[NET_TXQ];
	unsigned frames;
	for (frames = 0; frames < NET_TX_BATCH; frames++) {
		if (!n->tx_have_pending) {
			if (virtq_pop_desc_chain(vq, &n->tx_chain) <= 0)
				break;
			n->tx_have_pending = true;
		}
		if (net_tx_frame(n, &n->tx_chain) == -EAGAIN) {
			/* Keep the chain; EPOLLOUT brings us back. */
			n->tx_wait = true;
			net_update_poll(n);
			break;
		}
		n->tx_have_pending = false;
		virtq_push_used(vq, n->tx_chain.head, 0);
	}
	/* A full batch may leave chains behind: with EVENT_IDX the guest does
	 * not notify again until the ring was seen empty, so come back. */
	if (frames == NET_TX_BATCH)
		virtio_dev_kick(&n->vdev, NET_TXQ);
	virtq_notify_used(vq);
}

/* vhost-net. */

static void net_vhost_stop(struct virtio_net *n)
{
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file none = {.index = i, .fd = -1};
		(void)ioctl(n->vhost_fd, VHOST_NET_SET_BACKEND, &none);
		vhost_clear_vring(n->vhost_fd, i);
	}
	n->vhost_running = false;
}

/* DRIVER_OK: both rings and the tap go to the kernel. The tap keeps its
 * 12-byte header, so vhost-net passes headers through untouched (without
 * VHOST_NET_F_VIRTIO_NET_HDR it adds none of its own). */
static int net_vhost_start(struct virtio_net *n)
{
	struct perr err = {0};
	int ret = vhost_set_features(n->vhost_fd, n->vdev.features & n->vhost_features, &err);
	if (ret == 0)
		ret = vhost_set_mem_table(n->vhost_fd, n->vdev.mem, &err);
	for (unsigned i = 0; ret == 0 && i < 2; i++) {
		struct virtqueue *vq = &n->vdev.vqs[i];
		if (!vq->ready) {
			ret = perr_setx(&err, -EINVAL, "queue %u is not enabled", i);
			break;
		}
		ret = vhost_set_vring(n->vhost_fd, i, vq, n->kick_fd[i], n->call_fd, &err);
		if (ret < 0)
			break;
		struct vhost_vring_file backend = {.index = i, .fd = n->fd};
		if (ioctl(n->vhost_fd, VHOST_NET_SET_BACKEND, &backend) < 0)
			ret = perr_set(&err, -errno, "vring %u: VHOST_NET_SET_BACKEND", i);
	}
	if (ret < 0) {
		log_error("%s: starting vhost-net: %s", n->vdev.id, err.msg);
		net_vhost_stop(n);
		return ret;
	}
	n->vhost_running = true;
	return 0;
}

/* Device ops. */

static uint64_t net_get_features(struct virtio_dev *vdev)
{
	return to_net(vdev)->features;
}

static uint32_t net_config_size(struct virtio_dev *vdev)
{
	(void)vdev;
	return sizeof(struct virtio_net_config);
}

static void net_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&to_net(vdev)->config + offset, len);
}

static void net_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
			     unsigned len)
{
	/* §5.1.4: with VERSION_1 every field is read-only for the driver. */
	struct virtio_net *n = to_net(vdev);
	(void)data;
	net_guest_warn(n, "%u-byte config write at %u ignored", len, offset);
}

static int net_activate(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);
	/* The host may hand us what the guest said it can take (§5.1.3.1). */
	unsigned off = 0;
	if (net_has(n, VIRTIO_NET_F_GUEST_CSUM))
		off |= TAP_OFFLOAD_CSUM;
	if (net_has(n, VIRTIO_NET_F_GUEST_TSO4))
		off |= TAP_OFFLOAD_TSO4;
	if (net_has(n, VIRTIO_NET_F_GUEST_TSO6))
		off |= TAP_OFFLOAD_TSO6;
	if (net_has(n, VIRTIO_NET_F_GUEST_ECN))
		off |= TAP_OFFLOAD_ECN;
	int ret = tap_set_offload(n->fd, off);
	if (ret < 0 && n->is_tap) {
		log_error("%s: tap '%s': TUNSETOFFLOAD 0x%x: %s", vdev->id, n->ifname, off,
			  strerror(-ret));
		return ret;
	}
	if (n->vhost_fd >= 0)
		return net_vhost_start(n);
	return 0;
}

static void net_queue_notify(struct virtio_dev *vdev, unsigned index)
{
	struct virtio_net *n = to_net(vdev);
	if (n->vhost_fd >= 0)
		return; /* the kernel has the rings */
	if (index == NET_RXQ)
		net_rx(n);
	else
		net_tx(n);
}

static void net_reset(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);
	if (n->vhost_running)
		net_vhost_stop(n);
	/* Held buffers and a waiting chain belong to the old rings. The tap
	 * events stay as they are: they only kick queues, which a reset device
	 * ignores until the driver is back. */
	n->rx_n = 0;
	n->rx_iov_n = 0;
	n->rx_cap = 0;
	n->tx_have_pending = false;
}

static int net_realize(struct virtio_dev *vdev, struct perr *err)
{
	struct virtio_net *n = to_net(vdev);
	if (n->vhost_fd >= 0) {
		for (unsigned i = 0; i < 2; i++) {
			int fd = virtio_dev_queue_kick_fd(vdev, i);
			if (fd < 0)
				return perr_set(err, fd,
						"%s: queue %u: no notification eventfd for vhost",
						vdev->id, i);
			n->kick_fd[i] = fd;
		}
		int fd = virtio_dev_call_fd(vdev);
		if (fd < 0)
			return perr_set(err, fd, "%s: no interrupt eventfd for vhost", vdev->id);
		n->call_fd = fd;
		return 0;
	}
	if (!vdev->loop)
		return 0; /* tests: frames are read when the guest notifies the rx queue */
	int ret = eventloop_add(vdev->loop, n->fd, EPOLLIN, net_tap_event, n);
	if (ret < 0)
		return perr_set(err, ret, "-netdev %s: watching tap '%s'", n->netdev_id, n->ifname);
	n->tap_in_loop = true;
	n->tap_events = EPOLLIN;
	n->rx_poll = true;
	return 0;
}

static void net_destroy(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);
	if (n->tap_in_loop)
		eventloop_remove(vdev->loop, n->fd);
	if (n->vhost_fd >= 0) {
		if (n->vhost_running)
			net_vhost_stop(n);
		close(n->vhost_fd);
	}
	if (n->fd >= 0)
		close(n->fd);
	free(n->rx_tail);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .num_queues = 2,
    .max_queue_size = NET_QUEUE_SIZE,
    .get_features = net_get_features,
    .config_read = net_config_read,
    .config_write = net_config_write,
    .config_size = net_config_size,
    .realize = net_realize,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
    .destroy = net_destroy,
};

/* Creation. */

void virtio_net_default_mac(const char *vm_name, const char *dev_id, uint8_t mac[6])
{
	/* FNV-1a, 32 bits, over "<vm name>/<device id>". */
	uint32_t h = 2166136261u;
	const char *parts[] = {vm_name ? vm_name : "", "/", dev_id ? dev_id : ""};
	for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++)
		for (const unsigned char *s = (const unsigned char *)parts[p]; *s; s++) {
			h ^= *s;
			h *= 16777619u;
		}
	/* 52:54:00 is locally administered and unicast (QEMU's prefix too). */
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

int virtio_net_create_on_fd(int fd, bool is_tap, const char *ifname,
			    const struct vmm_net_device *dev, const uint8_t mac[6],
			    struct virtio_dev **out, struct perr *err)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint8_t *tail = malloc(NET_RX_TAIL_LEN);
	if (!n || !tail) {
		free(n);
		free(tail);
		close(fd);
		perr_set(err, -ENOMEM, "-device %s", dev->id);
		return -ENOMEM;
	}
	n->vdev.ops = &net_ops;
	n->fd = fd;
	n->vhost_fd = -1;
	n->kick_fd[0] = n->kick_fd[1] = n->call_fd = -1;
	n->is_tap = is_tap;
	n->rx_tail = tail;
	snprintf(n->netdev_id, sizeof(n->netdev_id), "%s", dev->netdev);
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifname);
	snprintf(n->vdev.id, sizeof(n->vdev.id), "virtio-net %s", dev->id);
	n->features = VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		      VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
		      VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) |
		      VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
		      VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
		      VIRTIO_BIT(VIRTIO_NET_F_STATUS);
	memcpy(n->config.mac, mac, 6);
	n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->config.max_virtqueue_pairs = htole16(1);
	*out = &n->vdev;
	return 0;
}

/* What vhost-net must do for the features this device and its transport
 * may negotiate: headers of 12 bytes, and the ring features. */
#define NET_VHOST_REQUIRED                                                     \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | \
	 VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC))

static void net_vhost_unavailable(const struct vmm_netdev *netdev, const char *why)
{
	log_warn("-netdev %s: vhost-net is not available (%s); using the userspace virtio-net path",
		 netdev->id, why);
}

/* vhost=on / vhostfd=: *vhost_fd gets an owned vhost-net fd, or -1 when the
 * kernel path cannot be had (a warning, then the userspace path). A vhostfd
 * that is not a usable vhost-net fd is a start error. */
static int net_open_vhost(const struct vmm_netdev *netdev, int *vhost_fd, uint64_t *features,
			  struct perr *err)
{
	*vhost_fd = -1;
	if (!netdev->vhost && netdev->vhostfd < 0)
		return 0;
	int fd;
	struct perr why = {0};
	if (netdev->vhostfd >= 0) {
		int ret = tap_check_vhost_net_fd(netdev->vhostfd, err);
		if (ret < 0)
			return ret;
		fd = netdev->vhostfd;
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || ioctl(fd, VHOST_SET_OWNER, NULL) < 0) {
			ret = perr_set(err, -errno, "vhostfd=%d: VHOST_SET_OWNER", fd);
			close(fd);
			return ret;
		}
	} else {
		fd = vhost_open("/dev/vhost-net", &why);
		if (fd < 0) {
			net_vhost_unavailable(netdev, why.msg);
			return 0;
		}
	}
	uint64_t f = 0;
	if (vhost_get_features(fd, &f, &why) < 0 ||
	    (f & NET_VHOST_REQUIRED) != NET_VHOST_REQUIRED) {
		if (!why.msg[0])
			snprintf(why.msg, sizeof(why.msg),
				 "the kernel's vhost-net lacks features 0x%llx",
				 (unsigned long long)(NET_VHOST_REQUIRED & ~f));
		net_vhost_unavailable(netdev, why.msg);
		close(fd);
		return 0;
	}
	*vhost_fd = fd;
	*features = f;
	return 0;
}

int virtio_net_create(const struct vmm_netdev *netdev, const struct vmm_net_device *dev,
		      const char *vm_name, struct virtio_dev **out, struct perr *err)
{
	int ret;
	if (netdev->queues > 1 || netdev->n_fds > 1)
		return perr_setx(err, -EINVAL,
				 "-netdev %s: queues=%u: only one queue pair is supported",
				 netdev->id, netdev->queues > 1 ? netdev->queues : netdev->n_fds);
	int vhost_fd;
	uint64_t vhost_features = 0;
	ret = net_open_vhost(netdev, &vhost_fd, &vhost_features, err);
	if (ret < 0)
		return perr_wrap(err, "-netdev %s", netdev->id);
	int fd;
	char ifname[IFNAMSIZ];
	ret = tap_open(netdev, &fd, ifname, err);
	if (ret < 0) {
		if (vhost_fd >= 0)
			close(vhost_fd);
		return perr_wrap(err, "-netdev %s", netdev->id);
	}
	uint8_t mac[6];
	if (dev->mac_set)
		memcpy(mac, dev->mac, sizeof(mac));
	else
		virtio_net_default_mac(vm_name, dev->id, mac);
	struct virtio_dev *vdev;
	ret = virtio_net_create_on_fd(fd, true, ifname, dev, mac, &vdev, err);
	if (ret < 0) {
		if (vhost_fd >= 0)
			close(vhost_fd);
		return ret;
	}
	struct virtio_net *n = to_net(vdev);
	n->vhost_fd = vhost_fd;
	n->vhost_features = vhost_features;
	*out = vdev;
	return 0;
}
