/*
 * virtio-vsock (virtio 1.2 §5.10), the built-in hybrid backend: a fake guest
 * drives the rx/tx queues through the MMIO transport, host clients use real
 * unix sockets, and the device runs on a real event loop that the test turns
 * for a few milliseconds at a time.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "../../vmm/virtio/virtqueue.h"
#include "../../vmm/virtio/vsock.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define RAM_SIZE  (4u << 20)
#define QSIZE	  64
#define RX_RING	  (FAKE_RAM_GPA + 0x1000)
#define TX_RING	  (FAKE_RAM_GPA + 0x3000)
#define EV_RING	  (FAKE_RAM_GPA + 0x5000)
#define RX_BUFS	  (FAKE_RAM_GPA + 0x10000)
#define RX_BUF_SZ 0x2000u
#define N_RX	  16
#define TX_BUF	  (FAKE_RAM_GPA + 0x40000)
#define GUEST_CID 42
#define HDR	  44

#define OP_REQUEST	  1
#define OP_RESPONSE	  2
#define OP_RST		  3
#define OP_SHUTDOWN	  4
#define OP_RW		  5
#define OP_CREDIT_UPDATE  6
#define OP_CREDIT_REQUEST 7

struct hdr {
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

struct fixture {
	struct fake_guest g;
	struct bus bus;
	struct eventloop *loop;
	int timer_fd;
	struct virtio_mmio *t;
	struct fake_vring rx, tx, ev;
	uint16_t rx_seen;
	uint32_t rx_len; /* bytes in each posted rx buffer */
	char dir[64];
	char path[100];
	int irqs;
};

static struct fixture fx;
/* rx buffer size for the next fixture; 0: header + 4096. */
static uint32_t next_rx_len;

static uint32_t rd(uint64_t off)
{
	return fake_mmio_read(&fx.bus, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_write(&fx.bus, off, v);
}

static void timer_fired(void *opaque, uint32_t events)
{
	(void)opaque;
	(void)events;
	uint64_t n;
	ssize_t r = read(fx.timer_fd, &n, sizeof(n));
	(void)r;
	eventloop_stop(fx.loop);
}

/* Turns the device's loop for ms milliseconds. */
static void run_loop(int ms)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}};
	timerfd_settime(fx.timer_fd, 0, &its, NULL);
	eventloop_run(fx.loop);
}

static void rx_post(unsigned i)
{
	fake_desc(&fx.rx, i, RX_BUFS + (uint64_t)i * RX_BUF_SZ, fx.rx_len, VIRTQ_DESC_F_WRITE, 0);
	fake_avail_push(&fx.rx, (uint16_t)i);
}

/* Linux's probe sequence (§3.1.1) with all rx buffers posted. */
static void driver_init(void)
{
	fake_mmio_negotiate(&fx.bus, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	fake_mmio_setup_queue(&fx.bus, 0, &fx.rx, &fx.g, QSIZE, RX_RING);
	fake_mmio_setup_queue(&fx.bus, 1, &fx.tx, &fx.g, QSIZE, TX_RING);
	fake_mmio_setup_queue(&fx.bus, 2, &fx.ev, &fx.g, QSIZE, EV_RING);
	fake_mmio_driver_ok(&fx.bus);
	fx.rx_seen = 0;
	for (unsigned i = 0; i < N_RX; i++)
		rx_post(i);
	wr(0x050, 0);
	run_loop(5);
}

static void fixture_teardown(void)
{
	if (fx.t)
		virtio_mmio_detach(fx.t);
	fx.t = NULL;
	if (fx.loop) {
		eventloop_remove(fx.loop, fx.timer_fd);
		close(fx.timer_fd);
		eventloop_destroy(fx.loop);
		fx.loop = NULL;
	}
	bus_destroy(&fx.bus);
	fake_guest_free(&fx.g);
	char p[160];
	for (unsigned port = 7000; port < 7010; port++) {
		snprintf(p, sizeof(p), "%s_%u", fx.path, port);
		unlink(p);
	}
	if (fx.dir[0])
		rmdir(fx.dir);
	fx.dir[0] = '\0';
}

/* Returns the attach status; err gets its message. */
static int fixture_setup_at(const char *path, struct perr *err)
{
	if (fx.t || fx.loop)
		fixture_teardown();
	log_set_level(LOG_ERROR);
	memset(&fx, 0, sizeof(fx));
	fx.rx_len = next_rx_len ? next_rx_len : HDR + 4096;
	next_rx_len = 0;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/petrel-test-vsock-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	if (path)
		snprintf(fx.path, sizeof(fx.path), "%s", path);
	else
		snprintf(fx.path, sizeof(fx.path), "%s/v.sock", fx.dir);
	if (fake_guest_init(&fx.g, RAM_SIZE) < 0 || eventloop_create(&fx.loop) < 0)
		return -1;
	fx.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	eventloop_add(fx.loop, fx.timer_fd, EPOLLIN, timer_fired, NULL);
	bus_init(&fx.bus);
	struct vmm_vsock_device cfg = {.present = true, .guest_cid = GUEST_CID};
	snprintf(cfg.id, sizeof(cfg.id), "vsock0");
	snprintf(cfg.uds_path, sizeof(cfg.uds_path), "%s", fx.path);
	struct virtio_dev *vdev;
	int ret = virtio_vsock_create(&cfg, &vdev, err);
	if (ret < 0)
		return ret;
	ret = fake_mmio_attach(&fx.g, &fx.bus, fx.loop, vdev, &fx.irqs, &fx.t, err);
	if (ret < 0)
		return ret;
	driver_init();
	return 0;
}

static int fixture_setup(void)
{
	struct perr err = {0};
	return fixture_setup_at(NULL, &err);
}

/* Guest side. */

static struct hdr guest_hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len)
{
	struct hdr h = {
	    .src_cid = htole64(GUEST_CID),
	    .dst_cid = htole64(2),
	    .src_port = htole32(src_port),
	    .dst_port = htole32(dst_port),
	    .len = htole32(len),
	    .type = htole16(1),
	    .op = htole16(op),
	    .buf_alloc = htole32(256 * 1024),
	};
	return h;
}

/* Puts one packet on the tx queue as `out_len` readable bytes (header and
 * payload in two descriptors when split) and lets the device run. */
static void guest_send_raw(const struct hdr *h, size_t hdr_bytes, const void *payload, size_t len,
			   bool split)
{
	uint8_t *buf = fake_ptr(&fx.g, TX_BUF);
	memcpy(buf, h, hdr_bytes);
	if (len)
		memcpy(buf + hdr_bytes, payload, len);
	if (split && len) {
		fake_desc(&fx.tx, 0, TX_BUF, (uint32_t)hdr_bytes, VIRTQ_DESC_F_NEXT, 1);
		fake_desc(&fx.tx, 1, TX_BUF + hdr_bytes, (uint32_t)len, 0, 0);
	} else {
		fake_desc(&fx.tx, 0, TX_BUF, (uint32_t)(hdr_bytes + len), 0, 0);
	}
	fake_avail_push(&fx.tx, 0);
	wr(0x050, 1);
	run_loop(5);
}

static void guest_send(const struct hdr *h, const void *payload, size_t len)
{
	guest_send_raw(h, sizeof(*h), payload, len, true);
}

/* The next packet the device put on the rx queue (reposting its buffer), or
 * false after ms milliseconds without one. */
static bool guest_recv(struct hdr *h, void *payload, size_t max, int ms)
{
	for (int waited = 0; fake_used_idx(&fx.rx) == fx.rx_seen; waited += 5) {
		if (waited >= ms)
			return false;
		run_loop(5);
	}
	uint32_t id = fake_used_id(&fx.rx, fx.rx_seen);
	uint32_t len = fake_used_len(&fx.rx, fx.rx_seen);
	fx.rx_seen++;
	uint8_t *buf = fake_ptr(&fx.g, RX_BUFS + (uint64_t)id * RX_BUF_SZ);
	memcpy(h, buf, sizeof(*h));
	if (payload && len > HDR)
		memcpy(payload, buf + HDR, len - HDR < max ? len - HDR : max);
	rx_post(id);
	wr(0x050, 0);
	return len >= HDR;
}

/* Host side. */

static int host_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int host_listen(unsigned port)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char path[160];
	snprintf(path, sizeof(path), "%s_%u", fx.path, port);
	if (strlen(path) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, path, strlen(path) + 1);
	unlink(a.sun_path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads what the device sends to a host socket: >0 bytes, 0 at EOF, -1 when
 * nothing came within ms. */
static ssize_t host_read(int fd, void *buf, size_t len, int ms)
{
	for (int waited = 0;; waited += 5) {
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno != EAGAIN)
			return 0; /* ECONNRESET: closed too */
		if (waited >= ms)
			return -1;
		run_loop(5);
	}
}

/* A host-initiated connection, up to the guest's answer: the REQUEST the
 * guest saw is in *req. */
static int host_open(uint32_t guest_port, struct hdr *req)
{
	int fd = host_connect(fx.path);
	if (fd < 0)
		return -1;
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", guest_port);
	if (write(fd, line, (size_t)n) != n || !guest_recv(req, NULL, 0, 500)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The device's reply line to a hybrid client. */
static void host_read_line(int fd, char *line, size_t max)
{
	size_t len = 0;
	while (len + 1 < max) {
		char c;
		if (host_read(fd, &c, 1, 500) != 1)
			break;
		if (c == '\n')
			break;
		line[len++] = c;
	}
	line[len] = '\0';
}

/* Tests. */

UNIT_TEST(test_vsock_reports_device_id_and_guest_cid)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	UNIT_ASSERT_EQ(rd(0x008), 19);
	UNIT_ASSERT_EQ(rd(0x100), GUEST_CID);
	UNIT_ASSERT_EQ(rd(0x104), 0);
	UNIT_ASSERT_EQ(rd(0x070), 15);
	struct stat st;
	UNIT_ASSERT_EQ(stat(fx.path, &st), 0);
	UNIT_ASSERT(S_ISSOCK(st.st_mode));
	fixture_teardown();
	/* The socket goes with the device. */
	UNIT_ASSERT(stat(fx.path, &st) < 0);
}

UNIT_TEST(test_vsock_parse_connect_accepts_only_connect_lines)
{
	uint32_t port = 0;
	UNIT_ASSERT_EQ(virtio_vsock_parse_connect("CONNECT 1024", 12, &port), 0);
	UNIT_ASSERT_EQ(port, 1024);
	UNIT_ASSERT_EQ(virtio_vsock_parse_connect("CONNECT 4294967295", 18, &port), 0);
	UNIT_ASSERT_EQ(port, 4294967295u);
	UNIT_ASSERT_EQ(virtio_vsock_parse_connect("CONNECT 52\r", 11, &port), 0);
	UNIT_ASSERT_EQ(port, 52);
	const char *bad[] = {"CONNECT 4294967296",
			     "CONNECT ",
			     "CONNECT",
			     "connect 5",
			     "CONNECT -1",
			     "CONNECT 12a",
			     "CONNECT  5",
			     "CONNECT 5 ",
			     "CONNECT 00000000001",
			     "",
			     "OK 5",
			     "CONNECT +5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (virtio_vsock_parse_connect(bad[i], strlen(bad[i]), &port) != -EINVAL)
			UNIT_FAIL("\"%s\" was accepted", bad[i]);
}

UNIT_TEST(test_vsock_host_connect_request_response_and_data)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	struct hdr req;
	int fd = host_open(5000, &req);
	UNIT_ASSERT(fd >= 0);
	UNIT_ASSERT_EQ(le16toh(req.op), OP_REQUEST);
	UNIT_ASSERT_EQ(le64toh(req.src_cid), 2);
	UNIT_ASSERT_EQ(le64toh(req.dst_cid), GUEST_CID);
	UNIT_ASSERT_EQ(le32toh(req.dst_port), 5000);
	uint32_t hport = le32toh(req.src_port);
	UNIT_ASSERT(hport >= 1024);
	UNIT_ASSERT_EQ(le32toh(req.buf_alloc), 256 * 1024);

	struct hdr resp = guest_hdr(OP_RESPONSE, 5000, hport, 0);
	guest_send(&resp, NULL, 0);
	char line[64];
	host_read_line(fd, line, sizeof(line));
	char want[64];
	snprintf(want, sizeof(want), "OK %u", hport);
	UNIT_ASSERT_STREQ(line, want);

	UNIT_ASSERT_EQ(write(fd, "hello", 5), 5);
	struct hdr h;
	char data[64] = {0};
	UNIT_ASSERT(guest_recv(&h, data, sizeof(data), 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RW);
	UNIT_ASSERT_EQ(le32toh(h.len), 5);
	UNIT_ASSERT(memcmp(data, "hello", 5) == 0);

	struct hdr rw = guest_hdr(OP_RW, 5000, hport, 5);
	guest_send(&rw, "world", 5);
	memset(data, 0, sizeof(data));
	UNIT_ASSERT_EQ(host_read(fd, data, sizeof(data), 500), 5);
	UNIT_ASSERT_STREQ(data, "world");
	UNIT_ASSERT(fx.irqs > 0);
	close(fd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_host_ports_are_distinct)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	struct hdr a, b;
	int fa = host_open(5000, &a);
	int fb = host_open(5000, &b);
	UNIT_ASSERT(fa >= 0 && fb >= 0);
	UNIT_ASSERT(le32toh(a.src_port) != le32toh(b.src_port));
	close(fa);
	close(fb);
	fixture_teardown();
}

UNIT_TEST(test_vsock_host_connect_rst_closes_client_without_ok)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	struct hdr req;
	int fd = host_open(6000, &req);
	UNIT_ASSERT(fd >= 0);
	struct hdr rst = guest_hdr(OP_RST, 6000, le32toh(req.src_port), 0);
	guest_send(&rst, NULL, 0);
	char c;
	UNIT_ASSERT_EQ(host_read(fd, &c, 1, 500), 0);
	close(fd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_client_leaving_before_answer_resets_guest)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	struct hdr req;
	int fd = host_open(5000, &req);
	UNIT_ASSERT(fd >= 0);
	close(fd);
	struct hdr h;
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RST);
	UNIT_ASSERT_EQ(le32toh(h.src_port), le32toh(req.src_port));
	UNIT_ASSERT_EQ(le32toh(h.dst_port), 5000);
	fixture_teardown();
}

UNIT_TEST(test_vsock_client_half_close_after_connect_line_still_works)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	struct hdr req;
	int fd = host_open(5000, &req);
	UNIT_ASSERT(fd >= 0);
	shutdown(fd, SHUT_WR); /* printf 'CONNECT 5000\n' | socat ... */
	run_loop(10);
	uint32_t hport = le32toh(req.src_port);
	struct hdr resp = guest_hdr(OP_RESPONSE, 5000, hport, 0);
	guest_send(&resp, NULL, 0);
	char line[64];
	host_read_line(fd, line, sizeof(line));
	UNIT_ASSERT(strncmp(line, "OK ", 3) == 0);
	struct hdr h;
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_SHUTDOWN);
	UNIT_ASSERT_EQ(le32toh(h.flags), 2);
	struct hdr rw = guest_hdr(OP_RW, 5000, hport, 5);
	guest_send(&rw, "reply", 5);
	char data[8] = {0};
	UNIT_ASSERT_EQ(host_read(fd, data, sizeof(data), 500), 5);
	close(fd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_bad_connect_lines_close_the_client)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	const char *lines[] = {"HELLO\n", "CONNECT x\n", "CONNECT 99999999999\n",
			       "CONNECT 5 is a very long line that never ends"};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int fd = host_connect(fx.path);
		UNIT_ASSERT(fd >= 0);
		UNIT_ASSERT_EQ(write(fd, lines[i], strlen(lines[i])), (ssize_t)strlen(lines[i]));
		char c;
		if (host_read(fd, &c, 1, 500) != 0)
			UNIT_FAIL("\"%s\" did not close the connection", lines[i]);
		close(fd);
	}
	/* No REQUEST reached the guest. */
	struct hdr h;
	UNIT_ASSERT(!guest_recv(&h, NULL, 0, 20));
	fixture_teardown();
}

/* A guest-initiated connection to port 7000, accepted on the host: *hfd. */
static bool guest_open(uint32_t gport, int *lfd, int *hfd)
{
	*lfd = host_listen(7000);
	if (*lfd < 0)
		return false;
	struct hdr req = guest_hdr(OP_REQUEST, gport, 7000, 0);
	guest_send(&req, NULL, 0);
	struct hdr h;
	if (!guest_recv(&h, NULL, 0, 500) || le16toh(h.op) != OP_RESPONSE ||
	    le32toh(h.src_port) != 7000 || le32toh(h.dst_port) != gport)
		return false;
	*hfd = accept4(*lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	return *hfd >= 0;
}

UNIT_TEST(test_vsock_guest_connect_reaches_uds_port_socket)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	int lfd, hfd;
	UNIT_ASSERT(guest_open(40000, &lfd, &hfd));
	struct hdr rw = guest_hdr(OP_RW, 40000, 7000, 4);
	guest_send(&rw, "ping", 4);
	char data[16] = {0};
	UNIT_ASSERT_EQ(host_read(hfd, data, sizeof(data), 500), 4);
	UNIT_ASSERT_STREQ(data, "ping");
	UNIT_ASSERT_EQ(write(hfd, "pong", 4), 4);
	struct hdr h;
	memset(data, 0, sizeof(data));
	UNIT_ASSERT(guest_recv(&h, data, sizeof(data), 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RW);
	UNIT_ASSERT_STREQ(data, "pong");
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_guest_connect_without_listener_gets_rst)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	struct hdr req = guest_hdr(OP_REQUEST, 40001, 7001, 0);
	guest_send(&req, NULL, 0);
	struct hdr h;
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RST);
	UNIT_ASSERT_EQ(le32toh(h.src_port), 7001);
	UNIT_ASSERT_EQ(le32toh(h.dst_port), 40001);
	UNIT_ASSERT_EQ(le64toh(h.dst_cid), GUEST_CID);
	fixture_teardown();
}

UNIT_TEST(test_vsock_host_to_guest_never_exceeds_credit)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	int lfd = host_listen(7000);
	struct hdr req = guest_hdr(OP_REQUEST, 40002, 7000, 0);
	req.buf_alloc = htole32(100);
	guest_send(&req, NULL, 0);
	struct hdr h;
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RESPONSE);
	int hfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	UNIT_ASSERT(hfd >= 0);
	char big[1000];
	memset(big, 'x', sizeof(big));
	UNIT_ASSERT_EQ(write(hfd, big, sizeof(big)), (ssize_t)sizeof(big));
	uint32_t got = 0;
	while (guest_recv(&h, NULL, 0, 50)) {
		UNIT_ASSERT_EQ(le16toh(h.op), OP_RW);
		got += le32toh(h.len);
	}
	UNIT_ASSERT_EQ(got, 100);
	/* The guest read them: 100 more. */
	struct hdr upd = guest_hdr(OP_CREDIT_UPDATE, 40002, 7000, 0);
	upd.buf_alloc = htole32(100);
	upd.fwd_cnt = htole32(100);
	guest_send(&upd, NULL, 0);
	got = 0;
	while (guest_recv(&h, NULL, 0, 50))
		got += le32toh(h.len);
	UNIT_ASSERT_EQ(got, 100);
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_credit_request_gets_update)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	int lfd, hfd;
	UNIT_ASSERT(guest_open(40003, &lfd, &hfd));
	struct hdr rw = guest_hdr(OP_RW, 40003, 7000, 3);
	guest_send(&rw, "abc", 3);
	struct hdr cr = guest_hdr(OP_CREDIT_REQUEST, 40003, 7000, 0);
	guest_send(&cr, NULL, 0);
	struct hdr h;
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_CREDIT_UPDATE);
	UNIT_ASSERT_EQ(le32toh(h.buf_alloc), 256 * 1024);
	UNIT_ASSERT_EQ(le32toh(h.fwd_cnt), 3);
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_guest_beyond_credit_is_reset)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	int lfd, hfd;
	UNIT_ASSERT(guest_open(40004, &lfd, &hfd));
	/* The host never reads: the socket fills, then our 256 KiB buffer. */
	static char chunk[65536];
	struct hdr h;
	bool reset = false;
	for (int i = 0; i < 64 && !reset; i++) {
		struct hdr rw = guest_hdr(OP_RW, 40004, 7000, sizeof(chunk));
		guest_send(&rw, chunk, sizeof(chunk));
		while (guest_recv(&h, NULL, 0, 0))
			if (le16toh(h.op) == OP_RST)
				reset = true;
	}
	UNIT_ASSERT(reset);
	UNIT_ASSERT(!(rd(0x070) & 64)); /* a protocol error, not a broken ring */
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_guest_shutdown_both_gets_rst_and_host_eof)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	int lfd, hfd;
	UNIT_ASSERT(guest_open(40005, &lfd, &hfd));
	struct hdr sd = guest_hdr(OP_SHUTDOWN, 40005, 7000, 0);
	sd.flags = htole32(3);
	guest_send(&sd, NULL, 0);
	struct hdr h;
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RST);
	char c;
	UNIT_ASSERT_EQ(host_read(hfd, &c, 1, 500), 0);
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_host_eof_becomes_shutdown_send)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	int lfd, hfd;
	UNIT_ASSERT(guest_open(40006, &lfd, &hfd));
	UNIT_ASSERT_EQ(write(hfd, "bye", 3), 3);
	shutdown(hfd, SHUT_WR);
	struct hdr h;
	char data[8] = {0};
	UNIT_ASSERT(guest_recv(&h, data, sizeof(data), 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RW);
	UNIT_ASSERT_STREQ(data, "bye");
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_SHUTDOWN);
	UNIT_ASSERT_EQ(le32toh(h.flags), 2);
	/* The guest may still send. */
	struct hdr rw = guest_hdr(OP_RW, 40006, 7000, 2);
	guest_send(&rw, "ok", 2);
	memset(data, 0, sizeof(data));
	UNIT_ASSERT_EQ(host_read(hfd, data, sizeof(data), 500), 2);
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_malformed_packets_are_dropped_or_reset)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	struct hdr h;
	/* Shorter than a header: dropped. */
	struct hdr p = guest_hdr(OP_REQUEST, 1, 7000, 0);
	guest_send_raw(&p, 20, NULL, 0, false);
	UNIT_ASSERT(!guest_recv(&h, NULL, 0, 20));
	/* len beyond the buffer: dropped. */
	p = guest_hdr(OP_RW, 1, 7000, 5000);
	guest_send_raw(&p, sizeof(p), "abc", 3, false);
	UNIT_ASSERT(!guest_recv(&h, NULL, 0, 20));
	/* len beyond any packet: dropped. */
	p = guest_hdr(OP_RW, 1, 7000, 0xffffffffu);
	guest_send_raw(&p, sizeof(p), NULL, 0, false);
	UNIT_ASSERT(!guest_recv(&h, NULL, 0, 20));
	/* A spoofed source cid: dropped. */
	p = guest_hdr(OP_REQUEST, 1, 7000, 0);
	p.src_cid = htole64(GUEST_CID + 1);
	guest_send(&p, NULL, 0);
	UNIT_ASSERT(!guest_recv(&h, NULL, 0, 20));
	/* Another destination cid: RST from that cid. */
	p = guest_hdr(OP_REQUEST, 2, 7000, 0);
	p.dst_cid = htole64(7);
	guest_send(&p, NULL, 0);
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RST);
	UNIT_ASSERT_EQ(le64toh(h.src_cid), 7);
	/* A seqpacket: RST. */
	p = guest_hdr(OP_REQUEST, 3, 7000, 0);
	p.type = htole16(2);
	guest_send(&p, NULL, 0);
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RST);
	/* Data for no connection: RST; an RST for none: nothing. */
	p = guest_hdr(OP_RW, 4, 7000, 3);
	guest_send(&p, "abc", 3);
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RST);
	UNIT_ASSERT_EQ(le32toh(h.dst_port), 4);
	p = guest_hdr(OP_RST, 5, 7000, 0);
	guest_send(&p, NULL, 0);
	UNIT_ASSERT(!guest_recv(&h, NULL, 0, 20));
	/* An unknown op on an open connection resets it. */
	int lfd, hfd;
	UNIT_ASSERT(guest_open(40007, &lfd, &hfd));
	p = guest_hdr(99, 40007, 7000, 0);
	guest_send(&p, NULL, 0);
	UNIT_ASSERT(guest_recv(&h, NULL, 0, 500));
	UNIT_ASSERT_EQ(le16toh(h.op), OP_RST);
	char c;
	UNIT_ASSERT_EQ(host_read(hfd, &c, 1, 500), 0);
	/* None of it broke the device. */
	UNIT_ASSERT_EQ(rd(0x070), 15);
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_tiny_rx_buffers_do_not_stall)
{
	/* Header-only rx buffers: control packets fit, data cannot. */
	next_rx_len = HDR;
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	int lfd, hfd;
	UNIT_ASSERT(guest_open(40008, &lfd, &hfd));
	UNIT_ASSERT_EQ(write(hfd, "data", 4), 4);
	struct hdr h;
	int n = 0;
	while (n < 2 * N_RX && guest_recv(&h, NULL, 0, 10)) {
		UNIT_ASSERT_EQ(le16toh(h.op), OP_CREDIT_UPDATE);
		n++;
	}
	UNIT_ASSERT(n > 0);
	/* Shorter than a header: returned empty (the header-only buffers still
	 * posted carry credit updates). */
	fx.rx_len = 10;
	for (int i = 0; i < 2 * N_RX; i++)
		if (guest_recv(&h, NULL, 0, 10))
			UNIT_ASSERT_EQ(le16toh(h.op), OP_CREDIT_UPDATE);
	/* Real buffers again: the bytes arrive. */
	fx.rx_len = HDR + 4096;
	bool got = false;
	for (int i = 0; i < 4 * N_RX && !got; i++) {
		char data[8] = {0};
		if (guest_recv(&h, data, sizeof(data), 10) && le16toh(h.op) == OP_RW)
			got = memcmp(data, "data", 4) == 0;
	}
	UNIT_ASSERT(got);
	UNIT_ASSERT_EQ(rd(0x070), 15);
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_device_reset_closes_host_connections)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	int lfd, hfd;
	UNIT_ASSERT(guest_open(40009, &lfd, &hfd));
	wr(0x070, 0);
	char c;
	UNIT_ASSERT_EQ(host_read(hfd, &c, 1, 500), 0);
	/* The listener stays: a new driver gets new connections. */
	driver_init();
	struct hdr req;
	int fd = host_open(5000, &req);
	UNIT_ASSERT(fd >= 0);
	UNIT_ASSERT_EQ(le16toh(req.op), OP_REQUEST);
	close(fd);
	close(hfd);
	close(lfd);
	fixture_teardown();
}

UNIT_TEST(test_vsock_replaces_stale_socket_but_not_live_one)
{
	char dir[] = "/tmp/petrel-test-vsock-stale-XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	char path[108];
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	/* Stale: bound, then its owner went away. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	UNIT_ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_setup_at(path, &err), 0);
	int c = host_connect(path);
	UNIT_ASSERT(c >= 0);
	close(c);
	/* Live: a second device on the same path is refused. */
	struct vmm_vsock_device cfg = {.present = true, .guest_cid = 3};
	snprintf(cfg.uds_path, sizeof(cfg.uds_path), "%s", path);
	struct virtio_dev *vdev;
	UNIT_ASSERT_EQ(virtio_vsock_create(&cfg, &vdev, &err), 0);
	struct bus bus2;
	bus_init(&bus2);
	struct virtio_mmio *t2 = NULL;
	int irqs2 = 0;
	UNIT_ASSERT_EQ(fake_mmio_attach(&fx.g, &bus2, fx.loop, vdev, &irqs2, &t2, &err),
		       -EADDRINUSE);
	UNIT_ASSERT_CONTAINS(err.msg, "another process listens");
	bus_destroy(&bus2);
	fixture_teardown();
	rmdir(dir);
}

UNIT_TEST(test_vsock_default_path_is_under_xdg_runtime_dir)
{
	char dir[] = "/tmp/petrel-test-vsock-xdg-XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	const char *old = getenv("XDG_RUNTIME_DIR");
	char *saved = old ? strdup(old) : NULL;
	setenv("XDG_RUNTIME_DIR", dir, 1);
	struct vmm_vsock_device cfg = {.present = true, .guest_cid = 3};
	snprintf(cfg.id, sizeof(cfg.id), "vs9");
	struct virtio_dev *vdev;
	struct perr err = {0};
	int ret = virtio_vsock_create(&cfg, &vdev, &err);
	if (saved) {
		setenv("XDG_RUNTIME_DIR", saved, 1);
		free(saved);
	} else {
		unsetenv("XDG_RUNTIME_DIR");
	}
	UNIT_ASSERT_EQ(ret, 0);
	if (virtio_vsock_uses_vhost(vdev)) {
		vdev->ops->destroy(vdev);
		rmdir(dir);
		UNIT_SKIP("/dev/vhost-vsock opens here: no default socket path");
	}
	char want[160];
	snprintf(want, sizeof(want), "%s/petrel-vmm/%ld-vs9.vsock", dir, (long)getpid());
	UNIT_ASSERT_STREQ(virtio_vsock_uds_path(vdev), want);
	/* Created (with its directory) when attached, removed on destroy. */
	struct eventloop *loop;
	UNIT_ASSERT_EQ(eventloop_create(&loop), 0);
	struct fake_guest g;
	UNIT_ASSERT_EQ(fake_guest_init(&g, 1u << 20), 0);
	struct bus bus;
	bus_init(&bus);
	struct virtio_mmio *t;
	int irqs = 0;
	UNIT_ASSERT_EQ(fake_mmio_attach(&g, &bus, loop, vdev, &irqs, &t, &err), 0);
	struct stat st;
	UNIT_ASSERT_EQ(stat(want, &st), 0);
	UNIT_ASSERT(S_ISSOCK(st.st_mode));
	virtio_mmio_detach(t);
	UNIT_ASSERT(stat(want, &st) < 0);
	bus_destroy(&bus);
	fake_guest_free(&g);
	eventloop_destroy(loop);
	char sub[160];
	snprintf(sub, sizeof(sub), "%s/petrel-vmm", dir);
	rmdir(sub);
	rmdir(dir);
}

UNIT_TEST(test_vsock_rejects_guest_cid_out_of_range)
{
	struct vmm_vsock_device cfg = {.present = true, .guest_cid = 2};
	snprintf(cfg.uds_path, sizeof(cfg.uds_path), "/tmp/unused.sock");
	struct virtio_dev *vdev;
	struct perr err = {0};
	UNIT_ASSERT_EQ(virtio_vsock_create(&cfg, &vdev, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "guest-cid 2");
	cfg.guest_cid = 1ull << 32;
	UNIT_ASSERT_EQ(virtio_vsock_create(&cfg, &vdev, &err), -EINVAL);
}

UNIT_MAIN("virtio_vsock")
