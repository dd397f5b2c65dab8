/* virtio-net (virtio 1.2 §5.1) driven through the MMIO transport by a fake
 * guest, with a SOCK_DGRAM socketpair in place of the tap (one frame per
 * message, like a tap), and the tap backend's checks against real fds. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/virtio/net.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "../../vmm/virtio/virtqueue.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define BASE	 0xd0000000ull
#define RAM_SIZE (4u << 20)
#define RX_RING	 (FAKE_RAM_GPA + 0x1000)
#define TX_RING	 (FAKE_RAM_GPA + 0x6000)
#define BUFS	 (FAKE_RAM_GPA + 0x10000) /* frame buffers from here on */
#define QSIZE	 64
#define HDR_LEN	 12

/* Feature bits (§5.1.3). */
#define F_CSUM	     0
#define F_GUEST_CSUM 1
#define F_MAC	     5
#define F_HOST_TSO4  11
#define F_MRG_RXBUF  15
#define F_STATUS     16
#define F_VERSION_1  32

struct fixture {
	struct fake_guest g;
	struct bus bus;
	struct virtio_mmio *t;
	struct fake_vring rx, tx;
	unsigned rx_next, tx_next; /* next free descriptor */
	int peer;		   /* the host side of the "tap" */
	int dev_fd;
	uint64_t offered;
	int irqs;
};

static struct fixture fx;

static uint32_t rd(uint64_t off)
{
	return fake_mmio_read(&fx.bus, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_write(&fx.bus, off, v);
}

/* Linux's probe sequence (§3.1.1), accepting the offered features minus `drop`. */
static void driver_init(uint64_t drop)
{
	fx.offered = fake_mmio_negotiate(&fx.bus, ~drop);
	fake_mmio_setup_queue(&fx.bus, 0, &fx.rx, &fx.g, QSIZE, RX_RING);
	fake_mmio_setup_queue(&fx.bus, 1, &fx.tx, &fx.g, QSIZE, TX_RING);
	fake_mmio_driver_ok(&fx.bus);
}

static void fixture_teardown(void)
{
	if (fx.t)
		virtio_mmio_detach(fx.t);
	fx.t = NULL;
	bus_destroy(&fx.bus);
	fake_guest_free(&fx.g);
	if (fx.peer >= 0)
		close(fx.peer);
	fx.peer = -1;
}

static const uint8_t test_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* A device over one end of a socketpair, attached with `loop` (NULL: queues
 * run synchronously on QueueNotify writes). */
static int fixture_setup_loop(uint64_t drop, struct eventloop *loop)
{
	static bool quiet;
	if (!quiet) {
		/* Refused chains are logged on purpose below. */
		log_set_level(LOG_ERROR);
		quiet = true;
	}
	memset(&fx, 0, sizeof(fx));
	fx.peer = -1;
	if (fake_guest_init(&fx.g, RAM_SIZE) < 0)
		return -1;
	bus_init(&fx.bus);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	fx.peer = sv[1];
	fx.dev_fd = sv[0];
	struct vmm_net_device dev = {0};
	snprintf(dev.id, sizeof(dev.id), "nic0");
	snprintf(dev.netdev, sizeof(dev.netdev), "net0");
	struct perr err = {0};
	struct virtio_dev *vdev;
	int ret = virtio_net_create_on_fd(sv[0], false, "sock", &dev, test_mac, &vdev, &err);
	if (ret < 0)
		return ret;
	ret = fake_mmio_attach(&fx.g, &fx.bus, loop, vdev, &fx.irqs, &fx.t, &err);
	if (ret < 0)
		return ret;
	driver_init(drop);
	return 0;
}

static int fixture_setup(uint64_t drop)
{
	return fixture_setup_loop(drop, NULL);
}

/* One chain of n buffers at consecutive descriptors; returns the head. */
struct buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

static uint16_t add_chain(struct fake_vring *vr, unsigned *next, const struct buf *b, unsigned n)
{
	uint16_t head = (uint16_t)(*next % vr->size);
	for (unsigned i = 0; i < n; i++) {
		unsigned idx = (*next + i) % vr->size;
		uint16_t flags =
		    (b[i].writable ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		fake_desc(vr, idx, b[i].gpa, b[i].len, flags, (uint16_t)((idx + 1) % vr->size));
	}
	*next += n;
	fake_avail_push(vr, head);
	return head;
}

/* A frame in guest memory at gpa: a zero header, then len bytes (i * 3 + seed). */
static void put_frame(uint64_t gpa, uint32_t len, uint8_t seed)
{
	uint8_t *p = fake_ptr(&fx.g, gpa);
	memset(p, 0, HDR_LEN);
	for (uint32_t i = 0; i < len; i++)
		p[HDR_LEN + i] = (uint8_t)(i * 3 + seed);
}

static ssize_t peer_send_frame(uint32_t len, uint8_t seed, uint8_t hdr_flags)
{
	static uint8_t buf[70000];
	memset(buf, 0, HDR_LEN);
	buf[0] = hdr_flags;
	for (uint32_t i = 0; i < len; i++)
		buf[HDR_LEN + i] = (uint8_t)(i * 3 + seed);
	return send(fx.peer, buf, HDR_LEN + len, 0);
}

UNIT_TEST(test_net_offers_mac_status_and_offloads)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	UNIT_ASSERT_EQ(rd(0x008), 1); /* VIRTIO_ID_NET */
	UNIT_ASSERT(fx.offered & (1ull << F_MAC));
	UNIT_ASSERT(fx.offered & (1ull << F_STATUS));
	UNIT_ASSERT(fx.offered & (1ull << F_MRG_RXBUF));
	UNIT_ASSERT(fx.offered & (1ull << F_CSUM));
	UNIT_ASSERT(fx.offered & (1ull << F_HOST_TSO4));
	UNIT_ASSERT(fx.offered & (1ull << F_VERSION_1));
	UNIT_ASSERT(!(fx.offered & (1ull << 22))); /* no MQ */
	uint8_t mac[6];
	for (unsigned i = 0; i < 6; i++)
		bus_read(&fx.bus, BASE + 0x100 + i, &mac[i], 1);
	UNIT_ASSERT(memcmp(mac, test_mac, 6) == 0);
	uint16_t status = 0;
	bus_read(&fx.bus, BASE + 0x106, &status, 2);
	UNIT_ASSERT_EQ(status, 1); /* LINK_UP */
	UNIT_ASSERT_EQ(rd(0x070), 15);
	fixture_teardown();
}

UNIT_TEST(test_net_tx_writes_header_and_frame_to_the_tap)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	put_frame(BUFS, 1000, 7);
	/* Header and frame split across three descriptors, as Linux may do. */
	struct buf b[] = {{BUFS, HDR_LEN, false},
			  {BUFS + HDR_LEN, 500, false},
			  {BUFS + HDR_LEN + 500, 500, false}};
	uint16_t head = add_chain(&fx.tx, &fx.tx_next, b, 3);
	wr(0x050, 1);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.tx), 1);
	UNIT_ASSERT_EQ(fake_used_id(&fx.tx, 0), head);
	UNIT_ASSERT_EQ(fake_used_len(&fx.tx, 0), 0);
	uint8_t got[2048];
	ssize_t n = recv(fx.peer, got, sizeof(got), 0);
	UNIT_ASSERT_EQ(n, HDR_LEN + 1000);
	UNIT_ASSERT(memcmp(got, fake_ptr(&fx.g, BUFS), (size_t)n) == 0);
	UNIT_ASSERT(fx.irqs >= 1);
	fixture_teardown();
}

UNIT_TEST(test_net_tx_drops_malformed_chains_and_returns_them)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	put_frame(BUFS, 100, 1);
	/* Shorter than the header. */
	struct buf shortb[] = {{BUFS, 8, false}};
	add_chain(&fx.tx, &fx.tx_next, shortb, 1);
	/* A device-writable buffer in a transmit chain. */
	struct buf wb[] = {{BUFS, HDR_LEN + 100, false}, {BUFS + 0x1000, 64, true}};
	add_chain(&fx.tx, &fx.tx_next, wb, 2);
	/* Longer than 64 KiB: three 32 KiB descriptors over the same memory. */
	struct buf big[] = {{BUFS, 32768, false}, {BUFS, 32768, false}, {BUFS, 32768, false}};
	add_chain(&fx.tx, &fx.tx_next, big, 3);
	/* Then a good frame, which must still go out. */
	struct buf good[] = {{BUFS, HDR_LEN + 100, false}};
	add_chain(&fx.tx, &fx.tx_next, good, 1);
	wr(0x050, 1);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.tx), 4);
	uint8_t got[256];
	ssize_t n = recv(fx.peer, got, sizeof(got), 0);
	UNIT_ASSERT_EQ(n, HDR_LEN + 100);
	UNIT_ASSERT_EQ(recv(fx.peer, got, sizeof(got), 0), -1); /* nothing else went out */
	UNIT_ASSERT_EQ(rd(0x070), 15);				/* the device is fine */
	fixture_teardown();
}

UNIT_TEST(test_net_tx_drops_offloads_that_were_not_negotiated)
{
	UNIT_ASSERT_EQ(
	    fixture_setup((1ull << F_HOST_TSO4) | (1ull << F_CSUM) | (1ull << 12) | (1ull << 13)),
	    0);
	put_frame(BUFS, 100, 1);
	uint8_t *hdr = fake_ptr(&fx.g, BUFS);
	hdr[1] = 1; /* GSO_TCPV4 */
	struct buf b[] = {{BUFS, HDR_LEN + 100, false}};
	add_chain(&fx.tx, &fx.tx_next, b, 1);
	put_frame(BUFS + 0x1000, 100, 1);
	*(uint8_t *)fake_ptr(&fx.g, BUFS + 0x1000) = 1; /* NEEDS_CSUM */
	struct buf c[] = {{BUFS + 0x1000, HDR_LEN + 100, false}};
	add_chain(&fx.tx, &fx.tx_next, c, 1);
	wr(0x050, 1);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.tx), 2);
	uint8_t got[256];
	UNIT_ASSERT_EQ(recv(fx.peer, got, sizeof(got), 0), -1);
	fixture_teardown();
}

UNIT_TEST(test_net_rx_fills_one_guest_buffer)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	UNIT_ASSERT_EQ(peer_send_frame(300, 9, 0), HDR_LEN + 300);
	struct buf b[] = {{BUFS, 2048, true}};
	uint16_t head = add_chain(&fx.rx, &fx.rx_next, b, 1);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 1);
	UNIT_ASSERT_EQ(fake_used_id(&fx.rx, 0), head);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 0), HDR_LEN + 300);
	uint8_t *p = fake_ptr(&fx.g, BUFS);
	UNIT_ASSERT_EQ(fake_get16(&fx.g, BUFS + 10), 1); /* num_buffers */
	for (unsigned i = 0; i < 300; i++)
		if (p[HDR_LEN + i] != (uint8_t)(i * 3 + 9))
			UNIT_FAIL("byte %u differs", i);
	UNIT_ASSERT(fx.irqs >= 1);
	fixture_teardown();
}

UNIT_TEST(test_net_rx_merges_buffers_for_a_large_frame)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	UNIT_ASSERT_EQ(peer_send_frame(3000, 5, 0), HDR_LEN + 3000);
	for (unsigned i = 0; i < 8; i++) {
		struct buf b[] = {{BUFS + 0x1000ull * i, 1024, true}};
		add_chain(&fx.rx, &fx.rx_next, b, 1);
	}
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 3);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 0), 1024);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 1), 1024);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 2), HDR_LEN + 3000 - 2048);
	UNIT_ASSERT_EQ(fake_get16(&fx.g, BUFS + 10), 3);
	/* The second buffer continues the frame where the first stopped. */
	uint8_t *second = fake_ptr(&fx.g, BUFS + 0x1000);
	unsigned off = 1024 - HDR_LEN;
	UNIT_ASSERT_EQ(second[0], (uint8_t)(off * 3 + 5));
	/* The five buffers left over take the next frame. */
	UNIT_ASSERT_EQ(peer_send_frame(100, 1, 0), HDR_LEN + 100);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 4);
	UNIT_ASSERT_EQ(fake_used_id(&fx.rx, 3), 3);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 3), HDR_LEN + 100);
	fixture_teardown();
}

UNIT_TEST(test_net_rx_holds_a_frame_until_the_guest_gives_buffers_enough)
{
	/* MRG_RXBUF: a 3000-byte frame read while the ring holds 2 KiB waits for
	 * the third buffer instead of being dropped. */
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	UNIT_ASSERT_EQ(peer_send_frame(3000, 5, 0), HDR_LEN + 3000);
	UNIT_ASSERT_EQ(peer_send_frame(100, 6, 0), HDR_LEN + 100);
	for (unsigned i = 0; i < 2; i++) {
		struct buf b[] = {{BUFS + 0x1000ull * i, 1024, true}};
		add_chain(&fx.rx, &fx.rx_next, b, 1);
	}
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 0);
	for (unsigned i = 2; i < 4; i++) {
		struct buf b[] = {{BUFS + 0x1000ull * i, 1024, true}};
		add_chain(&fx.rx, &fx.rx_next, b, 1);
	}
	wr(0x050, 0);
	/* The held frame in three buffers, then the next frame in the fourth. */
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 4);
	UNIT_ASSERT_EQ(fake_get16(&fx.g, BUFS + 10), 3); /* num_buffers */
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 2), HDR_LEN + 3000 - 2048);
	for (unsigned i = 0; i < 3000; i++) {
		size_t off = HDR_LEN + i;
		uint8_t got =
		    *(uint8_t *)fake_ptr(&fx.g, BUFS + 0x1000ull * (off / 1024) + off % 1024);
		if (got != (uint8_t)(i * 3 + 5))
			UNIT_FAIL("byte %u differs", i);
	}
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 3), HDR_LEN + 100);
	UNIT_ASSERT_EQ(*(uint8_t *)fake_ptr(&fx.g, BUFS + 0x3000 + HDR_LEN), (uint8_t)6);
	fixture_teardown();
}

UNIT_TEST(test_net_rx_without_buffers_keeps_the_frame_queued)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	UNIT_ASSERT_EQ(peer_send_frame(64, 2, 0), HDR_LEN + 64);
	wr(0x050, 0); /* no buffers yet */
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 0);
	struct buf b[] = {{BUFS, 2048, true}};
	add_chain(&fx.rx, &fx.rx_next, b, 1);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 0), HDR_LEN + 64);
	fixture_teardown();
}

UNIT_TEST(test_net_rx_drops_a_frame_larger_than_the_buffer_and_keeps_the_buffer)
{
	/* Without MRG_RXBUF every frame must fit one chain (§5.1.6.3.1). */
	UNIT_ASSERT_EQ(fixture_setup(1ull << F_MRG_RXBUF), 0);
	UNIT_ASSERT_EQ(peer_send_frame(1000, 2, 0), HDR_LEN + 1000);
	UNIT_ASSERT_EQ(peer_send_frame(100, 4, 0), HDR_LEN + 100);
	struct buf b[] = {{BUFS, 256, true}};
	uint16_t head = add_chain(&fx.rx, &fx.rx_next, b, 1);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 1);
	UNIT_ASSERT_EQ(fake_used_id(&fx.rx, 0), head);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 0), HDR_LEN + 100);
	UNIT_ASSERT_EQ(*(uint8_t *)fake_ptr(&fx.g, BUFS + HDR_LEN), 4);
	UNIT_ASSERT_EQ(fake_get16(&fx.g, BUFS + 10), 1);
	fixture_teardown();
}

UNIT_TEST(test_net_rx_returns_read_only_and_headerless_chains_unused)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	struct buf ro[] = {{BUFS, 2048, false}};
	add_chain(&fx.rx, &fx.rx_next, ro, 1);
	struct buf tiny[] = {{BUFS + 0x1000, 8, true}};
	add_chain(&fx.rx, &fx.rx_next, tiny, 1);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 2);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 0), 0);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 1), 0);
	UNIT_ASSERT_EQ(rd(0x070), 15);
	fixture_teardown();
}

UNIT_TEST(test_net_rx_clears_header_flags_without_guest_csum)
{
	UNIT_ASSERT_EQ(
	    fixture_setup((1ull << F_GUEST_CSUM) | (1ull << 7) | (1ull << 8) | (1ull << 9)), 0);
	UNIT_ASSERT_EQ(peer_send_frame(64, 2, 2 /* DATA_VALID */), HDR_LEN + 64);
	struct buf b[] = {{BUFS, 2048, true}};
	*(uint8_t *)fake_ptr(&fx.g, BUFS) = 0xff;
	add_chain(&fx.rx, &fx.rx_next, b, 1);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 1);
	UNIT_ASSERT_EQ(*(uint8_t *)fake_ptr(&fx.g, BUFS), 0);
	fixture_teardown();
}

UNIT_TEST(test_net_reset_forgets_held_buffers)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	struct buf b[] = {{BUFS, 2048, true}};
	add_chain(&fx.rx, &fx.rx_next, b, 1);
	wr(0x050, 0); /* taken, waiting for a frame */
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 0);
	fx.rx_next = 0;
	driver_init(0); /* reset and new rings */
	UNIT_ASSERT_EQ(peer_send_frame(64, 2, 0), HDR_LEN + 64);
	struct buf c[] = {{BUFS + 0x4000, 2048, true}};
	uint16_t head = add_chain(&fx.rx, &fx.rx_next, c, 1);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 1);
	UNIT_ASSERT_EQ(fake_used_id(&fx.rx, 0), head);
	UNIT_ASSERT_EQ(*(uint8_t *)fake_ptr(&fx.g, BUFS + 0x4000 + HDR_LEN), 2);
	fixture_teardown();
}

/* With an event loop: the tap is polled while the guest has buffers, and not
 * at all while it has none, so a queued frame costs no CPU. */
struct loop_thread {
	struct eventloop *loop;
	int stop_fd;
	pthread_t thread;
	clockid_t cpu_clock;
};

static void loop_stop_cb(void *opaque, uint32_t events)
{
	(void)events;
	eventloop_stop(opaque);
}

static void *loop_main(void *opaque)
{
	struct loop_thread *lt = opaque;
	eventloop_run(lt->loop);
	return NULL;
}

static double thread_cpu_ms(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool wait_used(struct fake_vring *vr, uint16_t want)
{
	for (int i = 0; i < 2000; i++) {
		if (__atomic_load_n((uint16_t *)fake_ptr(vr->g, vr->used + 2), __ATOMIC_ACQUIRE) ==
		    want)
			return true;
		usleep(1000);
	}
	return false;
}

UNIT_TEST(test_net_rx_waits_for_buffers_without_spinning)
{
	struct loop_thread lt = {0};
	UNIT_ASSERT_EQ(eventloop_create(&lt.loop), 0);
	lt.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	UNIT_ASSERT(lt.stop_fd >= 0);
	UNIT_ASSERT_EQ(eventloop_add(lt.loop, lt.stop_fd, EPOLLIN, loop_stop_cb, lt.loop), 0);
	UNIT_ASSERT_EQ(fixture_setup_loop(0, lt.loop), 0);
	UNIT_ASSERT_EQ(pthread_create(&lt.thread, NULL, loop_main, &lt), 0);
	pthread_getcpuclockid(lt.thread, &lt.cpu_clock);

	/* A frame arrives while the guest has no buffers. */
	UNIT_ASSERT_EQ(peer_send_frame(64, 3, 0), HDR_LEN + 64);
	usleep(50 * 1000);
	double before = thread_cpu_ms(lt.cpu_clock);
	usleep(300 * 1000);
	double spent = thread_cpu_ms(lt.cpu_clock) - before;
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 0);

	/* Buffers, and the notification that comes with them: the frame is delivered. */
	struct buf b[] = {{BUFS, 2048, true}, {BUFS + 0x1000, 2048, true}};
	add_chain(&fx.rx, &fx.rx_next, &b[0], 1);
	add_chain(&fx.rx, &fx.rx_next, &b[1], 1);
	wr(0x050, 0);
	bool first = wait_used(&fx.rx, 1);
	/* Now polling is on: the next frame needs no notification. */
	UNIT_ASSERT_EQ(peer_send_frame(80, 4, 0), HDR_LEN + 80);
	bool second = wait_used(&fx.rx, 2);
	/* Transmit through the loop as well. */
	put_frame(BUFS + 0x8000, 200, 6);
	struct buf t[] = {{BUFS + 0x8000, HDR_LEN + 200, false}};
	add_chain(&fx.tx, &fx.tx_next, t, 1);
	wr(0x050, 1);
	bool sent = wait_used(&fx.tx, 1);
	uint32_t second_len = fake_used_len(&fx.rx, 1);

	uint64_t one = 1;
	UNIT_ASSERT_EQ(write(lt.stop_fd, &one, sizeof(one)), 8);
	pthread_join(lt.thread, NULL);
	fixture_teardown();
	eventloop_remove(lt.loop, lt.stop_fd);
	close(lt.stop_fd);
	eventloop_destroy(lt.loop);

	UNIT_ASSERT(spent < 30.0);
	UNIT_ASSERT(first);
	UNIT_ASSERT(second);
	UNIT_ASSERT_EQ(second_len, HDR_LEN + 80);
	UNIT_ASSERT(sent);
}

UNIT_TEST(test_net_frames_before_the_driver_is_up_cost_no_cpu)
{
	struct loop_thread lt = {0};
	UNIT_ASSERT_EQ(eventloop_create(&lt.loop), 0);
	lt.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	UNIT_ASSERT(lt.stop_fd >= 0);
	UNIT_ASSERT_EQ(eventloop_add(lt.loop, lt.stop_fd, EPOLLIN, loop_stop_cb, lt.loop), 0);
	UNIT_ASSERT_EQ(fixture_setup_loop(0, lt.loop), 0);
	wr(0x070, 0); /* the driver resets the device: nothing is live */
	UNIT_ASSERT_EQ(pthread_create(&lt.thread, NULL, loop_main, &lt), 0);
	pthread_getcpuclockid(lt.thread, &lt.cpu_clock);

	UNIT_ASSERT_EQ(peer_send_frame(64, 8, 0), HDR_LEN + 64);
	usleep(50 * 1000);
	double before = thread_cpu_ms(lt.cpu_clock);
	usleep(300 * 1000);
	double spent = thread_cpu_ms(lt.cpu_clock) - before;

	/* The driver comes up and posts buffers: the queued frame arrives. */
	fx.rx_next = fx.tx_next = 0;
	driver_init(0);
	struct buf b[] = {{BUFS, 2048, true}};
	add_chain(&fx.rx, &fx.rx_next, b, 1);
	wr(0x050, 0);
	bool delivered = wait_used(&fx.rx, 1);
	uint8_t first = *(uint8_t *)fake_ptr(&fx.g, BUFS + HDR_LEN);

	uint64_t one = 1;
	UNIT_ASSERT_EQ(write(lt.stop_fd, &one, sizeof(one)), 8);
	pthread_join(lt.thread, NULL);
	fixture_teardown();
	eventloop_remove(lt.loop, lt.stop_fd);
	close(lt.stop_fd);
	eventloop_destroy(lt.loop);

	UNIT_ASSERT(spent < 30.0);
	UNIT_ASSERT(delivered);
	UNIT_ASSERT_EQ(first, 8);
}

/* MAC rule and backend checks. */

UNIT_TEST(test_net_default_mac_is_stable_local_and_per_device)
{
	uint8_t a[6], b[6], c[6], d[6];
	virtio_net_default_mac("vm1", "nic0", a);
	virtio_net_default_mac("vm1", "nic0", b);
	virtio_net_default_mac("vm1", "nic1", c);
	virtio_net_default_mac("vm2", "nic0", d);
	UNIT_ASSERT(memcmp(a, b, 6) == 0);
	UNIT_ASSERT(memcmp(a, c, 6) != 0);
	UNIT_ASSERT(memcmp(a, d, 6) != 0);
	UNIT_ASSERT_EQ(a[0], 0x52);
	UNIT_ASSERT_EQ(a[1], 0x54);
	UNIT_ASSERT_EQ(a[2], 0x00);
	/* FNV-1a("vm1/nic0") = 0x....; the rule is documented in docs/vmm.md. */
	uint32_t h = 2166136261u;
	for (const char *s = "vm1/nic0"; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	UNIT_ASSERT_EQ(a[3], (uint8_t)(h >> 16));
	UNIT_ASSERT_EQ(a[5], (uint8_t)h);
}

static struct vmm_netdev netdev_fd(int fd)
{
	struct vmm_netdev nd = {0};
	snprintf(nd.id, sizeof(nd.id), "net0");
	nd.fds[0] = fd;
	nd.n_fds = 1;
	nd.queues = 1;
	nd.vhostfd = -1;
	return nd;
}

static const struct vmm_net_device test_dev = {.id = "nic0", .netdev = "net0"};

UNIT_TEST(test_net_fd_that_is_not_a_tap_is_refused_by_number)
{
	int p[2];
	UNIT_ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	struct vmm_netdev nd = netdev_fd(p[0]);
	struct perr err = {0};
	struct virtio_dev *dev = NULL;
	int ret = virtio_net_create(&nd, &test_dev, "vm", &dev, &err);
	close(p[1]);
	UNIT_ASSERT(ret < 0);
	char want[64];
	snprintf(want, sizeof(want), "-netdev net0: fd=%d: not a tap device", p[0]);
	UNIT_ASSERT_CONTAINS(err.msg, want);

	nd = netdev_fd(1000);
	ret = virtio_net_create(&nd, &test_dev, "vm", &dev, &err);
	UNIT_ASSERT(ret < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "-netdev net0: fd=1000: Bad file descriptor");
}

UNIT_TEST(test_net_bad_vhostfd_is_a_start_error)
{
	struct vmm_netdev nd = netdev_fd(-1);
	nd.vhost = true;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	UNIT_ASSERT(devnull >= 0);
	nd.vhostfd = devnull;
	struct perr err = {0};
	struct virtio_dev *dev = NULL;
	int ret = virtio_net_create(&nd, &test_dev, "vm", &dev, &err);
	close(devnull);
	UNIT_ASSERT(ret < 0);
	char want[64];
	snprintf(want, sizeof(want), "-netdev net0: vhostfd=%d: not a vhost device", devnull);
	UNIT_ASSERT_CONTAINS(err.msg, want);

	int p[2];
	UNIT_ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	nd.vhostfd = p[0];
	ret = virtio_net_create(&nd, &test_dev, "vm", &dev, &err);
	close(p[0]);
	close(p[1]);
	UNIT_ASSERT(ret < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "not a character device");

	nd.vhostfd = 999;
	ret = virtio_net_create(&nd, &test_dev, "vm", &dev, &err);
	UNIT_ASSERT(ret < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "-netdev net0: vhostfd=999: Bad file descriptor");
}

UNIT_TEST(test_net_queues_needs_one_fd_per_pair)
{
	int sv[2];
	UNIT_ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	struct vmm_netdev nd = netdev_fd(sv[0]);
	nd.queues = 2;
	struct perr err = {0};
	struct virtio_dev *dev = NULL;
	UNIT_ASSERT(virtio_net_create(&nd, &test_dev, "vm", &dev, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "-netdev net0: queues=2 needs 2 tap queue fds");
	/* The fd was handed over and closed with the failure. */
	UNIT_ASSERT(fcntl(sv[0], F_GETFD) < 0);
	close(sv[1]);
}

UNIT_TEST(test_net_one_vhostfd_for_several_pairs_is_refused)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	UNIT_ASSERT(devnull >= 0);
	struct vmm_netdev nd = netdev_fd(-1);
	nd.queues = 2;
	nd.vhost = true;
	nd.vhostfd = devnull;
	struct perr err = {0};
	struct virtio_dev *dev = NULL;
	UNIT_ASSERT(virtio_net_create(&nd, &test_dev, "vm", &dev, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "queues=2 needs one per queue pair");
}

/* Multiqueue (§5.1.5, §5.1.6.5.5): two pairs over two socketpairs. Queues
 * 0/1 are pair 0, 2/3 pair 1, 4 the control queue. */
#define MQ_PAIRS  2
#define MQ_CTRLQ  (2 * MQ_PAIRS)
#define F_CTRL_VQ 17
#define F_MQ	  22

struct mq_fixture {
	struct fake_guest g;
	struct bus bus;
	struct virtio_mmio *t;
	struct fake_vring vr[MQ_CTRLQ + 1];
	unsigned next[MQ_CTRLQ + 1];
	int peer[MQ_PAIRS];
	int irqs;
	uint64_t offered;
};

static struct mq_fixture mq;

static void mq_driver_init(uint64_t drop)
{
	mq.offered = fake_mmio_negotiate(&mq.bus, ~drop);
	bool has_mq = (mq.offered & ~drop) & (1ull << F_MQ);
	/* Without MQ the control queue is queue 2 (§5.1.2). */
	unsigned n = has_mq ? MQ_CTRLQ + 1 : 3;
	for (unsigned i = 0; i < n; i++) {
		mq.next[i] = 0;
		fake_mmio_setup_queue(&mq.bus, i, &mq.vr[i], &mq.g, QSIZE,
				      FAKE_RAM_GPA + 0x1000 + 0x2000ull * i);
	}
	fake_mmio_driver_ok(&mq.bus);
}

static int mq_setup(uint64_t drop)
{
	log_set_level(LOG_ERROR);
	memset(&mq, 0, sizeof(mq));
	if (fake_guest_init(&mq.g, RAM_SIZE) < 0)
		return -1;
	bus_init(&mq.bus);
	int fds[MQ_PAIRS];
	for (unsigned i = 0; i < MQ_PAIRS; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
			return -1;
		fds[i] = sv[0];
		mq.peer[i] = sv[1];
	}
	struct vmm_net_device dev = {0};
	snprintf(dev.id, sizeof(dev.id), "nic0");
	snprintf(dev.netdev, sizeof(dev.netdev), "net0");
	struct perr err = {0};
	struct virtio_dev *vdev;
	int ret =
	    virtio_net_create_on_fds(fds, MQ_PAIRS, false, "sock", &dev, test_mac, &vdev, &err);
	if (ret < 0)
		return ret;
	ret = fake_mmio_attach(&mq.g, &mq.bus, NULL, vdev, &mq.irqs, &mq.t, &err);
	if (ret < 0)
		return ret;
	mq_driver_init(drop);
	return 0;
}

static void mq_teardown(void)
{
	virtio_mmio_detach(mq.t);
	bus_destroy(&mq.bus);
	fake_guest_free(&mq.g);
	for (unsigned i = 0; i < MQ_PAIRS; i++)
		close(mq.peer[i]);
}

/* Sends one control command (readable bytes cmd[0, len), then `ack_len`
 * writable bytes) on queue q and returns the ack byte (VIRTIO_NET_OK 0,
 * VIRTIO_NET_ERR 1), or -1 when the device wrote none. */
static int mq_ctrl(unsigned q, const uint8_t *cmd, uint32_t len, uint32_t ack_len)
{
	uint64_t cmd_gpa = BUFS + 0x40000, ack_gpa = BUFS + 0x41000;
	if (len)
		memcpy(fake_ptr(&mq.g, cmd_gpa), cmd, len);
	*(uint8_t *)fake_ptr(&mq.g, ack_gpa) = 0xee;
	struct buf b[2];
	unsigned n = 0;
	if (len)
		b[n++] = (struct buf){cmd_gpa, len, false};
	if (ack_len)
		b[n++] = (struct buf){ack_gpa, ack_len, true};
	uint16_t before = fake_used_idx(&mq.vr[q]);
	add_chain(&mq.vr[q], &mq.next[q], b, n);
	fake_mmio_write(&mq.bus, 0x050, q);
	if (fake_used_idx(&mq.vr[q]) != (uint16_t)(before + 1))
		return -2; /* not answered at all */
	if (fake_used_len(&mq.vr[q], before) == 0)
		return -1;
	return *(uint8_t *)fake_ptr(&mq.g, ack_gpa);
}

static int mq_set_pairs(unsigned q, uint16_t pairs)
{
	uint8_t cmd[4] = {4, 0, (uint8_t)pairs, (uint8_t)(pairs >> 8)};
	return mq_ctrl(q, cmd, sizeof(cmd), 1);
}

/* One frame from the host on pair p's "tap"; a receive buffer on pair p;
 * QueueNotify; returns how many frames pair p delivered in total. */
static uint16_t mq_rx_one(unsigned p, uint8_t seed)
{
	static uint8_t frame[HDR_LEN + 100];
	memset(frame, seed, sizeof(frame));
	memset(frame, 0, HDR_LEN);
	if (send(mq.peer[p], frame, sizeof(frame), 0) != (ssize_t)sizeof(frame))
		return 0xffff;
	struct buf b[] = {{BUFS + 0x10000ull * p + 0x1000ull * mq.next[2 * p], 2048, true}};
	add_chain(&mq.vr[2 * p], &mq.next[2 * p], b, 1);
	fake_mmio_write(&mq.bus, 0x050, 2 * p);
	return fake_used_idx(&mq.vr[2 * p]);
}

UNIT_TEST(test_net_mq_offers_ctrl_vq_mq_and_max_pairs)
{
	UNIT_ASSERT_EQ(mq_setup(0), 0);
	UNIT_ASSERT(mq.offered & (1ull << F_CTRL_VQ));
	UNIT_ASSERT(mq.offered & (1ull << F_MQ));
	uint16_t max_pairs = 0;
	bus_read(&mq.bus, BASE + 0x100 + 8, &max_pairs, 2);
	UNIT_ASSERT_EQ(max_pairs, MQ_PAIRS);
	/* 2 * pairs + 1 queues: the control queue exists, the one after not. */
	fake_mmio_write(&mq.bus, 0x030, MQ_CTRLQ);
	UNIT_ASSERT(fake_mmio_read(&mq.bus, 0x034) > 0);
	fake_mmio_write(&mq.bus, 0x030, MQ_CTRLQ + 1);
	UNIT_ASSERT_EQ(fake_mmio_read(&mq.bus, 0x034), 0);
	UNIT_ASSERT_EQ(fake_mmio_read(&mq.bus, 0x070), 15);
	mq_teardown();
}

UNIT_TEST(test_net_mq_second_pair_idle_until_vq_pairs_set)
{
	UNIT_ASSERT_EQ(mq_setup(0), 0);
	/* §5.1.6.5.5: receiveq1 only before VQ_PAIRS_SET. */
	UNIT_ASSERT_EQ(mq_rx_one(1, 0x11), 0);
	memset(fake_ptr(&mq.g, BUFS + 0x30000), 0, HDR_LEN + 100);
	struct buf tb[] = {{BUFS + 0x30000, HDR_LEN + 100, false}};
	add_chain(&mq.vr[3], &mq.next[3], tb, 1);
	fake_mmio_write(&mq.bus, 0x050, 3);
	UNIT_ASSERT_EQ(fake_used_idx(&mq.vr[3]), 0);
	uint8_t got[256];
	UNIT_ASSERT_EQ(recv(mq.peer[1], got, sizeof(got), MSG_DONTWAIT), -1);
	/* Pair 0 works meanwhile. */
	UNIT_ASSERT_EQ(mq_rx_one(0, 0x22), 1);

	UNIT_ASSERT_EQ(mq_set_pairs(MQ_CTRLQ, 2), 0); /* VIRTIO_NET_OK */
	/* The waiting frame, then the transmit chain left in the ring. */
	fake_mmio_write(&mq.bus, 0x050, 2);
	UNIT_ASSERT_EQ(fake_used_idx(&mq.vr[2]), 1);
	UNIT_ASSERT_EQ(fake_used_len(&mq.vr[2], 0), HDR_LEN + 100);
	UNIT_ASSERT_EQ(*(uint8_t *)fake_ptr(&mq.g, BUFS + 0x10000 + HDR_LEN), 0x11);
	fake_mmio_write(&mq.bus, 0x050, 3);
	UNIT_ASSERT_EQ(fake_used_idx(&mq.vr[3]), 1);
	UNIT_ASSERT_EQ(recv(mq.peer[1], got, sizeof(got), MSG_DONTWAIT), HDR_LEN + 100);
	UNIT_ASSERT_EQ(recv(mq.peer[0], got, sizeof(got), MSG_DONTWAIT), -1);

	/* Back to one pair: pair 1 is idle again. */
	UNIT_ASSERT_EQ(mq_set_pairs(MQ_CTRLQ, 1), 0);
	UNIT_ASSERT_EQ(mq_rx_one(1, 0x33), 1);
	UNIT_ASSERT_EQ(fake_mmio_read(&mq.bus, 0x070), 15);
	mq_teardown();
}

UNIT_TEST(test_net_ctrl_vq_pairs_set_out_of_range_is_refused)
{
	UNIT_ASSERT_EQ(mq_setup(0), 0);
	UNIT_ASSERT_EQ(mq_set_pairs(MQ_CTRLQ, 0), 1);		 /* below MIN */
	UNIT_ASSERT_EQ(mq_set_pairs(MQ_CTRLQ, MQ_PAIRS + 1), 1); /* above max_virtqueue_pairs */
	UNIT_ASSERT_EQ(mq_set_pairs(MQ_CTRLQ, 0x8001), 1);	 /* above MAX */
	UNIT_ASSERT_EQ(mq_set_pairs(MQ_CTRLQ, 0xffff), 1);
	/* Nothing changed: pair 1 is still idle. */
	UNIT_ASSERT_EQ(mq_rx_one(1, 0x44), 0);
	UNIT_ASSERT_EQ(fake_mmio_read(&mq.bus, 0x070), 15);
	mq_teardown();
}

UNIT_TEST(test_net_ctrl_malformed_commands_get_err_not_a_crash)
{
	UNIT_ASSERT_EQ(mq_setup(0), 0);
	uint8_t one[1] = {4};
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, one, 1, 1), 1); /* no command byte */
	uint8_t short_data[3] = {4, 0, 2};
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, short_data, 3, 1), 1); /* 1 byte of pair count */
	uint8_t long_data[5] = {4, 0, 2, 0, 0};
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, long_data, 5, 1), 1);
	uint8_t rx_class[3] = {0, 0, 1}; /* VIRTIO_NET_CTRL_RX: not offered */
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, rx_class, 3, 1), 1);
	uint8_t rss[4] = {4, 1, 0, 0}; /* MQ_RSS_CONFIG: not offered */
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, rss, 4, 1), 1);
	uint8_t unknown[2] = {0xff, 0xff};
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, unknown, 2, 1), 1);
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, NULL, 0, 1), 1); /* only the ack byte */
	/* No writable byte: nothing to answer in, the chain still comes back. */
	uint8_t good[4] = {4, 0, 2, 0};
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, good, 4, 0), -1);
	UNIT_ASSERT_EQ(mq_rx_one(1, 0x55), 0); /* and it was not applied */
	/* A larger ack buffer gets one byte. */
	UNIT_ASSERT_EQ(mq_ctrl(MQ_CTRLQ, good, 4, 16), 0);
	UNIT_ASSERT_EQ(fake_used_len(&mq.vr[MQ_CTRLQ], fake_used_idx(&mq.vr[MQ_CTRLQ]) - 1), 1);
	UNIT_ASSERT_EQ(fake_mmio_read(&mq.bus, 0x070), 15);
	mq_teardown();
}

UNIT_TEST(test_net_ctrl_vq_without_mq_sits_at_queue_2_and_refuses_pairs)
{
	UNIT_ASSERT_EQ(mq_setup(1ull << F_MQ), 0);
	/* §5.1.2: without MQ the control queue is queue 2; VQ_PAIRS_SET needs MQ. */
	UNIT_ASSERT_EQ(mq_set_pairs(2, 2), 1);
	UNIT_ASSERT_EQ(mq_rx_one(0, 0x66), 1);
	UNIT_ASSERT_EQ(fake_mmio_read(&mq.bus, 0x070), 15);
	mq_teardown();
}

UNIT_TEST(test_net_mq_reset_goes_back_to_one_pair)
{
	UNIT_ASSERT_EQ(mq_setup(0), 0);
	UNIT_ASSERT_EQ(mq_set_pairs(MQ_CTRLQ, 2), 0);
	mq_driver_init(0); /* reset and a new driver, which sends no VQ_PAIRS_SET */
	UNIT_ASSERT_EQ(mq_rx_one(1, 0x77), 0);
	UNIT_ASSERT_EQ(mq_rx_one(0, 0x78), 1);
	mq_teardown();
}

/* A tap queue fd with the given flags, or -1 (no CAP_NET_ADMIN or no tun). */
static int open_tap(const char *name, short flags)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = flags;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

UNIT_TEST(test_net_real_tap_by_fd_and_by_name)
{
	char name[IFNAMSIZ];
	snprintf(name, sizeof(name), "ptn%d", (int)getpid() % 100000);
	int fd = open_tap(name, IFF_TAP | IFF_NO_PI);
	if (fd < 0)
		UNIT_SKIP("cannot create a tap here (needs CAP_NET_ADMIN and /dev/net/tun)");
	/* Without IFF_VNET_HDR: refused, naming the fd and the flag. */
	struct vmm_netdev nd = netdev_fd(fd);
	struct perr err = {0};
	struct virtio_dev *dev = NULL;
	int ret = virtio_net_create(&nd, &test_dev, "vm", &dev, &err);
	UNIT_ASSERT(ret < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "without IFF_VNET_HDR");
	UNIT_ASSERT_CONTAINS(err.msg, name);
	/* (the fd was closed with the failure: it was handed over) */

	fd = open_tap(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	UNIT_ASSERT(fd >= 0);
	nd = netdev_fd(fd);
	ret = virtio_net_create(&nd, &test_dev, "vm", &dev, &err);
	UNIT_ASSERT_EQ(ret, 0);
	UNIT_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	UNIT_ASSERT(fcntl(fd, F_GETFL) & O_NONBLOCK);
	dev->ops->destroy(dev);

	/* ifname=: a non-persistent tap is gone with its last fd; opening by
	 * name creates a fresh one. */
	memset(&nd, 0, sizeof(nd));
	snprintf(nd.id, sizeof(nd.id), "net0");
	snprintf(nd.ifname, sizeof(nd.ifname), "%s", name);
	nd.queues = 1;
	nd.vhostfd = -1;
	ret = virtio_net_create(&nd, &test_dev, "vm", &dev, &err);
	UNIT_ASSERT_EQ(ret, 0);
	/* A second opener of the same single-queue tap is refused by name. */
	struct virtio_dev *dev2 = NULL;
	ret = virtio_net_create(&nd, &test_dev, "vm", &dev2, &err);
	dev->ops->destroy(dev);
	UNIT_ASSERT(ret < 0);
	char want[64];
	snprintf(want, sizeof(want), "-netdev net0: open tap '%s'", name);
	UNIT_ASSERT_CONTAINS(err.msg, want);
}

UNIT_TEST(test_net_multiqueue_tap_by_name_and_by_fds)
{
	char name[IFNAMSIZ], other[IFNAMSIZ];
	snprintf(name, sizeof(name), "ptm%d", (int)getpid() % 100000);
	snprintf(other, sizeof(other), "ptn%d", (int)getpid() % 100000);
	short mq_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
	int a = open_tap(name, mq_flags);
	if (a < 0)
		UNIT_SKIP("cannot create a tap here (needs CAP_NET_ADMIN and /dev/net/tun)");
	int b = open_tap(name, mq_flags);
	UNIT_ASSERT(b >= 0);
	struct vmm_netdev nd = netdev_fd(a);
	nd.fds[1] = b;
	nd.n_fds = 2;
	nd.queues = 2;
	struct perr err = {0};
	struct virtio_dev *dev = NULL;
	UNIT_ASSERT_EQ(virtio_net_create(&nd, &test_dev, "vm", &dev, &err), 0);
	/* Queue 1 waits detached until the guest asks for two pairs. */
	struct ifreq ifr = {.ifr_flags = IFF_DETACH_QUEUE};
	UNIT_ASSERT(ioctl(b, TUNSETQUEUE, &ifr) < 0 && errno == EINVAL); /* already */
	dev->ops->destroy(dev);

	/* By name: both queues opened with IFF_MULTI_QUEUE. */
	memset(&nd, 0, sizeof(nd));
	snprintf(nd.id, sizeof(nd.id), "net0");
	snprintf(nd.ifname, sizeof(nd.ifname), "%s", name);
	nd.queues = 2;
	nd.vhostfd = -1;
	UNIT_ASSERT_EQ(virtio_net_create(&nd, &test_dev, "vm", &dev, &err), 0);
	dev->ops->destroy(dev);

	/* A single-queue tap of that name cannot give two queues. */
	int single = open_tap(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	UNIT_ASSERT(single >= 0);
	UNIT_ASSERT(virtio_net_create(&nd, &test_dev, "vm", &dev, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "with IFF_MULTI_QUEUE");
	close(single);

	/* fds= of two different taps. */
	a = open_tap(name, mq_flags);
	b = open_tap(other, mq_flags);
	UNIT_ASSERT(a >= 0 && b >= 0);
	nd = netdev_fd(a);
	nd.fds[1] = b;
	nd.n_fds = 2;
	nd.queues = 2;
	UNIT_ASSERT(virtio_net_create(&nd, &test_dev, "vm", &dev, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "takes the queues of one tap");
	UNIT_ASSERT(fcntl(a, F_GETFD) < 0 && fcntl(b, F_GETFD) < 0); /* both closed */
}

UNIT_MAIN("virtio_net")
