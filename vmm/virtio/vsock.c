/*
 * virtio-vsock (virtio 1.2 §5.10), stream sockets only.
 *
 * The built-in backend bridges each guest stream to a host unix socket
 * (Firecracker's "hybrid" protocol, see vsock.h and docs/vmm.md). Threads:
 * queue processing (queue_notify) runs on the device's loop under the
 * transport lock; the socket callbacks run on the same loop without it and
 * never touch a virtqueue: they change connection state and kick the rx
 * queue. reset() runs on a vCPU thread and only flags the connections for
 * the loop to drop (vsock_reap), so the connection table is loop-only.
 *
 * Flow control (§5.10.6.3): guest-to-host bytes are written to the socket
 * at once; what it does not take waits in a per-connection buffer of
 * VSOCK_BUF_ALLOC bytes, which is the buf_alloc we advertise, so a guest that
 * respects our credit never overflows it. Host-to-guest bytes are read from
 * the socket straight into an rx buffer, never more than the guest's credit.
 */
#include "vsock.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/vhost.h>

#include "../../common/log.h"
#include "../core/daemon.h"
#include "../core/eventloop.h"
#include "vhost.h"
#include "virtqueue.h"

/* Queues (§5.10.2). */
#define VSOCK_RX    0
#define VSOCK_TX    1
#define VSOCK_EVENT 2

#define VSOCK_HOST_CID	  2
#define VSOCK_TYPE_STREAM 1

/* Operations (§5.10.6). */
#define VSOCK_OP_INVALID	0
#define VSOCK_OP_REQUEST	1
#define VSOCK_OP_RESPONSE	2
#define VSOCK_OP_RST		3
#define VSOCK_OP_SHUTDOWN	4
#define VSOCK_OP_RW		5
#define VSOCK_OP_CREDIT_UPDATE	6
#define VSOCK_OP_CREDIT_REQUEST 7

/* SHUTDOWN flags, from the sender's point of view (§5.10.6.5). */
#define VSOCK_SHUTDOWN_RCV  1u
#define VSOCK_SHUTDOWN_SEND 2u
#define VSOCK_SHUTDOWN_BOTH 3u

#define VSOCK_QUEUE_SIZE  256
#define VSOCK_BUF_ALLOC	  262144u /* per connection, guest to host */
#define VSOCK_MAX_PAYLOAD 65536u  /* Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE */
#define VSOCK_MAX_CONNS	  1024
#define VSOCK_BUCKETS	  256
#define VSOCK_RST_QUEUE	  64
#define VSOCK_LINE_MAX	  32 /* "CONNECT 4294967295\n" is 19 */
#define VSOCK_FIRST_PORT  1024u
/* Send a credit update once this much was forwarded since the last one we sent. */
#define VSOCK_CREDIT_THRESHOLD (VSOCK_BUF_ALLOC / 4)

#define VSOCK_VHOST_PATH "/dev/vhost-vsock"

/* §5.10.6, little-endian, 44 bytes. */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

#define VSOCK_HDR_SIZE sizeof(struct vsock_hdr)

enum vsock_state {
	VSOCK_HOST_WAIT_LINE,	/* host client accepted; its CONNECT line not read yet */
	VSOCK_HOST_CONNECTING,	/* REQUEST queued or sent; waiting for the guest's answer */
	VSOCK_GUEST_CONNECTING, /* guest REQUEST; connect() to PATH_P in progress */
	VSOCK_ESTABLISHED,
	VSOCK_CLOSING, /* RST owed to the guest; freed once it is sent */
};

/* Control packets a connection owes the guest. */
#define PEND_REQUEST  1u
#define PEND_RESPONSE 2u
#define PEND_RST      4u
#define PEND_CREDIT   8u

struct virtio_vsock;

struct vsock_conn {
	struct virtio_vsock *vs;
	struct vsock_conn *all_prev, *all_next; /* every connection */
	struct vsock_conn *hash_next;		/* keyed ones (all but HOST_WAIT_LINE) */
	struct vsock_conn *pend_next;		/* owes the guest a packet */
	bool hashed, on_pending;
	uint32_t local_port; /* the host side's port (cid 2) */
	uint32_t peer_port;  /* the guest's port */
	int fd;
	uint32_t watched; /* epoll events; 0: not in the loop */
	enum vsock_state state;
	unsigned pend;	     /* PEND_* */
	bool request_sent;   /* HOST_CONNECTING: the REQUEST is out */
	bool client_rdhup;   /* HOST_CONNECTING: the client half-closed after its line */
	bool readable;	     /* the socket may have bytes (EPOLLIN not watched meanwhile) */
	bool host_eof;	     /* the socket's read side ended: SHUTDOWN(SEND) owed or sent */
	bool host_wr_shut;   /* shutdown(SHUT_WR) done after the guest's SHUTDOWN(SEND) */
	uint32_t guest_shut; /* VSOCK_SHUTDOWN_* received from the guest */
	/* Credit (§5.10.6.3): the guest's receive buffer, and our counters. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;       /* bytes sent to the guest */
	uint32_t fwd_cnt;      /* guest bytes written to the socket */
	uint32_t fwd_cnt_sent; /* fwd_cnt in the last packet to the guest */
	/* Guest bytes the socket did not take yet: a ring of VSOCK_BUF_ALLOC. */
	uint8_t *buf;
	uint32_t buf_head, buf_len;
	char line[VSOCK_LINE_MAX];
	size_t line_len;
};

/* An RST for a packet that matches no connection. */
struct vsock_rst {
	uint64_t src_cid; /* the cid the guest addressed */
	uint32_t src_port, dst_port;
};

struct virtio_vsock {
	struct virtio_dev vdev; /* first: the transport hands us &vdev */
	char id[VMM_ID_MAX];
	uint64_t guest_cid;
	uint64_t config_cid; /* le64, the config space (§5.10.4) */
	char uds_path[VMM_SUN_PATH_MAX];
	bool uds_default; /* the path is ours to create the directory for */
	int listen_fd;
	bool listen_in_loop;
	bool listening; /* uds_path is ours to remove */
	int work_fd;	/* reset() asks the loop to drop the connections */
	bool work_in_loop;
	bool reset_pending; /* __atomic */

	struct vsock_conn *all;
	struct vsock_conn *buckets[VSOCK_BUCKETS];
	unsigned n_conns;
	struct vsock_conn *pend_head, *pend_tail;
	uint32_t next_port;
	struct vsock_rst rsts[VSOCK_RST_QUEUE];
	unsigned rst_head, rst_count;

	bool rx_held; /* rx_chain was popped and not used yet */
	struct virtq_chain rx_chain;
	struct virtq_chain tx_chain;
	struct iovec iov[VIRTQ_MAX_SIZE];
	struct log_ratelimit ratelimit;

	/* vhost-vsock */
	int vhost_fd; /* -1: the built-in backend */
	int kick_fd[2];
	int call_fd;
	bool vhost_running;
};

static struct virtio_vsock *to_vsock(struct virtio_dev *vdev)
{
	return (struct virtio_vsock *)(void *)((char *)vdev - offsetof(struct virtio_vsock, vdev));
}

#define vsock_guest_warn(vs, fmt, ...) \
	LOG_GUEST_RATELIMITED(&(vs)->ratelimit, "vsock %s: " fmt, (vs)->id, __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Connection table                                                           */
/* ------------------------------------------------------------------------ */

static unsigned vsock_bucket(uint32_t local, uint32_t peer)
{
	uint32_t h = local * 2654435761u ^ peer * 40503u;
	return (h >> 16) % VSOCK_BUCKETS;
}

static struct vsock_conn *vsock_lookup(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
	for (struct vsock_conn *c = vs->buckets[vsock_bucket(local, peer)]; c; c = c->hash_next)
		if (c->local_port == local && c->peer_port == peer)
			return c;
	return NULL;
}

static void vsock_hash_add(struct vsock_conn *c)
{
	struct vsock_conn **head = &c->vs->buckets[vsock_bucket(c->local_port, c->peer_port)];
	c->hash_next = *head;
	*head = c;
	c->hashed = true;
}

static void vsock_hash_del(struct vsock_conn *c)
{
	if (!c->hashed)
		return;
	struct vsock_conn **pp = &c->vs->buckets[vsock_bucket(c->local_port, c->peer_port)];
	while (*pp && *pp != c)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = c->hash_next;
	c->hashed = false;
}

static bool vsock_port_in_use(struct virtio_vsock *vs, uint32_t port)
{
	for (struct vsock_conn *c = vs->all; c; c = c->all_next)
		if (c->hashed && c->local_port == port)
			return true;
	return false;
}

/* A host port for a host-initiated connection: >= 1024 and used by no other. */
static uint32_t vsock_fresh_port(struct virtio_vsock *vs)
{
	for (;;) {
		uint32_t port = vs->next_port;
		vs->next_port = port == UINT32_MAX - 1 ? VSOCK_FIRST_PORT : port + 1;
		/* At most VSOCK_MAX_CONNS ports are taken, so this ends. */
		if (!vsock_port_in_use(vs, port))
			return port;
	}
}

static void vsock_pending_del(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	if (!c->on_pending)
		return;
	struct vsock_conn **pp = &vs->pend_head, *prev = NULL;
	while (*pp && *pp != c) {
		prev = *pp;
		pp = &(*pp)->pend_next;
	}
	if (*pp)
		*pp = c->pend_next;
	if (vs->pend_tail == c)
		vs->pend_tail = prev;
	c->pend_next = NULL;
	c->on_pending = false;
}

/* Bytes the guest can still receive on c (§5.10.6.3). */
static uint32_t vsock_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* The socket may have bytes and the guest room for them. */
static bool vsock_conn_can_read(const struct vsock_conn *c)
{
	return c->state == VSOCK_ESTABLISHED && c->readable && !c->host_eof &&
	       !(c->guest_shut & VSOCK_SHUTDOWN_RCV) && vsock_peer_credit(c) > 0;
}

static bool vsock_conn_has_work(const struct vsock_conn *c)
{
	return c->pend || vsock_conn_can_read(c);
}

/* Queues c for the rx path when it owes the guest something. */
static void vsock_schedule(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	if (c->on_pending || !vsock_conn_has_work(c))
		return;
	c->pend_next = NULL;
	if (vs->pend_tail)
		vs->pend_tail->pend_next = c;
	else
		vs->pend_head = c;
	vs->pend_tail = c;
	c->on_pending = true;
}

/* The epoll events c needs in its state; 0 takes it out of the loop, so a
 * hung-up socket cannot spin the loop while we wait for the guest. */
static uint32_t vsock_conn_events(const struct vsock_conn *c)
{
	switch (c->state) {
	case VSOCK_HOST_WAIT_LINE:
		return EPOLLIN;
	case VSOCK_GUEST_CONNECTING:
		return EPOLLOUT;
	case VSOCK_HOST_CONNECTING:
		/* Only to notice a client that gives up before the guest answers
		 * (a half-close, as `printf 'CONNECT 5\n' | socat` does, is fine). */
		return c->client_rdhup ? 0 : EPOLLRDHUP;
	case VSOCK_ESTABLISHED: {
		uint32_t ev = 0;
		if (!c->readable && !c->host_eof && !(c->guest_shut & VSOCK_SHUTDOWN_RCV))
			ev |= EPOLLIN;
		if (c->buf_len)
			ev |= EPOLLOUT;
		return ev;
	}
	case VSOCK_CLOSING:
		break;
	}
	return 0;
}

static void vsock_conn_event(void *opaque, uint32_t events);

static void vsock_update_watch(struct vsock_conn *c)
{
	struct eventloop *loop = c->vs->vdev.loop;
	uint32_t want = c->fd >= 0 ? vsock_conn_events(c) : 0;
	if (!loop || want == c->watched)
		return;
	int ret = 0;
	if (!want)
		ret = eventloop_remove(loop, c->fd);
	else if (!c->watched)
		ret = eventloop_add(loop, c->fd, want, vsock_conn_event, c);
	else
		ret = eventloop_modify(loop, c->fd, want);
	if (ret < 0)
		log_warn("vsock %s: port %" PRIu32 ": watching the socket: %s", c->vs->id,
			 c->local_port, strerror(-ret));
	else
		c->watched = want;
}

static void vsock_close_fd(struct vsock_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->watched && c->vs->vdev.loop)
		eventloop_remove(c->vs->vdev.loop, c->fd);
	c->watched = 0;
	close(c->fd);
	c->fd = -1;
}

static void vsock_conn_free(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	vsock_close_fd(c);
	vsock_hash_del(c);
	vsock_pending_del(c);
	if (c->all_prev)
		c->all_prev->all_next = c->all_next;
	else
		vs->all = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;
	vs->n_conns--;
	free(c->buf);
	free(c);
}

static void vsock_free_all(struct virtio_vsock *vs)
{
	struct vsock_conn *c = vs->all;
	while (c) {
		struct vsock_conn *next = c->all_next;
		vsock_conn_free(c);
		c = next;
	}
}

static struct vsock_conn *vsock_conn_new(struct virtio_vsock *vs, int fd)
{
	if (vs->n_conns >= VSOCK_MAX_CONNS)
		return NULL;
	struct vsock_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->vs = vs;
	c->fd = fd;
	c->all_next = vs->all;
	if (vs->all)
		vs->all->all_prev = c;
	vs->all = c;
	vs->n_conns++;
	return c;
}

/* Drops the socket and owes the guest an RST; freed once it is sent. */
static void vsock_conn_reset(struct vsock_conn *c)
{
	vsock_close_fd(c);
	c->state = VSOCK_CLOSING;
	c->pend = PEND_RST;
	c->readable = false;
	free(c->buf);
	c->buf = NULL;
	c->buf_len = 0;
	vsock_schedule(c);
}

/* An RST for a packet without a connection; dropped when too many wait. */
static void vsock_queue_rst(struct virtio_vsock *vs, const struct vsock_hdr *pkt)
{
	if (vs->rst_count == VSOCK_RST_QUEUE) {
		vsock_guest_warn(vs, "%d RSTs waiting for rx buffers; one dropped",
				 VSOCK_RST_QUEUE);
		return;
	}
	struct vsock_rst *r = &vs->rsts[(vs->rst_head + vs->rst_count++) % VSOCK_RST_QUEUE];
	r->src_cid = le64toh(pkt->dst_cid);
	r->src_port = le32toh(pkt->dst_port);
	r->dst_port = le32toh(pkt->src_port);
}

/* After reset(): every connection belongs to the old driver. Loop thread. */
static void vsock_reap(struct virtio_vsock *vs)
{
	if (!__atomic_exchange_n(&vs->reset_pending, false, __ATOMIC_ACQ_REL))
		return;
	vsock_free_all(vs);
	vs->rst_count = 0;
}

/* ------------------------------------------------------------------------ */
/* Host sockets                                                               */
/* ------------------------------------------------------------------------ */

int virtio_vsock_parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char verb[] = "CONNECT ";
	const size_t vlen = sizeof(verb) - 1;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len <= vlen || len > vlen + 10 || memcmp(line, verb, vlen) != 0)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = vlen; i < len; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

/* Reads up to VSOCK_LINE_MAX bytes of the client's first line, never
 * past its '\n': what follows belongs to the stream. */
static void vsock_read_line(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	char peek[VSOCK_LINE_MAX];
	size_t room = sizeof(c->line) - c->line_len;
	ssize_t n = recv(c->fd, peek, room, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		vsock_conn_free(c);
		return;
	}
	char *nl = memchr(peek, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	ssize_t got = recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT);
	if (got != (ssize_t)take) {
		vsock_conn_free(c);
		return;
	}
	c->line_len += take;
	if (!nl) {
		if (c->line_len == sizeof(c->line)) {
			LOG_GUEST_RATELIMITED(&vs->ratelimit,
					      "vsock %s: %s: a client sent no CONNECT line within "
					      "%d bytes; closed",
					      vs->id, vs->uds_path, VSOCK_LINE_MAX);
			vsock_conn_free(c);
		}
		return;
	}
	uint32_t port;
	if (virtio_vsock_parse_connect(c->line, c->line_len - 1, &port) < 0) {
		/* Host clients are rate-limited like the guest: they are not the VMM's owner. */
		LOG_GUEST_RATELIMITED(&vs->ratelimit,
				      "vsock %s: %s: bad request \"%.*s\" (expected \"CONNECT "
				      "<port>\"); closed",
				      vs->id, vs->uds_path, (int)(c->line_len - 1), c->line);
		vsock_conn_free(c);
		return;
	}
	c->local_port = vsock_fresh_port(vs);
	c->peer_port = port;
	c->state = VSOCK_HOST_CONNECTING;
	c->pend = PEND_REQUEST;
	vsock_hash_add(c);
	vsock_update_watch(c);
	vsock_schedule(c);
	virtio_dev_kick(&vs->vdev, VSOCK_RX);
}

/* Writes buffered guest bytes to the socket. false when the socket failed
 * (the connection is then reset). */
static bool vsock_flush(struct vsock_conn *c)
{
	while (c->buf_len) {
		uint32_t chunk = VSOCK_BUF_ALLOC - c->buf_head;
		if (chunk > c->buf_len)
			chunk = c->buf_len;
		ssize_t n = send(c->fd, c->buf + c->buf_head, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			vsock_conn_reset(c);
			return false;
		}
		c->buf_head = (c->buf_head + (uint32_t)n) % VSOCK_BUF_ALLOC;
		c->buf_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (c->buf_len == 0) {
		free(c->buf);
		c->buf = NULL;
		c->buf_head = 0;
	}
	return true;
}

/* What happens once the guest's bytes are all out: half-close, close, or a
 * credit update so that a guest waiting for credit goes on. */
static void vsock_after_forward(struct vsock_conn *c)
{
	if (c->state != VSOCK_ESTABLISHED || c->buf_len)
		goto credit;
	if ((c->guest_shut & VSOCK_SHUTDOWN_SEND) && !c->host_wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->host_wr_shut = true;
	}
	/* §5.10.6.5 and Linux: a peer that shut down both ways waits for our RST. */
	if (c->guest_shut == VSOCK_SHUTDOWN_BOTH) {
		vsock_conn_reset(c);
		return;
	}
credit:
	if (c->state == VSOCK_ESTABLISHED &&
	    c->fwd_cnt - c->fwd_cnt_sent >= VSOCK_CREDIT_THRESHOLD) {
		c->pend |= PEND_CREDIT;
		vsock_schedule(c);
	}
}

static void vsock_conn_event(void *opaque, uint32_t events)
{
	struct vsock_conn *c = opaque;
	struct virtio_vsock *vs = c->vs;
	if (__atomic_load_n(&vs->reset_pending, __ATOMIC_ACQUIRE)) {
		vsock_reap(vs);
		return;
	}
	switch (c->state) {
	case VSOCK_HOST_WAIT_LINE:
		vsock_read_line(c);
		return; /* c may be gone */
	case VSOCK_GUEST_CONNECTING: {
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			vsock_conn_reset(c);
		} else {
			c->state = VSOCK_ESTABLISHED;
			c->pend |= PEND_RESPONSE;
			vsock_schedule(c);
		}
		break;
	}
	case VSOCK_ESTABLISHED:
		if ((events & EPOLLOUT) && !vsock_flush(c))
			break;
		if (events & EPOLLOUT)
			vsock_after_forward(c);
		if (c->state == VSOCK_ESTABLISHED && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
		    (c->watched & EPOLLIN)) {
			c->readable = true;
			vsock_schedule(c);
		}
		break;
	case VSOCK_HOST_CONNECTING:
		/* The client left: the guest's listener, if it already saw the
		 * REQUEST, gets an RST; otherwise the REQUEST is never sent. */
		if (!(events & (EPOLLHUP | EPOLLERR))) {
			c->client_rdhup = c->client_rdhup || (events & EPOLLRDHUP);
			break;
		}
		if (!c->request_sent) {
			vsock_conn_free(c);
			return;
		}
		vsock_conn_reset(c);
		break;
	case VSOCK_CLOSING:
		break;
	}
	vsock_update_watch(c);
	if (c->on_pending)
		virtio_dev_kick(&vs->vdev, VSOCK_RX);
}

static void vsock_listen_event(void *opaque, uint32_t events)
{
	struct virtio_vsock *vs = opaque;
	(void)events;
	vsock_reap(vs);
	int fd = accept4(vs->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct vsock_conn *c = vsock_conn_new(vs, fd);
	if (!c) {
		log_warn("vsock %s: %s: %d connections open; client refused", vs->id, vs->uds_path,
			 VSOCK_MAX_CONNS);
		close(fd);
		return;
	}
	c->state = VSOCK_HOST_WAIT_LINE;
	vsock_update_watch(c);
}

static void vsock_work_event(void *opaque, uint32_t events)
{
	struct virtio_vsock *vs = opaque;
	(void)events;
	eventloop_fd_consume(vs->work_fd);
	vsock_reap(vs);
}

/* ------------------------------------------------------------------------ */
/* Guest to host (tx queue)                                                   */
/* ------------------------------------------------------------------------ */

/* A guest connect to cid 2 port P: a connection to the unix socket PATH_P. */
static void vsock_guest_connect(struct virtio_vsock *vs, const struct vsock_hdr *pkt)
{
	uint32_t port = le32toh(pkt->dst_port);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%" PRIu32, vs->uds_path, port);
	if (!vs->uds_path[0] || n < 0 || (size_t)n >= sizeof(addr.sun_path)) {
		vsock_guest_warn(vs, "connect to port %" PRIu32 ": no socket path for it", port);
		vsock_queue_rst(vs, pkt);
		return;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_warn("vsock %s: socket: %s", vs->id, strerror(errno));
		vsock_queue_rst(vs, pkt);
		return;
	}
	int ret = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	if (ret < 0 && errno != EINPROGRESS) {
		/* ENOENT / ECONNREFUSED: nobody listens; EAGAIN: its backlog is full. */
		log_debug("vsock %s: guest connect to %s: %s", vs->id, addr.sun_path,
			  strerror(errno));
		close(fd);
		vsock_queue_rst(vs, pkt);
		return;
	}
	struct vsock_conn *c = vsock_conn_new(vs, fd);
	if (!c) {
		vsock_guest_warn(vs, "connect to port %" PRIu32 ": %d connections open", port,
				 VSOCK_MAX_CONNS);
		close(fd);
		vsock_queue_rst(vs, pkt);
		return;
	}
	c->local_port = port;
	c->peer_port = le32toh(pkt->src_port);
	c->peer_buf_alloc = le32toh(pkt->buf_alloc);
	c->peer_fwd_cnt = le32toh(pkt->fwd_cnt);
	vsock_hash_add(c);
	if (ret == 0) {
		c->state = VSOCK_ESTABLISHED;
		c->pend = PEND_RESPONSE;
		vsock_schedule(c);
	} else {
		c->state = VSOCK_GUEST_CONNECTING;
	}
	vsock_update_watch(c);
}

/* The guest answered our REQUEST: tell the host client, then bytes flow. */
static void vsock_guest_response(struct vsock_conn *c)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "OK %" PRIu32 "\n", c->local_port);
	/* A fresh socket has room for a line; anything else means the client is gone. */
	if (send(c->fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n) {
		vsock_conn_reset(c);
		return;
	}
	c->state = VSOCK_ESTABLISHED;
}

static void vsock_guest_rw(struct virtio_vsock *vs, struct vsock_conn *c,
			   const struct virtq_chain *chain, uint32_t len)
{
	if (c->guest_shut & VSOCK_SHUTDOWN_SEND) {
		vsock_guest_warn(vs, "port %" PRIu32 ": data after SHUTDOWN(SEND); reset",
				 c->local_port);
		vsock_conn_reset(c);
		return;
	}
	if (len == 0)
		return;
	if (c->buf_len + len > VSOCK_BUF_ALLOC) {
		vsock_guest_warn(vs, "port %" PRIu32 ": %" PRIu32 " bytes beyond the credit; reset",
				 c->local_port, c->buf_len + len - VSOCK_BUF_ALLOC);
		vsock_conn_reset(c);
		return;
	}
	size_t done = 0;
	if (c->buf_len == 0) {
		int cnt = virtq_iov_slice(chain->iov, chain->n_out, VSOCK_HDR_SIZE, len, vs->iov,
					  VIRTQ_MAX_SIZE);
		if (cnt < 0)
			return; /* cannot happen: len was checked against out_len */
		struct msghdr msg = {.msg_iov = vs->iov, .msg_iovlen = (size_t)cnt};
		ssize_t n;
		do
			n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN) {
			vsock_conn_reset(c);
			return;
		}
		if (n > 0) {
			done = (size_t)n;
			c->fwd_cnt += (uint32_t)n;
		}
	}
	if (done < len) {
		if (!c->buf) {
			c->buf = malloc(VSOCK_BUF_ALLOC);
			if (!c->buf) {
				log_warn("vsock %s: port %" PRIu32 ": out of memory; reset", vs->id,
					 c->local_port);
				vsock_conn_reset(c);
				return;
			}
			c->buf_head = 0;
		}
		size_t skip = VSOCK_HDR_SIZE + done;
		size_t left = len - done;
		while (left) {
			uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
			size_t chunk = VSOCK_BUF_ALLOC - tail;
			if (chunk > left)
				chunk = left;
			virtq_iov_to_buf(chain->iov, chain->n_out, skip, c->buf + tail, chunk);
			c->buf_len += (uint32_t)chunk;
			skip += chunk;
			left -= chunk;
		}
	}
	vsock_after_forward(c);
}

static void vsock_guest_shutdown(struct vsock_conn *c, uint32_t flags)
{
	c->guest_shut |= flags & VSOCK_SHUTDOWN_BOTH;
	if (c->guest_shut & VSOCK_SHUTDOWN_RCV)
		c->readable = false;
	vsock_after_forward(c);
}

/* One packet from the guest (§5.10.6.2); every field is the guest's. */
static void vsock_handle_tx(struct virtio_vsock *vs, const struct virtq_chain *chain)
{
	struct vsock_hdr pkt;
	if (virtq_iov_to_buf(chain->iov, chain->n_out, 0, &pkt, sizeof(pkt)) < sizeof(pkt)) {
		vsock_guest_warn(vs, "tx chain %u: %zu bytes, shorter than a header; dropped",
				 chain->head, chain->out_len);
		return;
	}
	uint32_t len = le32toh(pkt.len);
	uint16_t op = le16toh(pkt.op);
	if (len > chain->out_len - VSOCK_HDR_SIZE || len > VSOCK_MAX_PAYLOAD) {
		vsock_guest_warn(vs, "tx chain %u: len %" PRIu32 " but %zu payload bytes; dropped",
				 chain->head, len, chain->out_len - VSOCK_HDR_SIZE);
		return;
	}
	if (le64toh(pkt.src_cid) != vs->guest_cid) {
		vsock_guest_warn(vs,
				 "tx: src_cid %" PRIu64 " is not the guest's %" PRIu64 "; dropped",
				 (uint64_t)le64toh(pkt.src_cid), vs->guest_cid);
		return;
	}
	if (le16toh(pkt.type) != VSOCK_TYPE_STREAM || le64toh(pkt.dst_cid) != VSOCK_HOST_CID) {
		/* Only streams to the host exist here. */
		if (op != VSOCK_OP_RST)
			vsock_queue_rst(vs, &pkt);
		return;
	}
	struct vsock_conn *c = vsock_lookup(vs, le32toh(pkt.dst_port), le32toh(pkt.src_port));
	if (!c) {
		if (op == VSOCK_OP_REQUEST)
			vsock_guest_connect(vs, &pkt);
		else if (op != VSOCK_OP_RST)
			vsock_queue_rst(vs, &pkt);
		return;
	}
	if (op == VSOCK_OP_RST) {
		vsock_conn_free(c);
		return;
	}
	if (c->state == VSOCK_CLOSING)
		return;
	c->peer_buf_alloc = le32toh(pkt.buf_alloc);
	c->peer_fwd_cnt = le32toh(pkt.fwd_cnt);
	switch (op) {
	case VSOCK_OP_RESPONSE:
		if (c->state == VSOCK_HOST_CONNECTING && c->request_sent)
			vsock_guest_response(c);
		else
			vsock_conn_reset(c);
		break;
	case VSOCK_OP_RW:
		if (c->state == VSOCK_ESTABLISHED)
			vsock_guest_rw(vs, c, chain, len);
		else
			vsock_conn_reset(c);
		break;
	case VSOCK_OP_SHUTDOWN:
		if (c->state == VSOCK_ESTABLISHED)
			vsock_guest_shutdown(c, le32toh(pkt.flags));
		else
			vsock_conn_reset(c);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break; /* the credit fields above are the update */
	case VSOCK_OP_CREDIT_REQUEST:
		c->pend |= PEND_CREDIT;
		break;
	default: /* REQUEST on an open connection, INVALID, unknown */
		vsock_guest_warn(vs, "port %" PRIu32 ": op %u in state %d; reset", c->local_port,
				 op, c->state);
		vsock_conn_reset(c);
		break;
	}
	if (c->state != VSOCK_CLOSING)
		vsock_update_watch(c);
	vsock_schedule(c); /* new credit may let it read again */
}

/* ------------------------------------------------------------------------ */
/* Host to guest (rx queue)                                                   */
/* ------------------------------------------------------------------------ */

static void vsock_fill_hdr(struct virtio_vsock *vs, struct vsock_hdr *h, uint64_t src_cid,
			   uint32_t src_port, uint32_t dst_port, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = htole64(src_cid);
	h->dst_cid = htole64(vs->guest_cid);
	h->src_port = htole32(src_port);
	h->dst_port = htole32(dst_port);
	h->type = htole16(VSOCK_TYPE_STREAM);
	h->op = htole16(op);
}

/* Puts c's next packet into the held rx chain. Returns the bytes written,
 * 0 when there was nothing to send after all (the chain stays held), and
 * sets *freed when c is gone. */
static uint32_t vsock_emit(struct virtio_vsock *vs, struct vsock_conn *c, bool *freed)
{
	struct virtq_chain *ch = &vs->rx_chain;
	struct iovec *in = virtq_chain_in(ch);
	struct vsock_hdr h;
	uint32_t payload = 0;
	uint16_t op;
	uint32_t flags = 0;

	*freed = false;
	if (c->pend & PEND_RST) {
		vsock_fill_hdr(vs, &h, VSOCK_HOST_CID, c->local_port, c->peer_port, VSOCK_OP_RST);
		virtq_iov_from_buf(in, ch->n_in, 0, &h, sizeof(h));
		vsock_conn_free(c);
		*freed = true;
		return VSOCK_HDR_SIZE;
	}
	if (c->pend & PEND_REQUEST) {
		op = VSOCK_OP_REQUEST;
		c->pend &= ~PEND_REQUEST;
		c->request_sent = true;
	} else if (c->pend & PEND_RESPONSE) {
		op = VSOCK_OP_RESPONSE;
		c->pend &= ~PEND_RESPONSE;
	} else if (vsock_conn_can_read(c) && ch->in_len > VSOCK_HDR_SIZE) {
		/* Data: never more than the guest's credit or this buffer. */
		uint32_t want = vsock_peer_credit(c);
		size_t room = ch->in_len - VSOCK_HDR_SIZE;
		if (want > room)
			want = (uint32_t)room;
		if (want > VSOCK_MAX_PAYLOAD)
			want = VSOCK_MAX_PAYLOAD;
		ssize_t n = 0;
		if (want) {
			int cnt = virtq_iov_slice(in, ch->n_in, VSOCK_HDR_SIZE, want, vs->iov,
						  VIRTQ_MAX_SIZE);
			if (cnt < 0)
				return 0;
			do
				n = readv(c->fd, vs->iov, cnt);
			while (n < 0 && errno == EINTR);
		}
		if (n < 0 && errno == EAGAIN) {
			c->readable = false;
			vsock_update_watch(c);
			return 0;
		}
		if (n < 0) {
			vsock_conn_reset(c);
			return 0;
		}
		if (n == 0 && want) {
			/* The host's side ended: the guest reads EOF. */
			c->host_eof = true;
			c->readable = false;
			vsock_update_watch(c);
			op = VSOCK_OP_SHUTDOWN;
			flags = VSOCK_SHUTDOWN_SEND;
		} else {
			if (n == 0)
				return 0;
			op = VSOCK_OP_RW;
			payload = (uint32_t)n;
			c->tx_cnt += payload;
		}
	} else if (vsock_conn_has_work(c)) {
		/* Credit or a header-only buffer: an update makes progress either way. */
		op = VSOCK_OP_CREDIT_UPDATE;
	} else {
		return 0;
	}
	/* Every packet carries our credit (§5.10.6.3). */
	c->pend &= ~PEND_CREDIT;
	vsock_fill_hdr(vs, &h, VSOCK_HOST_CID, c->local_port, c->peer_port, op);
	h.len = htole32(payload);
	h.flags = htole32(flags);
	h.buf_alloc = htole32(VSOCK_BUF_ALLOC);
	h.fwd_cnt = htole32(c->fwd_cnt);
	c->fwd_cnt_sent = c->fwd_cnt;
	virtq_iov_from_buf(in, ch->n_in, 0, &h, sizeof(h));
	return VSOCK_HDR_SIZE + payload;
}

static bool vsock_rx_has_work(struct virtio_vsock *vs)
{
	return vs->rst_count || vs->pend_head;
}

/* Fills rx buffers while packets are owed and the guest has buffers. */
static void vsock_rx_flush(struct virtio_vsock *vs)
{
	struct virtqueue *vq = &vs->vdev.vqs[VSOCK_RX];
	if (!vq->ready)
		return;
	while (vsock_rx_has_work(vs)) {
		if (!vs->rx_held) {
			if (virtq_pop_desc_chain(vq, &vs->rx_chain) <= 0)
				break;
			vs->rx_held = true;
		}
		struct virtq_chain *ch = &vs->rx_chain;
		if (ch->in_len < VSOCK_HDR_SIZE) {
			vsock_guest_warn(vs, "rx chain %u: %zu writable bytes, less than a header",
					 ch->head, ch->in_len);
			virtq_push_used(vq, ch->head, 0);
			vs->rx_held = false;
			continue;
		}
		uint32_t used = 0;
		if (vs->rst_count) {
			struct vsock_rst *r = &vs->rsts[vs->rst_head];
			struct vsock_hdr h;
			vsock_fill_hdr(vs, &h, r->src_cid, r->src_port, r->dst_port, VSOCK_OP_RST);
			virtq_iov_from_buf(virtq_chain_in(ch), ch->n_in, 0, &h, sizeof(h));
			vs->rst_head = (vs->rst_head + 1) % VSOCK_RST_QUEUE;
			vs->rst_count--;
			used = VSOCK_HDR_SIZE;
		} else {
			struct vsock_conn *c = vs->pend_head;
			vsock_pending_del(c);
			bool freed;
			used = vsock_emit(vs, c, &freed);
			/* Round robin: one packet each, then to the back of the line. */
			if (!freed)
				vsock_schedule(c);
		}
		if (used) {
			virtq_push_used(vq, ch->head, used);
			vs->rx_held = false;
		}
	}
	virtq_notify_used(vq);
}

static void vsock_tx_process(struct virtio_vsock *vs)
{
	struct virtqueue *vq = &vs->vdev.vqs[VSOCK_TX];
	while (virtq_pop_desc_chain(vq, &vs->tx_chain) > 0) {
		vsock_handle_tx(vs, &vs->tx_chain);
		/* §5.10.6.4: tx buffers are only read. */
		virtq_push_used(vq, vs->tx_chain.head, 0);
	}
	virtq_notify_used(vq);
}

/* ------------------------------------------------------------------------ */
/* vhost-vsock                                                                */
/* ------------------------------------------------------------------------ */

static int vsock_vhost_realize(struct virtio_vsock *vs, struct perr *err)
{
	/* The guest-cid check comes first: it is the likely user error. */
	uint64_t cid = vs->guest_cid;
	if (ioctl(vs->vhost_fd, VHOST_VSOCK_SET_GUEST_CID, &cid) < 0) {
		if (errno == EADDRINUSE)
			return perr_setx(err, -EADDRINUSE,
					 "guest-cid %" PRIu64 " is already used by another VM on "
					 "this host",
					 cid);
		return perr_set(err, -errno, "%s: VHOST_VSOCK_SET_GUEST_CID %" PRIu64,
				VSOCK_VHOST_PATH, cid);
	}
	for (unsigned i = 0; i < 2; i++) {
		int fd = virtio_dev_queue_kick_fd(&vs->vdev, i);
		if (fd < 0)
			return perr_set(err, fd, "queue %u: no notification eventfd for vhost", i);
		vs->kick_fd[i] = fd;
	}
	int fd = virtio_dev_call_fd(&vs->vdev);
	if (fd < 0)
		return perr_set(err, fd, "no interrupt eventfd for vhost");
	vs->call_fd = fd;
	return 0;
}

static void vsock_vhost_stop(struct virtio_vsock *vs)
{
	if (!vs->vhost_running)
		return;
	int running = 0;
	if (ioctl(vs->vhost_fd, VHOST_VSOCK_SET_RUNNING, &running) < 0)
		log_warn("vsock %s: VHOST_VSOCK_SET_RUNNING 0: %s", vs->id, strerror(errno));
	for (unsigned i = 0; i < 2; i++)
		vhost_clear_vring(vs->vhost_fd, i);
	vs->vhost_running = false;
}

/* DRIVER_OK: the rx and tx rings go to the kernel; the event queue stays here. */
static int vsock_vhost_start(struct virtio_vsock *vs)
{
	struct perr err = {0};
	uint64_t features = vs->vdev.features;
	int ret = vhost_set_features(vs->vhost_fd, features, &err);
	if (ret == 0)
		ret = vhost_set_mem_table(vs->vhost_fd, vs->vdev.mem, &err);
	for (unsigned i = 0; ret == 0 && i < 2; i++) {
		struct virtqueue *vq = &vs->vdev.vqs[i];
		if (!vq->ready) {
			ret = perr_setx(&err, -EINVAL, "queue %u is not enabled", i);
			break;
		}
		ret = vhost_set_vring(vs->vhost_fd, i, vq, vs->kick_fd[i], vs->call_fd, &err);
	}
	if (ret == 0) {
		int running = 1;
		if (ioctl(vs->vhost_fd, VHOST_VSOCK_SET_RUNNING, &running) < 0)
			ret = perr_set(&err, -errno, "VHOST_VSOCK_SET_RUNNING");
	}
	if (ret < 0) {
		log_error("vsock %s: starting vhost-vsock: %s", vs->id, err.msg);
		for (unsigned i = 0; i < 2; i++)
			vhost_clear_vring(vs->vhost_fd, i);
		return ret;
	}
	vs->vhost_running = true;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Device ops                                                                 */
/* ------------------------------------------------------------------------ */

static uint64_t vsock_get_features(struct virtio_dev *vdev)
{
	/* Streams only: no VIRTIO_VSOCK_F_SEQPACKET. */
	(void)vdev;
	return 0;
}

static uint32_t vsock_config_size(struct virtio_dev *vdev)
{
	(void)vdev;
	return sizeof(uint64_t);
}

static void vsock_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&to_vsock(vdev)->config_cid + offset, len);
}

static void vsock_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
			       unsigned len)
{
	struct virtio_vsock *vs = to_vsock(vdev);
	(void)data;
	vsock_guest_warn(vs, "%u-byte config write at %u ignored (guest_cid is read-only)", len,
			 offset);
}

static void vsock_queue_notify(struct virtio_dev *vdev, unsigned index)
{
	struct virtio_vsock *vs = to_vsock(vdev);
	if (vs->vhost_fd >= 0)
		return; /* the event queue: nothing to send on it */
	vsock_reap(vs);
	if (index == VSOCK_TX)
		vsock_tx_process(vs);
	/* Replies to tx, or rx buffers the guest just gave. */
	if (index == VSOCK_TX || index == VSOCK_RX)
		vsock_rx_flush(vs);
}

static int vsock_activate(struct virtio_dev *vdev)
{
	struct virtio_vsock *vs = to_vsock(vdev);
	if (vs->vhost_fd >= 0)
		return vsock_vhost_start(vs);
	/* Host clients may have asked for connections before the driver was up. */
	virtio_dev_kick(vdev, VSOCK_RX);
	return 0;
}

static void vsock_reset(struct virtio_dev *vdev)
{
	struct virtio_vsock *vs = to_vsock(vdev);
	if (vs->vhost_fd >= 0) {
		vsock_vhost_stop(vs);
		return;
	}
	/* Any thread: the chain is ours under the transport lock; the
	 * connections are the loop's, so the loop drops them. */
	vs->rx_held = false;
	__atomic_store_n(&vs->reset_pending, true, __ATOMIC_RELEASE);
	if (vs->work_fd >= 0) {
		uint64_t one = 1;
		ssize_t n = write(vs->work_fd, &one, sizeof(one));
		(void)n;
	}
}

/* Binds uds_path, replacing a stale socket but not a live one. */
static int vsock_listen(struct virtio_vsock *vs, struct perr *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", vs->uds_path);
	if (vs->uds_default) {
		char dir[sizeof(addr.sun_path)];
		snprintf(dir, sizeof(dir), "%s", vs->uds_path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0700) < 0 && errno != EEXIST)
				return perr_set(err, -errno, "mkdir %s", dir);
		}
	}
	vs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (vs->listen_fd < 0)
		return perr_set(err, -errno, "socket");
	struct stat st;
	if (lstat(vs->uds_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return perr_setx(err, -EEXIST, "uds-path %s exists and is not a socket",
					 vs->uds_path);
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live =
		    probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0;
		if (probe >= 0)
			close(probe);
		if (live)
			return perr_setx(err, -EADDRINUSE,
					 "uds-path %s: another process listens on it",
					 vs->uds_path);
		unlink(vs->uds_path);
	}
	if (bind(vs->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return perr_set(err, -errno, "bind %s", vs->uds_path);
	vs->listening = true;
	if (listen(vs->listen_fd, 64) < 0)
		return perr_set(err, -errno, "listen %s", vs->uds_path);
	return 0;
}

static int vsock_realize(struct virtio_dev *vdev, struct perr *err)
{
	struct virtio_vsock *vs = to_vsock(vdev);
	int ret;
	if (vs->vhost_fd >= 0) {
		return vsock_vhost_realize(vs, err);
	}
	/* Without a loop (synchronous tests, fuzzing) the device only answers the guest. */
	if (!vdev->loop)
		return 0;
	vs->work_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vs->work_fd < 0)
		return perr_set(err, -errno, "eventfd");
	ret = eventloop_add(vdev->loop, vs->work_fd, EPOLLIN, vsock_work_event, vs);
	if (ret < 0)
		return perr_set(err, ret, "event loop");
	vs->work_in_loop = true;
	ret = vsock_listen(vs, err);
	if (ret < 0)
		return ret;
	ret = eventloop_add(vdev->loop, vs->listen_fd, EPOLLIN, vsock_listen_event, vs);
	if (ret < 0)
		return perr_set(err, ret, "event loop");
	vs->listen_in_loop = true;
	if (vs->uds_default)
		log_info("vsock %s: hybrid vsock on %s (no uds-path given, no %s)", vs->id,
			 vs->uds_path, VSOCK_VHOST_PATH);
	return 0;
}

static void vsock_destroy(struct virtio_dev *vdev)
{
	struct virtio_vsock *vs = to_vsock(vdev);
	vsock_free_all(vs);
	if (vs->listen_in_loop)
		eventloop_remove(vdev->loop, vs->listen_fd);
	if (vs->listen_fd >= 0)
		close(vs->listen_fd);
	if (vs->listening)
		unlink(vs->uds_path);
	if (vs->work_in_loop)
		eventloop_remove(vdev->loop, vs->work_fd);
	if (vs->work_fd >= 0)
		close(vs->work_fd);
	if (vs->vhost_fd >= 0) {
		vsock_vhost_stop(vs);
		close(vs->vhost_fd);
	}
	free(vs);
}

static int vsock_snapshot_check(struct virtio_dev *vdev, uint16_t *held, struct perr *err)
{
	struct virtio_vsock *vs = to_vsock(vdev);
	if (vs->vhost_fd >= 0)
		return perr_setx(err, -ENOTSUP, "vhost-vsock owns the rings (give uds-path=)");
	/* A connection's state is on both sides; the guest's half is in its RAM. */
	if (vs->n_conns || vs->rst_count)
		return perr_setx(err, -EBUSY,
				 "%u connection(s) open or closing; snapshots are taken with none",
				 vs->n_conns);
	held[VSOCK_RX] = vs->rx_held;
	return 0;
}

static const struct virtio_dev_ops vsock_ops = {
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .num_queues = 3,
    .max_queue_size = VSOCK_QUEUE_SIZE,
    .get_features = vsock_get_features,
    .config_read = vsock_config_read,
    .config_write = vsock_config_write,
    .config_size = vsock_config_size,
    .realize = vsock_realize,
    .activate = vsock_activate,
    .queue_notify = vsock_queue_notify,
    .reset = vsock_reset,
    .destroy = vsock_destroy,
    .snapshot_check = vsock_snapshot_check,
};

/* ------------------------------------------------------------------------ */
/* Creation                                                                   */
/* ------------------------------------------------------------------------ */

/* $XDG_RUNTIME_DIR/petrel-vmm/<pid>-<id>.vsock, else /run/petrel-vmm/... */
static int vsock_default_path(struct virtio_vsock *vs, struct perr *err)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	if (!base || base[0] != '/')
		base = "/run";
	int n = snprintf(vs->uds_path, sizeof(vs->uds_path), "%s/petrel-vmm/%ld-%s.vsock", base,
			 (long)getpid(), vs->id);
	if (n < 0 || (size_t)n >= sizeof(vs->uds_path))
		return perr_setx(err, -ENAMETOOLONG,
				 "the default uds-path under %s is too long; give uds-path=", base);
	vs->uds_default = true;
	return 0;
}

int virtio_vsock_create(const struct vmm_vsock_device *cfg, struct virtio_dev **out,
			struct perr *err)
{
	const char *id = cfg->id[0] ? cfg->id : "vsock0";
	if (cfg->guest_cid < VMM_VSOCK_MIN_CID || cfg->guest_cid > VMM_VSOCK_MAX_CID)
		return perr_setx(err, -EINVAL, "guest-cid %" PRIu64 " is not in [3, %llu]",
				 cfg->guest_cid, VMM_VSOCK_MAX_CID);
	struct virtio_vsock *vs = calloc(1, sizeof(*vs));
	if (!vs)
		return perr_set(err, -ENOMEM, "virtio-vsock");
	vs->vdev.ops = &vsock_ops;
	snprintf(vs->id, sizeof(vs->id), "%s", id);
	snprintf(vs->vdev.id, sizeof(vs->vdev.id), "virtio-vsock %s", id);
	vs->guest_cid = cfg->guest_cid;
	vs->config_cid = htole64(cfg->guest_cid);
	vs->listen_fd = -1;
	vs->work_fd = -1;
	vs->vhost_fd = -1;
	vs->call_fd = -1;
	vs->kick_fd[0] = vs->kick_fd[1] = -1;
	vs->next_port = VSOCK_FIRST_PORT;

	int ret = 0;
	if (cfg->uds_path[0]) {
		/* Absolute when it fits: -daemonize changes to / once the VM runs, and
		 * PATH_P sockets are looked up (and PATH removed) after that. */
		char abs[PATH_MAX];
		if (path_make_absolute(cfg->uds_path, abs, sizeof(abs)) == 0 &&
		    strlen(abs) < sizeof(vs->uds_path))
			snprintf(vs->uds_path, sizeof(vs->uds_path), "%s", abs);
		else
			snprintf(vs->uds_path, sizeof(vs->uds_path), "%s", cfg->uds_path);
	} else {
		struct perr verr = {0};
		vs->vhost_fd = vhost_open(VSOCK_VHOST_PATH, &verr);
		if (vs->vhost_fd < 0) {
			log_debug("vsock %s: %s; using the built-in device", id, verr.msg);
			vs->vhost_fd = -1;
			ret = vsock_default_path(vs, err);
		}
	}
	if (ret < 0) {
		vsock_destroy(&vs->vdev);
		return ret;
	}
	*out = &vs->vdev;
	return 0;
}

const char *virtio_vsock_uds_path(struct virtio_dev *dev)
{
	struct virtio_vsock *vs = to_vsock(dev);
	return vs->vhost_fd >= 0 ? "" : vs->uds_path;
}

bool virtio_vsock_uses_vhost(struct virtio_dev *dev)
{
	return to_vsock(dev)->vhost_fd >= 0;
}
