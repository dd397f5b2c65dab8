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
#define VIRTIO_NET_F_CTRL_VQ	17
#define VIRTIO_NET_F_MQ		22

#define VIRTIO_NET_S_LINK_UP 1

/* struct virtio_net_hdr_v1 fields (§5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE	    0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN	    0x80

/* Control virtqueue commands (§5.1.6.5): a device-readable class, command
 * and data, then one device-writable ack byte. */
#define VIRTIO_NET_OK			0
#define VIRTIO_NET_ERR			1
#define VIRTIO_NET_CTRL_MQ		4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN 1
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX 0x8000

/* Queues (§5.1.2): receiveq1, transmitq1, ..., receiveqN, transmitqN, and
 * with multiqueue the controlq (at 2N with VIRTIO_NET_F_MQ, else at 2). */
#define NET_RXQ(pair)  ((size_t)2 * (pair))
#define NET_TXQ(pair)  ((size_t)2 * (pair) + 1u)
#define NET_QUEUE_SIZE 256
#define NET_MAX_PAIRS  VMM_NET_MAX_QUEUE_PAIRS

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

/* One receive/transmit queue pair and its tap queue. */
struct net_pair {
	struct virtio_net *n;
	unsigned index;
	int fd;
	/* Steered to by the host kernel (TUNSETQUEUE). Written under the
	 * transport lock, read by the tap callback: __atomic. */
	bool tap_attached;

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
	/* With MRG_RXBUF, a frame read while the guest had fewer than 64 KiB of
	 * buffers: bytes [0, rx_partial_cap) are in the held buffers, the rest
	 * at the start of rx_tail, until more buffers come (0: none). */
	size_t rx_partial_len;
	size_t rx_partial_cap;

	bool tx_have_pending; /* tx_chain was popped but the tap said EAGAIN */
	struct virtq_chain tx_chain;
	struct virtq_chain rx_chain;

	/* vhost-net, one vhost device per pair: the kernel moves frames
	 * between the rings and the tap queue; -1 means the userspace path. */
	int vhost_fd;
	int kick_fd[2]; /* the transport's */
	bool vhost_running;

	uint64_t rx_dropped, tx_dropped;
};

struct virtio_net {
	struct virtio_dev vdev; /* first: the transport hands us &vdev */
	/* net_ops with this device's queue count (2 per pair, plus the
	 * control queue with multiqueue). */
	struct virtio_dev_ops ops;
	char netdev_id[VMM_ID_MAX];
	char ifname[IFNAMSIZ];
	bool is_tap;
	uint64_t features;
	struct virtio_net_config config;

	unsigned n_pairs;    /* max_virtqueue_pairs */
	unsigned curr_pairs; /* in use: 1 until VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET */
	struct net_pair *pairs[NET_MAX_PAIRS];
	struct virtq_chain ctrl_chain;

	uint64_t vhost_features;
	int call_fd; /* the transport's, shared by every vhost vring */

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

/* Queue pairs. */

static bool net_multiqueue(const struct virtio_net *n)
{
	return n->n_pairs > 1;
}

/* Where the guest finds the control queue (§5.1.2). */
static unsigned net_ctrl_queue(const struct virtio_net *n)
{
	return net_has(n, VIRTIO_NET_F_MQ) ? 2u * n->n_pairs : 2u;
}

/* The host kernel steers frames to the attached queues of a multi-queue tap
 * only: a pair the guest does not use gets none (§5.1.6.5.5: nothing on
 * receive queues beyond virtqueue_pairs). */
static void net_pair_attach_tap(struct net_pair *p, bool on)
{
	struct virtio_net *n = p->n;
	if (!net_multiqueue(n) || !n->is_tap ||
	    __atomic_load_n(&p->tap_attached, __ATOMIC_SEQ_CST) == on)
		return;
	/* Before detaching: an EPOLLERR seen after it is then not taken for
	 * a tap that is gone (see net_tap_event). */
	if (!on)
		__atomic_store_n(&p->tap_attached, false, __ATOMIC_SEQ_CST);
	int ret = tap_set_queue_enabled(p->fd, on);
	if (ret < 0) {
		net_guest_warn(n, "tap '%s' queue %u: TUNSETQUEUE %s: %s", n->ifname, p->index,
			       on ? "attach" : "detach", strerror(-ret));
		if (!on)
			__atomic_store_n(&p->tap_attached, true, __ATOMIC_SEQ_CST);
		return;
	}
	if (on)
		__atomic_store_n(&p->tap_attached, true, __ATOMIC_SEQ_CST);
}

/* Tap polling. */

static void net_update_poll(struct net_pair *p)
{
	if (!p->tap_in_loop)
		return;
	uint32_t events = (p->rx_poll ? EPOLLIN : 0) | (p->tx_wait ? EPOLLOUT : 0);
	if (events == p->tap_events)
		return;
	int ret = eventloop_modify(p->n->vdev.loop, p->fd, events);
	if (ret < 0) {
		log_warn("%s: tap '%s': epoll: %s", p->n->vdev.id, p->n->ifname, strerror(-ret));
		return;
	}
	p->tap_events = events;
}

static void net_tap_event(void *opaque, uint32_t events);

/* On the loop thread. */
static int net_pair_watch(struct net_pair *p)
{
	if (p->tap_in_loop || !p->n->vdev.loop)
		return 0;
	int ret = eventloop_add(p->n->vdev.loop, p->fd, EPOLLIN, net_tap_event, p);
	if (ret < 0)
		return ret;
	p->tap_in_loop = true;
	p->tap_events = EPOLLIN;
	p->rx_poll = true;
	p->rx_kicked = false;
	return 0;
}

static void net_pair_unwatch(struct net_pair *p)
{
	if (!p->tap_in_loop)
		return;
	eventloop_remove(p->n->vdev.loop, p->fd);
	p->tap_in_loop = false;
}

/* On the loop thread, outside the transport lock: the queues are only
 * touched from their callbacks, so this asks for those to run. A tap that is
 * still readable after a kick that did not run (a device without a live
 * driver) is no longer watched until the receive queue runs, so that frames
 * that cannot be delivered do not spin the loop; the common case costs no
 * epoll_ctl. */
static void net_tap_event(void *opaque, uint32_t events)
{
	struct net_pair *p = opaque;
	struct virtio_net *n = p->n;
	if (events & (EPOLLERR | EPOLLHUP)) {
		if (!__atomic_load_n(&p->tap_attached, __ATOMIC_SEQ_CST)) {
			/* A detached queue: watched again when the guest enables it. */
			net_pair_unwatch(p);
			return;
		}
		/* tun reports EPOLLERR once the device is gone (ip link del). */
		log_error("%s: tap '%s' is gone; the guest's link carries nothing from now on",
			  n->vdev.id, n->ifname);
		net_pair_unwatch(p);
		return;
	}
	if (events & EPOLLIN) {
		if (p->rx_kicked)
			p->rx_poll = false;
		p->rx_kicked = true;
		virtio_dev_kick(&n->vdev, NET_RXQ(p->index));
	}
	if (events & EPOLLOUT) {
		p->tx_wait = false;
		virtio_dev_kick(&n->vdev, NET_TXQ(p->index));
	}
	net_update_poll(p);
}

/* Receive (§5.1.6.3, §5.1.6.4). */

/* Drops the first k buffers (they were filled and returned). */
static void net_rx_consume(struct net_pair *p, unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		p->rx_cap -= p->rx_bufs[i].len;
	if (k >= p->rx_n) {
		p->rx_n = 0;
		p->rx_iov_n = 0;
		p->rx_cap = 0;
		return;
	}
	unsigned base = p->rx_bufs[k].iov_start;
	memmove(p->rx_bufs, p->rx_bufs + k, (p->rx_n - k) * sizeof(p->rx_bufs[0]));
	p->rx_n -= k;
	for (unsigned i = 0; i < p->rx_n; i++)
		p->rx_bufs[i].iov_start -= base;
	memmove(p->rx_iov, p->rx_iov + base, (p->rx_iov_n - base) * sizeof(p->rx_iov[0]));
	p->rx_iov_n -= base;
}

/* Takes receive chains from the ring until one frame of any size fits (one
 * chain without MRG_RXBUF, whose frames must fit a single chain). False
 * when the guest has given no buffer at all. */
static bool net_rx_take_buffers(struct net_pair *p, struct virtqueue *vq)
{
	struct virtio_net *n = p->n;
	bool mrg = net_has(n, VIRTIO_NET_F_MRG_RXBUF);
	while (p->rx_n < NET_QUEUE_SIZE && (p->rx_n == 0 || (mrg && p->rx_cap < NET_MAX_CHAIN))) {
		/* A chain has at most queue-size descriptors. */
		if (p->rx_iov_n + vq->size > NET_RX_IOV_MAX)
			break;
		struct virtq_chain *c = &p->rx_chain;
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
		struct net_rx_buf *b = &p->rx_bufs[p->rx_n++];
		b->head = c->head;
		b->iov_start = p->rx_iov_n;
		b->n_iov = c->n_in;
		b->len = c->in_len;
		memcpy(p->rx_iov + p->rx_iov_n, virtq_chain_in(c), c->n_in * sizeof(struct iovec));
		p->rx_iov_n += c->n_in;
		p->rx_cap += c->in_len;
	}
	return p->rx_n > 0;
}

/* The readv vector: as many held buffers as one frame may need, then the
 * tail. *n_bufs and *cap say which buffers are in it. */
static int net_rx_build_iov(struct net_pair *p, unsigned *n_bufs, size_t *cap)
{
	bool mrg = net_has(p->n, VIRTIO_NET_F_MRG_RXBUF);
	unsigned k = 0, b;
	size_t c = 0;
	for (b = 0; b < p->rx_n; b++) {
		const struct net_rx_buf *rb = &p->rx_bufs[b];
		if (b > 0 && (!mrg || c >= NET_MAX_CHAIN))
			break;
		if (k + rb->n_iov >= NET_READV_MAX)
			break;
		memcpy(p->readv_iov + k, p->rx_iov + rb->iov_start,
		       rb->n_iov * sizeof(struct iovec));
		k += rb->n_iov;
		c += rb->len;
	}
	p->readv_iov[k++] = (struct iovec){p->rx_tail, NET_RX_TAIL_LEN};
	*n_bufs = b;
	*cap = c;
	return (int)k;
}

/* A frame of len bytes (header included) is in the first buffers: finish
 * its header and return them. */
static void net_rx_deliver(struct net_pair *p, struct virtqueue *vq, size_t len)
{
	unsigned used = 0;
	for (size_t left = len; left > 0 && used < p->rx_n; used++)
		left -= left < p->rx_bufs[used].len ? left : p->rx_bufs[used].len;
	const struct net_rx_buf *first = &p->rx_bufs[0];
	const struct iovec *hiov = p->rx_iov + first->iov_start;
	/* §5.1.6.4: num_buffers is the number of chains used (1 without
	 * MRG_RXBUF); without GUEST_CSUM, flags must be zero (the host already
	 * completed the checksum: no TUN_F_CSUM was set). */
	uint16_t num_buffers = htole16((uint16_t)used);
	virtq_iov_from_buf(hiov, first->n_iov, offsetof(struct virtio_net_hdr_v1, num_buffers),
			   &num_buffers, sizeof(num_buffers));
	if (!net_has(p->n, VIRTIO_NET_F_GUEST_CSUM)) {
		uint8_t zero = 0;
		virtq_iov_from_buf(hiov, first->n_iov, 0, &zero, 1);
	}
	size_t left = len;
	for (unsigned i = 0; i < used; i++) {
		size_t take = left < p->rx_bufs[i].len ? left : p->rx_bufs[i].len;
		virtq_push_used(vq, p->rx_bufs[i].head, (uint32_t)take);
		left -= take;
	}
	net_rx_consume(p, used);
}

/* A held partial frame: true when it went to the guest, false when the
 * guest has still not given buffers enough. */
static bool net_rx_finish_partial(struct net_pair *p, struct virtqueue *vq)
{
	if (p->rx_cap < p->rx_partial_len)
		return false;
	virtq_iov_from_buf(p->rx_iov, p->rx_iov_n, p->rx_partial_cap, p->rx_tail,
			   p->rx_partial_len - p->rx_partial_cap);
	net_rx_deliver(p, vq, p->rx_partial_len);
	p->rx_partial_len = 0;
	return true;
}

static void net_rx(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	struct virtqueue *vq = &n->vdev.vqs[NET_RXQ(p->index)];
	unsigned frames = 0;
	p->rx_kicked = false;
	for (;;) {
		if (frames == NET_RX_BATCH) {
			/* More may be waiting: the level-triggered tap event comes back
			 * after the other fds had their turn. */
			p->rx_poll = true;
			break;
		}
		if (!net_rx_take_buffers(p, vq) ||
		    (p->rx_partial_len && !net_rx_finish_partial(p, vq))) {
			/* Frames stay in the tap's queue; the guest notifies this
			 * queue when it adds buffers, which brings us back. */
			p->rx_poll = false;
			break;
		}
		if (p->rx_n == 0)
			continue; /* a held frame took every buffer */
		unsigned n_bufs;
		size_t cap;
		int cnt = net_rx_build_iov(p, &n_bufs, &cap);
		ssize_t got = readv(p->fd, p->readv_iov, cnt);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				net_guest_warn(n, "read from tap '%s' queue %u: %s", n->ifname,
					       p->index, strerror(errno));
			p->rx_poll = true;
			break;
		}
		frames++;
		if ((size_t)got > cap && (size_t)got <= NET_MAX_CHAIN &&
		    net_has(n, VIRTIO_NET_F_MRG_RXBUF)) {
			/* The ring ran short of a whole 64 KiB: keep the frame
			 * (the rest is in rx_tail) until the guest adds buffers,
			 * rather than drop it and make TCP retransmit. */
			p->rx_partial_len = (size_t)got;
			p->rx_partial_cap = cap;
			continue;
		}
		if ((size_t)got > cap || (size_t)got < TAP_VNET_HDR_LEN) {
			p->rx_dropped++;
			net_guest_warn(n,
				       "received frame of %zd bytes (header included) does not fit "
				       "the %zu bytes of guest receive buffers; dropped",
				       got, cap);
			continue;
		}
		net_rx_deliver(p, vq, (size_t)got);
	}
	net_update_poll(p);
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
static int net_tx_frame(struct net_pair *p, struct virtq_chain *c)
{
	struct virtio_net *n = p->n;
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
		p->tx_dropped++;
		net_guest_warn(n, "transmit chain %u (%zu bytes) %s; dropped", c->head, c->out_len,
			       bad);
		return 0;
	}
	for (;;) {
		if (writev(p->fd, c->iov, (int)c->n_out) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return -EAGAIN;
		/* EIO: the tap is down; EINVAL: the tap refused the header. */
		p->tx_dropped++;
		net_guest_warn(n, "write to tap '%s' queue %u: %s; frame dropped", n->ifname,
			       p->index, strerror(errno));
		return 0;
	}
}

static void net_tx(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	struct virtqueue *vq = &n->vdev.vqs[NET_TXQ(p->index)];
	unsigned frames;
	for (frames = 0; frames < NET_TX_BATCH; frames++) {
		if (!p->tx_have_pending) {
			if (virtq_pop_desc_chain(vq, &p->tx_chain) <= 0)
				break;
			p->tx_have_pending = true;
		}
		if (net_tx_frame(p, &p->tx_chain) == -EAGAIN) {
			/* Keep the chain; EPOLLOUT brings us back. */
			p->tx_wait = true;
			net_update_poll(p);
			break;
		}
		p->tx_have_pending = false;
		virtq_push_used(vq, p->tx_chain.head, 0);
	}
	/* A full batch may leave chains behind: with EVENT_IDX the guest does
	 * not notify again until the ring was seen empty, so come back. */
	if (frames == NET_TX_BATCH)
		virtio_dev_kick(&n->vdev, NET_TXQ(p->index));
	virtq_notify_used(vq);
}

/* Multiqueue: which pairs carry traffic (§5.1.6.5.5). Under the transport
 * lock; on the loop thread when called for a control command. */
static void net_set_curr_pairs(struct virtio_net *n, unsigned pairs, bool on_loop)
{
	for (unsigned i = 1; i < n->n_pairs; i++) {
		struct net_pair *p = n->pairs[i];
		bool on = i < pairs;
		net_pair_attach_tap(p, on);
		if (!on_loop || p->vhost_fd >= 0)
			continue;
		if (on) {
			/* Frames may already wait in the newly attached queue. */
			if (net_pair_watch(p) < 0)
				net_guest_warn(n, "tap '%s' queue %u: cannot watch it", n->ifname,
					       i);
			p->rx_poll = true;
			net_update_poll(p);
			virtio_dev_kick(&n->vdev, NET_RXQ(i));
		} else {
			/* Chains held or waiting stay with the ring, which the guest
			 * keeps: they are used when the pair comes back. */
			p->tx_wait = false;
			net_pair_unwatch(p);
		}
	}
	n->curr_pairs = pairs;
}

/* Control queue (§5.1.6.5). The ack for one command. */
static uint8_t net_ctrl_command(struct virtio_net *n, struct virtq_chain *c)
{
	uint8_t hdr[2];
	if (c->out_len < sizeof(hdr)) {
		net_guest_warn(n, "control command of %zu bytes has no class and command",
			       c->out_len);
		return VIRTIO_NET_ERR;
	}
	virtq_iov_to_buf(c->iov, c->n_out, 0, hdr, sizeof(hdr));
	size_t data_len = c->out_len - sizeof(hdr);
	if (hdr[0] == VIRTIO_NET_CTRL_MQ && hdr[1] == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) {
		uint16_t pairs;
		if (!net_has(n, VIRTIO_NET_F_MQ)) {
			net_guest_warn(n, "%s", "VQ_PAIRS_SET without VIRTIO_NET_F_MQ refused");
			return VIRTIO_NET_ERR;
		}
		if (data_len != sizeof(pairs)) {
			net_guest_warn(n,
				       "VQ_PAIRS_SET with %zu bytes of data refused (2 expected)",
				       data_len);
			return VIRTIO_NET_ERR;
		}
		virtq_iov_to_buf(c->iov, c->n_out, sizeof(hdr), &pairs, sizeof(pairs));
		pairs = le16toh(pairs);
		/* §5.1.6.5.5: virtqueue_pairs within [MIN, MAX] and at most
		 * max_virtqueue_pairs, else the device answers VIRTIO_NET_ERR. */
		if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN ||
		    pairs > VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX || pairs > n->n_pairs) {
			net_guest_warn(n, "VQ_PAIRS_SET %u refused: allowed 1 to %u", pairs,
				       n->n_pairs);
			return VIRTIO_NET_ERR;
		}
		net_set_curr_pairs(n, pairs, true);
		log_debug("%s: %u of %u queue pairs in use", n->vdev.id, pairs, n->n_pairs);
		return VIRTIO_NET_OK;
	}
	net_guest_warn(n, "control class %u command %u is not supported", hdr[0], hdr[1]);
	return VIRTIO_NET_ERR;
}

static void net_ctrl(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vqs[net_ctrl_queue(n)];
	struct virtq_chain *c = &n->ctrl_chain;
	while (virtq_pop_desc_chain(vq, c) > 0) {
		uint32_t written = 0;
		if (c->n_in == 0) {
			/* No room for the ack: nothing is done, the chain goes back. */
			net_guest_warn(n, "control chain %u has no writable ack byte; ignored",
				       c->head);
		} else {
			uint8_t ack = net_ctrl_command(n, c);
			written = (uint32_t)virtq_iov_from_buf(virtq_chain_in(c), c->n_in, 0, &ack,
							       sizeof(ack));
		}
		virtq_push_used(vq, c->head, written);
	}
	virtq_notify_used(vq);
}

/* vhost-net: one vhost device per pair, each with vrings 0 (receive) and 1
 * (transmit) of its own. */

static void net_vhost_stop(struct net_pair *p)
{
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file none = {.index = i, .fd = -1};
		(void)ioctl(p->vhost_fd, VHOST_NET_SET_BACKEND, &none);
		vhost_clear_vring(p->vhost_fd, i);
	}
	p->vhost_running = false;
}

/* DRIVER_OK: both rings and the tap queue go to the kernel. The tap keeps
 * its 12-byte header, so vhost-net passes headers through untouched
 * (without VHOST_NET_F_VIRTIO_NET_HDR it adds none of its own). */
static int net_vhost_start(struct net_pair *p, struct perr *err)
{
	struct virtio_net *n = p->n;
	int ret = vhost_set_features(p->vhost_fd, n->vdev.features & n->vhost_features, err);
	if (ret == 0)
		ret = vhost_set_mem_table(p->vhost_fd, n->vdev.mem, err);
	for (unsigned i = 0; ret == 0 && i < 2; i++) {
		unsigned q = 2 * p->index + i;
		ret = vhost_set_vring(p->vhost_fd, i, &n->vdev.vqs[q], p->kick_fd[i], n->call_fd,
				      err);
		if (ret < 0)
			break;
		struct vhost_vring_file backend = {.index = i, .fd = p->fd};
		if (ioctl(p->vhost_fd, VHOST_NET_SET_BACKEND, &backend) < 0)
			ret = perr_set(err, -errno, "vring %u: VHOST_NET_SET_BACKEND", i);
	}
	if (ret < 0) {
		net_vhost_stop(p);
		return ret;
	}
	p->vhost_running = true;
	return 0;
}

static int net_vhost_start_all(struct virtio_net *n)
{
	for (unsigned i = 0; i < n->n_pairs; i++) {
		struct net_pair *p = n->pairs[i];
		bool ready = n->vdev.vqs[NET_RXQ(i)].ready && n->vdev.vqs[NET_TXQ(i)].ready;
		struct perr err = {0};
		int ret;
		if (!ready && i == 0)
			ret = perr_setx(&err, -EINVAL, "queue pair 0 is not enabled");
		else if (!ready)
			continue; /* a driver without multiqueue sets up pair 0 only */
		else
			ret = net_vhost_start(p, &err);
		if (ret < 0) {
			log_error("%s: starting vhost-net (queue pair %u): %s", n->vdev.id, i,
				  err.msg);
			for (unsigned j = 0; j < i; j++)
				if (n->pairs[j]->vhost_running)
					net_vhost_stop(n->pairs[j]);
			return ret;
		}
	}
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
	/* Offloads belong to the tap, not to a queue; queue 0 is always attached. */
	int ret = tap_set_offload(n->pairs[0]->fd, off);
	if (ret < 0 && n->is_tap) {
		log_error("%s: tap '%s': TUNSETOFFLOAD 0x%x: %s", vdev->id, n->ifname, off,
			  strerror(-ret));
		return ret;
	}
	/* §5.1.6.5.5: receiveq1 only until the driver asks for more. */
	if (net_has(n, VIRTIO_NET_F_MQ) && !net_has(n, VIRTIO_NET_F_CTRL_VQ))
		net_guest_warn(n, "%s",
			       "VIRTIO_NET_F_MQ without VIRTIO_NET_F_CTRL_VQ: one queue pair");
	if (n->pairs[0]->vhost_fd < 0)
		return 0;
	/* The notifications of queue 2 go to pair 2's vhost device, so a
	 * control queue there would never be served: refuse that set instead
	 * of leaving the driver waiting (Linux takes MQ whenever offered). */
	if (net_multiqueue(n) && net_has(n, VIRTIO_NET_F_CTRL_VQ) && !net_has(n, VIRTIO_NET_F_MQ)) {
		net_guest_warn(n, "%s",
			       "VIRTIO_NET_F_CTRL_VQ without VIRTIO_NET_F_MQ is not supported with "
			       "vhost-net and queues > 1; device needs reset");
		return -ENOTSUP;
	}
	return net_vhost_start_all(n);
}

static void net_queue_notify(struct virtio_dev *vdev, unsigned index)
{
	struct virtio_net *n = to_net(vdev);
	if (net_has(n, VIRTIO_NET_F_CTRL_VQ) && index == net_ctrl_queue(n)) {
		net_ctrl(n);
		return;
	}
	unsigned pair = index / 2;
	/* A pair the guest has not enabled, or a queue that is none of ours with
	 * the negotiated features (the control queue's place without CTRL_VQ). */
	if (pair >= n->curr_pairs)
		return;
	struct net_pair *p = n->pairs[pair];
	if (p->vhost_fd >= 0)
		return; /* the kernel has the rings */
	if (index % 2 == 0)
		net_rx(p);
	else
		net_tx(p);
}

static void net_reset(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);
	/* On the thread that wrote the status: the tap callbacks let go of
	 * detached queues themselves (net_tap_event). */
	net_set_curr_pairs(n, 1, false);
	for (unsigned i = 0; i < n->n_pairs; i++) {
		struct net_pair *p = n->pairs[i];
		if (p->vhost_running)
			net_vhost_stop(p);
		/* Held buffers and a waiting chain belong to the old rings. The
		 * tap events stay as they are: they only kick queues, which a
		 * reset device ignores until the driver is back. */
		p->rx_n = 0;
		p->rx_iov_n = 0;
		p->rx_cap = 0;
		p->rx_partial_len = 0;
		p->tx_have_pending = false;
	}
}

static int net_realize(struct virtio_dev *vdev, struct perr *err)
{
	struct virtio_net *n = to_net(vdev);
	if (n->pairs[0]->vhost_fd >= 0) {
		for (unsigned i = 0; i < n->n_pairs; i++) {
			for (unsigned j = 0; j < 2; j++) {
				unsigned q = 2 * i + j;
				int fd = virtio_dev_queue_kick_fd(vdev, q);
				if (fd < 0)
					return perr_set(
					    err, fd,
					    "%s: queue %u: no notification eventfd for vhost",
					    vdev->id, q);
				n->pairs[i]->kick_fd[j] = fd;
			}
		}
		int fd = virtio_dev_call_fd(vdev);
		if (fd < 0)
			return perr_set(err, fd, "%s: no interrupt eventfd for vhost", vdev->id);
		n->call_fd = fd;
		return 0;
	}
	if (!vdev->loop)
		return 0; /* tests: frames are read when the guest notifies the rx queue */
	/* Pair 0 only: the others are detached until the guest enables them. */
	int ret = net_pair_watch(n->pairs[0]);
	if (ret < 0)
		return perr_set(err, ret, "-netdev %s: watching tap '%s'", n->netdev_id, n->ifname);
	return 0;
}

static void net_pair_free(struct net_pair *p)
{
	if (!p)
		return;
	net_pair_unwatch(p);
	if (p->vhost_fd >= 0) {
		if (p->vhost_running)
			net_vhost_stop(p);
		close(p->vhost_fd);
	}
	if (p->fd >= 0)
		close(p->fd);
	free(p->rx_tail);
	free(p);
}

static void net_destroy(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);
	for (unsigned i = 0; i < n->n_pairs; i++)
		net_pair_free(n->pairs[i]);
	free(n);
}

static int net_snapshot_check(struct virtio_dev *vdev, uint16_t *held, struct perr *err)
{
	struct virtio_net *n = to_net(vdev);
	if (n->pairs[0]->vhost_fd >= 0)
		return perr_setx(err, -ENOTSUP, "vhost-net owns the rings (use vhost=off)");
	if (n->curr_pairs > 1)
		return perr_setx(err, -ENOTSUP,
				 "the guest uses %u queue pairs; only one is saved in a snapshot",
				 n->curr_pairs);
	/* Held receive buffers go back to the ring; a partial frame in them is
	 * dropped, as a full tap queue would. */
	for (unsigned i = 0; i < n->n_pairs; i++) {
		held[NET_RXQ(i)] = (uint16_t)n->pairs[i]->rx_n;
		held[NET_TXQ(i)] = n->pairs[i]->tx_have_pending;
	}
	return 0;
}

static const struct virtio_dev_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .num_queues = 2, /* per device: see virtio_net_create_on_fds */
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
    .snapshot_check = net_snapshot_check,
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

static struct net_pair *net_pair_new(struct virtio_net *n, unsigned index, int fd)
{
	struct net_pair *p = calloc(1, sizeof(*p));
	uint8_t *tail = malloc(NET_RX_TAIL_LEN);
	if (!p || !tail) {
		free(p);
		free(tail);
		return NULL;
	}
	p->n = n;
	p->index = index;
	p->fd = fd;
	p->tap_attached = true;
	p->rx_tail = tail;
	p->vhost_fd = -1;
	p->kick_fd[0] = p->kick_fd[1] = -1;
	return p;
}

int virtio_net_create_on_fds(const int *fds, unsigned n_pairs, bool is_tap, const char *ifname,
			     const struct vmm_net_device *dev, const uint8_t mac[6],
			     struct virtio_dev **out, struct perr *err)
{
	int ret;
	if (n_pairs < 1 || n_pairs > NET_MAX_PAIRS) {
		for (unsigned i = 0; i < n_pairs && i < NET_MAX_PAIRS; i++)
			close(fds[i]);
		return perr_setx(err, -EINVAL, "-device %s: %u queue pairs; allowed: 1 to %u",
				 dev->id, n_pairs, NET_MAX_PAIRS);
	}
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		for (unsigned i = 0; i < n_pairs; i++)
			close(fds[i]);
		return perr_set(err, -ENOMEM, "-device %s", dev->id);
	}
	n->n_pairs = n_pairs;
	n->curr_pairs = 1;
	n->call_fd = -1;
	n->is_tap = is_tap;
	for (unsigned i = 0; i < n_pairs; i++) {
		n->pairs[i] = net_pair_new(n, i, fds[i]);
		if (!n->pairs[i]) {
			for (unsigned j = i; j < n_pairs; j++)
				close(fds[j]);
			ret = perr_set(err, -ENOMEM, "-device %s", dev->id);
			goto fail;
		}
	}
	n->ops = net_ops;
	n->vdev.ops = &n->ops;
	snprintf(n->netdev_id, sizeof(n->netdev_id), "%s", dev->netdev);
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifname);
	snprintf(n->vdev.id, sizeof(n->vdev.id), "virtio-net %s", dev->id);
	n->features = VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		      VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
		      VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) |
		      VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
		      VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
		      VIRTIO_BIT(VIRTIO_NET_F_STATUS);
	if (n_pairs > 1) {
		/* §5.1.3.1: MQ needs the control queue to choose the pair count. */
		n->features |= VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_MQ);
		n->ops.num_queues = 2 * n_pairs + 1;
		/* Only receiveq1 until VQ_PAIRS_SET (§5.1.6.5.5). */
		for (unsigned i = 1; i < n_pairs; i++) {
			if (!is_tap) {
				n->pairs[i]->tap_attached = false;
				continue;
			}
			ret = tap_set_queue_enabled(fds[i], false);
			if (ret < 0) {
				perr_set(err, ret,
					 "-netdev %s: tap '%s' queue %u: TUNSETQUEUE detach",
					 dev->netdev, ifname, i);
				goto fail;
			}
			n->pairs[i]->tap_attached = false;
		}
	}
	memcpy(n->config.mac, mac, 6);
	n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->config.max_virtqueue_pairs = htole16((uint16_t)n_pairs);
	*out = &n->vdev;
	return 0;
fail:
	net_destroy(&n->vdev);
	return ret;
}

int virtio_net_create_on_fd(int fd, bool is_tap, const char *ifname,
			    const struct vmm_net_device *dev, const uint8_t mac[6],
			    struct virtio_dev **out, struct perr *err)
{
	return virtio_net_create_on_fds(&fd, 1, is_tap, ifname, dev, mac, out, err);
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

/* One vhost-net device, made ours: vhostfd= or /dev/vhost-net. *fd is -1
 * (and 0 returned) when the kernel path cannot be had; why says why. */
static int net_open_one_vhost(const struct vmm_netdev *netdev, int *fd_out, uint64_t *features,
			      struct perr *why, struct perr *err)
{
	int fd;
	*fd_out = -1;
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
		fd = vhost_open("/dev/vhost-net", why);
		if (fd < 0)
			return 0;
	}
	uint64_t f = 0;
	if (vhost_get_features(fd, &f, why) < 0 || (f & NET_VHOST_REQUIRED) != NET_VHOST_REQUIRED) {
		if (!why->msg[0])
			snprintf(why->msg, sizeof(why->msg),
				 "the kernel's vhost-net lacks features 0x%llx",
				 (unsigned long long)(NET_VHOST_REQUIRED & ~f));
		close(fd);
		return 0;
	}
	*fd_out = fd;
	*features = f;
	return 0;
}

/* vhost=on / vhostfd=: vhost_fds[0, queues) get owned vhost-net fds, one per
 * queue pair, or all -1 when the kernel path cannot be had (a warning, then
 * the userspace path). A vhostfd that is not a usable vhost-net fd is a
 * start error. */
static int net_open_vhost(const struct vmm_netdev *netdev, int *vhost_fds, uint64_t *features,
			  struct perr *err)
{
	unsigned n = netdev->queues ? netdev->queues : 1;
	for (unsigned i = 0; i < n; i++)
		vhost_fds[i] = -1;
	if (!netdev->vhost && netdev->vhostfd < 0)
		return 0;
	if (netdev->vhostfd >= 0 && n > 1) {
		close(netdev->vhostfd);
		return perr_setx(err, -EINVAL,
				 "vhostfd= is one vhost-net fd; queues=%u needs one per queue pair "
				 "(use vhost=on without vhostfd=)",
				 n);
	}
	struct perr why = {0};
	for (unsigned i = 0; i < n; i++) {
		int ret = net_open_one_vhost(netdev, &vhost_fds[i], features, &why, err);
		if (ret < 0 || vhost_fds[i] < 0) {
			for (unsigned j = 0; j < i; j++) {
				close(vhost_fds[j]);
				vhost_fds[j] = -1;
			}
			if (ret < 0)
				return ret;
			net_vhost_unavailable(netdev, why.msg);
			return 0;
		}
	}
	return 0;
}

int virtio_net_create(const struct vmm_netdev *netdev, const struct vmm_net_device *dev,
		      const char *vm_name, struct virtio_dev **out, struct perr *err)
{
	int ret;
	unsigned n_pairs = netdev->queues ? netdev->queues : 1;
	if (n_pairs > NET_MAX_PAIRS)
		return perr_setx(err, -EINVAL, "-netdev %s: queues=%u; allowed: 1 to %u",
				 netdev->id, n_pairs, NET_MAX_PAIRS);
	int vhost_fds[NET_MAX_PAIRS];
	uint64_t vhost_features = 0;
	ret = net_open_vhost(netdev, vhost_fds, &vhost_features, err);
	if (ret < 0)
		return perr_wrap(err, "-netdev %s", netdev->id);
	int fds[NET_MAX_PAIRS];
	char ifname[IFNAMSIZ];
	ret = tap_open(netdev, fds, ifname, err);
	if (ret < 0) {
		for (unsigned i = 0; i < n_pairs; i++)
			if (vhost_fds[i] >= 0)
				close(vhost_fds[i]);
		return perr_wrap(err, "-netdev %s", netdev->id);
	}
	uint8_t mac[6];
	if (dev->mac_set)
		memcpy(mac, dev->mac, sizeof(mac));
	else
		virtio_net_default_mac(vm_name, dev->id, mac);
	struct virtio_dev *vdev = NULL;
	ret = virtio_net_create_on_fds(fds, n_pairs, true, ifname, dev, mac, &vdev, err);
	if (ret < 0 || !vdev) {
		for (unsigned i = 0; i < n_pairs; i++)
			if (vhost_fds[i] >= 0)
				close(vhost_fds[i]);
		return ret < 0 ? ret : -EIO;
	}
	struct virtio_net *n = to_net(vdev);
	for (unsigned i = 0; i < n_pairs; i++)
		n->pairs[i]->vhost_fd = vhost_fds[i];
	n->vhost_features = vhost_features;
	*out = vdev;
	return 0;
}
