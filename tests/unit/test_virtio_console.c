/* virtio-console (virtio 1.2 §5.3), one port, over a unix socket chardev and a real event loop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/chardev.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/virtio/console.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "../../vmm/virtio/virtqueue.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define RAM_SIZE (1u << 20)
#define RX_RING	 (FAKE_RAM_GPA + 0x1000)
#define TX_RING	 (FAKE_RAM_GPA + 0x4000)
#define RX_DATA	 (FAKE_RAM_GPA + 0x10000)
#define TX_DATA	 (FAKE_RAM_GPA + 0x80000)
#define QSIZE	 16

struct fixture {
	struct fake_guest g;
	struct bus bus;
	struct eventloop *loop;
	struct chardev *chr;
	struct virtio_mmio *t;
	struct fake_vring rx, tx;
	int client; /* the host side of the console socket */
	char path[108];
	int irqs;
};

static struct fixture fx;

static void driver_init(void)
{
	fake_mmio_negotiate(&fx.bus, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	fake_mmio_setup_queue(&fx.bus, 0, &fx.rx, &fx.g, QSIZE, RX_RING);
	fake_mmio_setup_queue(&fx.bus, 1, &fx.tx, &fx.g, QSIZE, TX_RING);
	fake_mmio_driver_ok(&fx.bus);
}

static int fixture_setup(bool init_driver)
{
	static bool quiet;
	if (!quiet) {
		log_set_file("/dev/null"); /* connects and refusals are logged */
		quiet = true;
	}
	memset(&fx, 0, sizeof(fx));
	fx.client = -1;
	if (fake_guest_init(&fx.g, RAM_SIZE) < 0 || eventloop_create(&fx.loop) < 0)
		return -1;
	bus_init(&fx.bus);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(fx.path, sizeof(fx.path), "%s/petrel-test-con-%d.sock", tmp, (int)getpid());
	struct vmm_chardev cc = {.backend = VMM_CHARDEV_SOCKET, .server = true, .nowait = true};
	snprintf(cc.id, sizeof(cc.id), "con0");
	snprintf(cc.path, sizeof(cc.path), "%s", fx.path);
	struct perr err = {0};
	if (chardev_create(&cc, "con0", fx.loop, &fx.chr, &err) < 0)
		return -1;
	fx.client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx.path);
	if (connect(fx.client, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	fake_run_loop_ms(fx.loop, 20); /* accept */

	struct vmm_virtio_serial ser = {.present = true, .console_present = true};
	snprintf(ser.console_id, sizeof(ser.console_id), "console0");
	snprintf(ser.console_chardev, sizeof(ser.console_chardev), "con0");
	struct virtio_dev *vdev;
	if (virtio_console_create(&ser, fx.chr, &vdev, &err) < 0)
		return -1;
	if (fake_mmio_attach(&fx.g, &fx.bus, fx.loop, vdev, &fx.irqs, &fx.t, &err) < 0)
		return -1;
	if (init_driver)
		driver_init();
	return 0;
}

static void fixture_teardown(void)
{
	virtio_mmio_detach(fx.t);
	chardev_destroy(fx.chr);
	if (fx.client >= 0)
		close(fx.client);
	eventloop_destroy(fx.loop);
	bus_destroy(&fx.bus);
	fake_guest_free(&fx.g);
}

/* Posts receive buffer `slot` (len bytes at RX_DATA + slot * 0x1000). */
static void post_rx(unsigned slot, uint32_t len)
{
	memset(fake_ptr(&fx.g, RX_DATA + slot * 0x1000ull), 0, len);
	fake_desc(&fx.rx, slot, RX_DATA + slot * 0x1000ull, len, VIRTQ_DESC_F_WRITE, 0);
	fake_avail_push(&fx.rx, (uint16_t)slot);
	fake_mmio_write(&fx.bus, 0x050, 0);
}

static void send_tx(unsigned slot, const char *text)
{
	size_t len = strlen(text);
	memcpy(fake_ptr(&fx.g, TX_DATA + slot * 0x1000ull), text, len);
	fake_desc(&fx.tx, slot, TX_DATA + slot * 0x1000ull, (uint32_t)len, 0, 0);
	fake_avail_push(&fx.tx, (uint16_t)slot);
	fake_mmio_write(&fx.bus, 0x050, 1);
}

/* What the host side of the socket received within the timeout. */
static size_t client_read(char *buf, size_t cap, int timeout_ms)
{
	size_t got = 0;
	struct pollfd pfd = {.fd = fx.client, .events = POLLIN};
	while (got < cap && poll(&pfd, 1, timeout_ms) > 0) {
		ssize_t n = read(fx.client, buf + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		timeout_ms = 20;
	}
	return got;
}

UNIT_TEST(test_console_is_device_3_with_two_queues_and_no_multiport)
{
	UNIT_ASSERT_EQ(fixture_setup(true), 0);
	UNIT_ASSERT_EQ(fake_mmio_read(&fx.bus, 0x008), 3);
	fake_mmio_write(&fx.bus, 0x014, 0);
	UNIT_ASSERT_EQ(fake_mmio_read(&fx.bus, 0x010) & 2,
		       0); /* VIRTIO_CONSOLE_F_MULTIPORT not offered */
	UNIT_ASSERT_EQ(fake_mmio_read(&fx.bus, 0x070), 15);
	fake_mmio_write(&fx.bus, 0x030, 2);
	UNIT_ASSERT_EQ(fake_mmio_read(&fx.bus, 0x034), 0);
	fixture_teardown();
}

UNIT_TEST(test_console_guest_output_reaches_the_chardev)
{
	UNIT_ASSERT_EQ(fixture_setup(true), 0);
	send_tx(0, "hello from hvc0\n");
	fake_run_loop_ms(fx.loop, 30);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.tx), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.tx, 0), 0);
	char buf[64] = {0};
	UNIT_ASSERT_EQ(client_read(buf, sizeof(buf) - 1, 500), 16);
	UNIT_ASSERT_STREQ(buf, "hello from hvc0\n");
	send_tx(1, "second");
	fake_run_loop_ms(fx.loop, 30);
	memset(buf, 0, sizeof(buf));
	UNIT_ASSERT_EQ(client_read(buf, sizeof(buf) - 1, 500), 6);
	UNIT_ASSERT_STREQ(buf, "second");
	fixture_teardown();
}

UNIT_TEST(test_console_host_input_fills_guest_receive_buffers)
{
	UNIT_ASSERT_EQ(fixture_setup(true), 0);
	post_rx(0, 8);
	post_rx(1, 8);
	fake_run_loop_ms(fx.loop, 10);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 0); /* nothing to give yet */
	UNIT_ASSERT_EQ(write(fx.client, "0123456789AB", 12), 12);
	fake_run_loop_ms(fx.loop, 50);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 2);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 0), 8);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 1), 4);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, RX_DATA), "01234567", 8) == 0);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, RX_DATA + 0x1000), "89AB", 4) == 0);
	UNIT_ASSERT(fx.irqs > 0);
	fixture_teardown();
}

UNIT_TEST(test_console_input_before_the_driver_is_kept_until_buffers_arrive)
{
	UNIT_ASSERT_EQ(fixture_setup(false), 0);
	UNIT_ASSERT_EQ(write(fx.client, "early\n", 6), 6);
	fake_run_loop_ms(fx.loop, 30);
	driver_init();
	fake_run_loop_ms(fx.loop, 20);
	post_rx(0, 64);
	fake_run_loop_ms(fx.loop, 30);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 0), 6);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, RX_DATA), "early\n", 6) == 0);
	fixture_teardown();
}

/* More input than the device buffers: the chardev stops reading, nothing is lost. */
UNIT_TEST(test_console_flow_control_loses_no_input)
{
	enum { TOTAL = 3 * VIRTIO_CONSOLE_RX_BUFFER + 123, CHUNK = 4096 };
	UNIT_ASSERT_EQ(fixture_setup(true), 0);
	static uint8_t sent[TOTAL], got[TOTAL];
	for (unsigned i = 0; i < TOTAL; i++)
		sent[i] = (uint8_t)(i * 7 + i / 251);
	int fl = fcntl(fx.client, F_GETFL);
	fcntl(fx.client, F_SETFL, fl | O_NONBLOCK);
	size_t written = 0, received = 0;
	uint16_t seen = 0;
	for (int round = 0; round < 200 && received < TOTAL; round++) {
		if (written < TOTAL) {
			ssize_t n = write(fx.client, sent + written, TOTAL - written);
			if (n > 0)
				written += (size_t)n;
		}
		fake_run_loop_ms(fx.loop, 5);
		/* One receive buffer per round, reused once the device returned it. */
		unsigned slot = (unsigned)(round % QSIZE);
		if (fake_used_idx(&fx.rx) == (uint16_t)(fx.rx.avail_idx))
			post_rx(slot, CHUNK);
		fake_run_loop_ms(fx.loop, 5);
		while (seen != fake_used_idx(&fx.rx)) {
			uint32_t id = fake_used_id(&fx.rx, seen);
			uint32_t len = fake_used_len(&fx.rx, seen);
			UNIT_ASSERT(received + len <= TOTAL);
			memcpy(got + received, fake_ptr(&fx.g, RX_DATA + id * 0x1000ull), len);
			received += len;
			seen++;
		}
	}
	UNIT_ASSERT_EQ(received, TOTAL);
	UNIT_ASSERT(memcmp(sent, got, TOTAL) == 0);
	fixture_teardown();
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* Input waiting for a guest that never reads: the loop sleeps. */
UNIT_TEST(test_console_full_input_buffer_does_not_spin)
{
	UNIT_ASSERT_EQ(fixture_setup(true), 0);
	static uint8_t junk[3 * VIRTIO_CONSOLE_RX_BUFFER];
	memset(junk, 'x', sizeof(junk));
	int fl = fcntl(fx.client, F_GETFL);
	fcntl(fx.client, F_SETFL, fl | O_NONBLOCK);
	UNIT_ASSERT(write(fx.client, junk, sizeof(junk)) > VIRTIO_CONSOLE_RX_BUFFER);
	fake_run_loop_ms(fx.loop, 20);
	double start = cpu_seconds();
	fake_run_loop_ms(fx.loop, 500);
	double used = cpu_seconds() - start;
	UNIT_ASSERT(used < 0.1);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 0);
	post_rx(0, 16);
	fake_run_loop_ms(fx.loop, 20);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.rx), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.rx, 0), 16);
	fixture_teardown();
}

UNIT_TEST(test_console_missing_chardev_is_refused)
{
	struct vmm_virtio_serial ser = {.present = true, .console_present = true};
	struct virtio_dev *vdev;
	struct perr err = {0};
	UNIT_ASSERT_EQ(virtio_console_create(&ser, NULL, &vdev, &err), -EINVAL);
}

UNIT_MAIN("virtio-console")
