/*
 * virtio-balloon (virtio 1.2 §5.5) through the MMIO transport over mmap'ed
 * guest RAM, and QMP's balloon / query-balloon / BALLOON_CHANGE through a
 * session whose backend drives the device.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/qmp/qmp-internal.h"
#include "../../vmm/qmp/qmp.h"
#include "../../vmm/virtio/balloon.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "../../vmm/virtio/virtqueue.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define RAM_SIZE     (4u << 20)
#define PAGE	     4096u
#define INFLATE_RING (FAKE_RAM_GPA + 0x1000)
#define DEFLATE_RING (FAKE_RAM_GPA + 0x4000)
#define PFN_ARRAY    (FAKE_RAM_GPA + 0x8000)
#define VICTIM	     (FAKE_RAM_GPA + 0x100000) /* pages the guest gives up */
#define QSIZE	     16

#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK    0x064
#define CONFIG_NUM_PAGES     0x100
#define CONFIG_ACTUAL	     0x104

struct fixture {
	struct fake_guest g;
	struct bus bus;
	struct eventloop *loop;
	struct virtio_mmio *t;
	struct virtio_dev *dev;
	struct fake_vring inflate, deflate;
	uint64_t offered;
	int irqs;
	int changes;
	uint64_t last_change;
};

static struct fixture fx;

static void on_change(void *opaque, uint64_t actual_bytes)
{
	struct fixture *f = opaque;
	f->changes++;
	f->last_change = actual_bytes;
}

static uint32_t rd(uint64_t off)
{
	return fake_mmio_read(&fx.bus, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_write(&fx.bus, off, v);
}

static void driver_init(void)
{
	fx.offered = fake_mmio_negotiate(&fx.bus, ~0ull);
	fake_mmio_setup_queue(&fx.bus, 0, &fx.inflate, &fx.g, QSIZE, INFLATE_RING);
	fake_mmio_setup_queue(&fx.bus, 1, &fx.deflate, &fx.g, QSIZE, DEFLATE_RING);
	fake_mmio_driver_ok(&fx.bus);
}

/* RAM from mmap, page-aligned as a VM's is (calloc'ed RAM is not). */
static int fixture_setup(bool deflate_on_oom, bool shared_ram, bool with_loop)
{
	static bool quiet;
	if (!quiet) {
		log_set_file("/dev/null"); /* bad PFNs are logged on purpose */
		quiet = true;
	}
	memset(&fx, 0, sizeof(fx));
	void *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
			 MAP_ANONYMOUS | (shared_ram ? MAP_SHARED : MAP_PRIVATE), -1, 0);
	if (ram == MAP_FAILED)
		return -1;
	fx.g.ram = ram;
	fx.g.size = RAM_SIZE;
	if (guest_mem_add_region(&fx.g.mem, FAKE_RAM_GPA, RAM_SIZE, ram) < 0)
		return -1;
	bus_init(&fx.bus);
	if (with_loop && eventloop_create(&fx.loop) < 0)
		return -1;
	struct vmm_balloon cfg = {.present = true, .deflate_on_oom = deflate_on_oom};
	snprintf(cfg.id, sizeof(cfg.id), "balloon0");
	struct perr err = {0};
	if (virtio_balloon_create(&cfg, RAM_SIZE, &fx.dev, &err) < 0)
		return -1;
	virtio_balloon_set_change_hook(fx.dev, on_change, &fx);
	if (fake_mmio_attach(&fx.g, &fx.bus, fx.loop, fx.dev, &fx.irqs, &fx.t, &err) < 0)
		return -1;
	driver_init();
	return 0;
}

static void fixture_teardown(void)
{
	virtio_mmio_detach(fx.t);
	eventloop_destroy(fx.loop);
	bus_destroy(&fx.bus);
	munmap(fx.g.ram, RAM_SIZE);
}

/* The driver puts n PFNs in the balloon (one buffer), or takes them out. */
static void balloon_pages(struct fake_vring *vr, unsigned queue, const uint32_t *pfns, unsigned n)
{
	memcpy(fake_ptr(&fx.g, PFN_ARRAY), pfns, n * sizeof(uint32_t));
	fake_desc(vr, 0, PFN_ARRAY, n * (uint32_t)sizeof(uint32_t), 0, 0);
	fake_avail_push(vr, 0);
	wr(0x050, queue);
}

static uint32_t pfn_of(uint64_t gpa)
{
	return (uint32_t)(gpa / PAGE);
}

static bool page_is(uint64_t gpa, uint8_t byte)
{
	const uint8_t *p = fake_ptr(&fx.g, gpa);
	for (unsigned i = 0; i < PAGE; i++)
		if (p[i] != byte)
			return false;
	return true;
}

UNIT_TEST(test_balloon_is_device_5_with_deflate_on_oom_only_when_asked)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, false), 0);
	UNIT_ASSERT_EQ(rd(0x008), 5);
	UNIT_ASSERT_EQ(fx.offered & (1u << 2), 0);
	UNIT_ASSERT_EQ(rd(0x070), 15);
	UNIT_ASSERT_EQ(rd(CONFIG_NUM_PAGES), 0);
	UNIT_ASSERT_EQ(rd(CONFIG_ACTUAL), 0);
	fixture_teardown();

	UNIT_ASSERT_EQ(fixture_setup(true, false, false), 0);
	UNIT_ASSERT(fx.offered & (1u << 2)); /* VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	UNIT_ASSERT_EQ(fx.offered & 1u, 0);  /* no MUST_TELL_HOST */
	UNIT_ASSERT_EQ(rd(0x070), 15);
	fixture_teardown();
}

UNIT_TEST(test_balloon_target_sets_num_pages_and_signals_a_config_change)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, false), 0);
	struct perr err = {0};
	int irqs = fx.irqs;
	UNIT_ASSERT_EQ(virtio_balloon_set_target(fx.dev, RAM_SIZE - 10 * PAGE, &err), 0);
	UNIT_ASSERT_EQ(rd(CONFIG_NUM_PAGES), 10);
	UNIT_ASSERT(rd(REG_INTERRUPT_STATUS) & 2); /* configuration change */
	UNIT_ASSERT(fx.irqs > irqs);
	/* Not a whole page: the balloon is rounded down. */
	UNIT_ASSERT_EQ(virtio_balloon_set_target(fx.dev, RAM_SIZE - PAGE - 100, &err), 0);
	UNIT_ASSERT_EQ(rd(CONFIG_NUM_PAGES), 1);
	UNIT_ASSERT_EQ(virtio_balloon_set_target(fx.dev, RAM_SIZE, &err), 0);
	UNIT_ASSERT_EQ(rd(CONFIG_NUM_PAGES), 0);
	UNIT_ASSERT_EQ(virtio_balloon_set_target(fx.dev, RAM_SIZE + 1, &err), -ERANGE);
	UNIT_ASSERT_CONTAINS(err.msg, "[1, 4194304]");
	UNIT_ASSERT_EQ(virtio_balloon_set_target(fx.dev, 0, &err), -ERANGE);
	/* The driver cannot change num_pages. */
	wr(CONFIG_NUM_PAGES, 77);
	UNIT_ASSERT_EQ(rd(CONFIG_NUM_PAGES), 0);
	fixture_teardown();
}

UNIT_TEST(test_balloon_inflated_pages_read_zero_afterwards)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, false), 0);
	memset(fake_ptr(&fx.g, VICTIM), 0xaa, 4 * PAGE);
	/* Two adjacent pages (one madvise), and one apart; VICTIM + PAGE stays. */
	uint32_t pfns[] = {pfn_of(VICTIM + 2 * PAGE), pfn_of(VICTIM + 3 * PAGE), pfn_of(VICTIM)};
	balloon_pages(&fx.inflate, 0, pfns, 3);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.inflate), 1);
	UNIT_ASSERT(page_is(VICTIM, 0));
	UNIT_ASSERT(page_is(VICTIM + PAGE, 0xaa));
	UNIT_ASSERT(page_is(VICTIM + 2 * PAGE, 0));
	UNIT_ASSERT(page_is(VICTIM + 3 * PAGE, 0));
	/* Deflating gives them back as they are: zeros, writable. */
	balloon_pages(&fx.deflate, 1, pfns, 3);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.deflate), 1);
	memset(fake_ptr(&fx.g, VICTIM), 0x55, PAGE);
	UNIT_ASSERT(page_is(VICTIM, 0x55));
	fixture_teardown();
}

UNIT_TEST(test_balloon_discards_shared_ram_too)
{
	UNIT_ASSERT_EQ(fixture_setup(false, true, false), 0);
	memset(fake_ptr(&fx.g, VICTIM), 0xaa, 2 * PAGE);
	uint32_t pfns[] = {pfn_of(VICTIM + PAGE)};
	balloon_pages(&fx.inflate, 0, pfns, 1);
	UNIT_ASSERT(page_is(VICTIM, 0xaa));
	UNIT_ASSERT(page_is(VICTIM + PAGE, 0));
	fixture_teardown();
}

UNIT_TEST(test_balloon_ignores_pfns_outside_guest_ram)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, false), 0);
	memset(fake_ptr(&fx.g, VICTIM), 0xaa, PAGE);
	memset(fake_ptr(&fx.g, FAKE_RAM_GPA + RAM_SIZE - PAGE), 0xbb, PAGE);
	uint32_t pfns[] = {
	    0,						/* below RAM */
	    pfn_of(FAKE_RAM_GPA) - 1,			/* the page before RAM */
	    pfn_of(FAKE_RAM_GPA + RAM_SIZE),		/* the page after RAM */
	    0xffffffffu,				/* far beyond */
	    pfn_of(VICTIM),				/* the one valid page */
	    pfn_of(FAKE_RAM_GPA + RAM_SIZE - PAGE) + 1, /* just past the end */
	};
	balloon_pages(&fx.inflate, 0, pfns, 6);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.inflate), 1);
	UNIT_ASSERT(page_is(VICTIM, 0));
	UNIT_ASSERT(page_is(FAKE_RAM_GPA + RAM_SIZE - PAGE, 0xbb));
	UNIT_ASSERT_EQ(rd(0x070), 15); /* no DEVICE_NEEDS_RESET */

	/* A buffer that is not whole PFNs: the whole ones count, the rest is ignored. */
	memset(fake_ptr(&fx.g, VICTIM), 0xaa, PAGE);
	uint32_t one = pfn_of(VICTIM);
	memcpy(fake_ptr(&fx.g, PFN_ARRAY), &one, 4);
	fake_desc(&fx.inflate, 0, PFN_ARRAY, 6, 0, 0);
	fake_avail_push(&fx.inflate, 0);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.inflate), 2);
	UNIT_ASSERT(page_is(VICTIM, 0));
	/* An empty or device-writable buffer is returned without effect. */
	fake_desc(&fx.inflate, 0, PFN_ARRAY, 8, VIRTQ_DESC_F_WRITE, 0);
	fake_avail_push(&fx.inflate, 0);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.inflate), 3);
	UNIT_ASSERT_EQ(rd(0x070), 15);
	fixture_teardown();
}

UNIT_TEST(test_balloon_actual_from_the_guest_is_reported_once_per_change)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, true), 0);
	UNIT_ASSERT_EQ(virtio_balloon_actual_bytes(fx.dev), RAM_SIZE);
	wr(CONFIG_ACTUAL, 16);
	UNIT_ASSERT_EQ(rd(CONFIG_ACTUAL), 16);
	UNIT_ASSERT_EQ(virtio_balloon_actual_bytes(fx.dev), RAM_SIZE - 16 * PAGE);
	UNIT_ASSERT_EQ(fx.changes, 0); /* reported on the loop */
	fake_run_loop_ms(fx.loop, 20);
	UNIT_ASSERT_EQ(fx.changes, 1);
	UNIT_ASSERT_EQ(fx.last_change, RAM_SIZE - 16 * PAGE);
	wr(CONFIG_ACTUAL, 16); /* the same value again: no new report */
	fake_run_loop_ms(fx.loop, VIRTIO_BALLOON_EVENT_INTERVAL_MS + 100);
	UNIT_ASSERT_EQ(fx.changes, 1);
	/* A guest claiming more than RAM cannot make actual negative. */
	wr(CONFIG_ACTUAL, 0xffffffffu);
	fake_run_loop_ms(fx.loop, 20);
	UNIT_ASSERT_EQ(fx.changes, 2);
	UNIT_ASSERT_EQ(fx.last_change, 0);
	fixture_teardown();
}

/* Linux updates actual every 256 pages: a burst makes one report now and
 * one with the final value at the end of the interval. */
UNIT_TEST(test_balloon_change_reports_are_rate_limited_to_the_latest_value)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, true), 0);
	for (uint32_t pages = 32; pages <= 32 * 8; pages += 32) {
		wr(CONFIG_ACTUAL, pages);
		fake_run_loop_ms(fx.loop, 5);
	}
	UNIT_ASSERT_EQ(fx.changes, 1);
	UNIT_ASSERT_EQ(fx.last_change, RAM_SIZE - 32 * PAGE);
	fake_run_loop_ms(fx.loop, VIRTIO_BALLOON_EVENT_INTERVAL_MS + 100);
	UNIT_ASSERT_EQ(fx.changes, 2);
	UNIT_ASSERT_EQ(fx.last_change, RAM_SIZE - 8 * 32 * PAGE);
	/* A reset empties the balloon. */
	wr(0x070, 0);
	fake_run_loop_ms(fx.loop, VIRTIO_BALLOON_EVENT_INTERVAL_MS + 100);
	UNIT_ASSERT_EQ(fx.changes, 3);
	UNIT_ASSERT_EQ(fx.last_change, RAM_SIZE);
	UNIT_ASSERT_EQ(rd(CONFIG_ACTUAL), 0);
	fixture_teardown();
}

/* ---- QMP ---- */

struct qmp_harness {
	struct virtio_dev *balloon; /* NULL: a VM without a balloon */
	struct qmp_session *s;
	char out[8192];
	size_t out_len;
	yajl_val msg;
};

static int qh_write(void *opaque, const void *buf, size_t len)
{
	struct qmp_harness *h = opaque;
	if (h->out_len + len >= sizeof(h->out))
		return -ENOSPC;
	memcpy(h->out + h->out_len, buf, len);
	h->out_len += len;
	h->out[h->out_len] = '\0';
	return 0;
}

static void qh_set_event_hook(void *opaque, vm_event_hook hook, void *hook_opaque)
{
	(void)opaque;
	(void)hook;
	(void)hook_opaque;
}

static enum vm_run_state qh_get_state(void *opaque)
{
	(void)opaque;
	return VM_STATE_RUNNING;
}

static int qh_balloon_query(void *opaque, struct vm_balloon_info *out)
{
	struct qmp_harness *h = opaque;
	if (!h->balloon)
		return -ENODEV;
	out->actual = virtio_balloon_actual_bytes(h->balloon);
	out->ram_size = virtio_balloon_ram_bytes(h->balloon);
	return 0;
}

static int qh_balloon_set_target(void *opaque, uint64_t target, struct perr *err)
{
	struct qmp_harness *h = opaque;
	if (!h->balloon)
		return perr_setx(err, -ENODEV, "No balloon device has been activated");
	return virtio_balloon_set_target(h->balloon, target, err);
}

static const struct qmp_backend qh_backend = {
    .set_event_hook = qh_set_event_hook,
    .get_state = qh_get_state,
    .balloon_query = qh_balloon_query,
    .balloon_set_target = qh_balloon_set_target,
};

/* As the VM does: the balloon's change hook becomes a BALLOON_CHANGE event. */
static void qh_balloon_changed(void *opaque, uint64_t actual)
{
	struct vm_event ev = {.kind = VM_EVENT_BALLOON_CHANGE, .balloon_actual = actual};
	qmp_session_send_event(opaque, &ev, NULL);
}

static void qh_init(struct qmp_harness *h, struct virtio_dev *balloon)
{
	memset(h, 0, sizeof(*h));
	h->balloon = balloon;
	h->s = qmp_session_new(&qh_backend, h, qh_write, h);
	qmp_session_greet(h->s);
	const char *neg = "{\"execute\":\"qmp_capabilities\"}";
	qmp_session_feed(h->s, neg, strlen(neg));
	h->out_len = 0;
}

static void qh_fini(struct qmp_harness *h)
{
	qmp_session_free(h->s);
	yajl_tree_free(h->msg);
}

/* Sends one request and parses the single line it answers. */
static yajl_val qh_exec(struct qmp_harness *h, const char *req)
{
	h->out_len = 0;
	h->out[0] = '\0';
	qmp_session_feed(h->s, req, strlen(req));
	yajl_tree_free(h->msg);
	h->msg = yajl_tree_parse(h->out, NULL, 0);
	return h->msg;
}

static const char *jstr(yajl_val v, const char *a, const char *b)
{
	const char *path[] = {a, b, NULL};
	yajl_val s = yajl_tree_get(v, path, yajl_t_string);
	return s ? s->u.string : "";
}

static long long jint(yajl_val v, const char *a, const char *b)
{
	const char *path[] = {a, b, NULL};
	yajl_val n = yajl_tree_get(v, path, yajl_t_number);
	return n && YAJL_IS_INTEGER(n) ? n->u.number.i : -1;
}

UNIT_TEST(test_qmp_balloon_without_device_is_device_not_active)
{
	struct qmp_harness h;
	qh_init(&h, NULL);
	yajl_val r = qh_exec(&h, "{\"execute\":\"query-balloon\"}");
	UNIT_ASSERT_STREQ(jstr(r, "error", "class"), "DeviceNotActive");
	UNIT_ASSERT_STREQ(jstr(r, "error", "desc"), "No balloon device has been activated");
	r = qh_exec(&h, "{\"execute\":\"balloon\",\"arguments\":{\"value\":1073741824}}");
	UNIT_ASSERT_STREQ(jstr(r, "error", "class"), "DeviceNotActive");
	UNIT_ASSERT_STREQ(jstr(r, "error", "desc"), "No balloon device has been activated");
	qh_fini(&h);
}

UNIT_TEST(test_qmp_balloon_sets_the_target_and_query_reports_actual)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, false), 0);
	struct qmp_harness h;
	qh_init(&h, fx.dev);
	yajl_val r = qh_exec(&h, "{\"execute\":\"query-balloon\",\"id\":7}");
	UNIT_ASSERT_EQ(jint(r, "return", "actual"), RAM_SIZE);
	r = qh_exec(&h, "{\"execute\":\"balloon\",\"arguments\":{\"value\":2097152}}");
	UNIT_ASSERT(yajl_tree_get(r, (const char *[]){"return", NULL}, yajl_t_object));
	UNIT_ASSERT_EQ(rd(CONFIG_NUM_PAGES), (RAM_SIZE - 2097152) / PAGE);
	/* The guest follows; query-balloon sees it. */
	wr(CONFIG_ACTUAL, (RAM_SIZE - 2097152) / PAGE);
	r = qh_exec(&h, "{\"execute\":\"query-balloon\"}");
	UNIT_ASSERT_EQ(jint(r, "return", "actual"), 2097152);
	qh_fini(&h);
	fixture_teardown();
}

UNIT_TEST(test_qmp_balloon_out_of_range_names_the_range)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, false), 0);
	struct qmp_harness h;
	qh_init(&h, fx.dev);
	const char *bad[] = {
	    "{\"execute\":\"balloon\",\"arguments\":{\"value\":0}}",
	    "{\"execute\":\"balloon\",\"arguments\":{\"value\":-4096}}",
	    "{\"execute\":\"balloon\",\"arguments\":{\"value\":4194305}}",
	};
	for (unsigned i = 0; i < 3; i++) {
		yajl_val r = qh_exec(&h, bad[i]);
		UNIT_ASSERT_STREQ(jstr(r, "error", "class"), "GenericError");
		UNIT_ASSERT_CONTAINS(jstr(r, "error", "desc"), "'value'");
		UNIT_ASSERT_CONTAINS(jstr(r, "error", "desc"), "[1, 4194304]");
	}
	UNIT_ASSERT_EQ(rd(CONFIG_NUM_PAGES), 0);
	yajl_val r = qh_exec(&h, "{\"execute\":\"balloon\"}");
	UNIT_ASSERT_STREQ(jstr(r, "error", "desc"), "Parameter 'value' is missing");
	r = qh_exec(&h, "{\"execute\":\"balloon\",\"arguments\":{\"value\":\"1G\"}}");
	UNIT_ASSERT_CONTAINS(jstr(r, "error", "desc"), "Invalid parameter type for 'value'");
	qh_fini(&h);
	fixture_teardown();
}

UNIT_TEST(test_qmp_balloon_change_event_carries_actual)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false, true), 0);
	struct qmp_harness h;
	qh_init(&h, fx.dev);
	virtio_balloon_set_change_hook(fx.dev, qh_balloon_changed, h.s);
	wr(CONFIG_ACTUAL, 256); /* the guest inflated 1 MiB */
	fake_run_loop_ms(fx.loop, 20);
	/* StratoVirt's BALLOON_CHANGED, then QEMU's BALLOON_CHANGE, one per line. */
	char *second = strchr(h.out, '\n');
	UNIT_ASSERT(second != NULL);
	*second++ = '\0';
	yajl_tree_free(h.msg);
	h.msg = yajl_tree_parse(h.out, NULL, 0);
	UNIT_ASSERT_STREQ(jstr(h.msg, "event", NULL), "BALLOON_CHANGED");
	UNIT_ASSERT_EQ(jint(h.msg, "data", "actual"), RAM_SIZE - (1 << 20));
	UNIT_ASSERT(jint(h.msg, "timestamp", "seconds") > 0);
	yajl_tree_free(h.msg);
	h.msg = yajl_tree_parse(second, NULL, 0);
	UNIT_ASSERT_STREQ(jstr(h.msg, "event", NULL), "BALLOON_CHANGE");
	UNIT_ASSERT_EQ(jint(h.msg, "data", "actual"), RAM_SIZE - (1 << 20));
	qh_fini(&h);
	fixture_teardown();
}

UNIT_MAIN("virtio-balloon")
