/*
 * Hot plug over QMP on replaceable virtio-mmio slots (core/hotplug.h,
 * qmp/cmd-hotplug.c), without KVM: the slots sit on a plain MMIO bus that
 * the tests read and write as a vCPU would, and the commands go through a
 * QMP session whose backend hands out the hotplug manager.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../../vmm/core/bus.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/core/hotplug.h"
#include "../../vmm/qmp/qmp.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define SLOT_BASE 0xd0000000ull
#define REG_MAGIC 0x000
#define REG_DEVID 0x008
#define REG_STAT  0x070
#define HP_OK	  "{\"return\":{}}"

struct hp_fixture {
	struct fake_guest g;
	struct bus bus;
	struct eventloop *loop;
	struct hotplug *hp;
	struct virtio_mmio *slots[VMM_MICROVM_MAX_MMIO];
	unsigned n_slots;
	struct qmp_session *s;
	char out[65536];
	size_t out_len;
	size_t reply_start;
	int deleted;
	char image[64];
};

static int hp_write(void *opaque, const void *buf, size_t len)
{
	struct hp_fixture *f = opaque;
	if (f->out_len + len + 1 > sizeof(f->out))
		return -ENOSPC;
	memcpy(f->out + f->out_len, buf, len);
	f->out_len += len;
	f->out[f->out_len] = '\0';
	return 0;
}

static struct hotplug *hp_backend_hotplug(void *opaque)
{
	return ((struct hp_fixture *)opaque)->hp;
}

static const struct qmp_backend hp_backend = {.hotplug = hp_backend_hotplug};

/* What the VM does on a completed device_del: the event, then (for the
 * tests that wait for it) the end of the loop run. */
static void hp_device_deleted(void *opaque, const char *id)
{
	struct hp_fixture *f = opaque;
	struct vm_event ev = {.kind = VM_EVENT_DEVICE_DELETED, .device_id = id};
	qmp_session_send_event(f->s, &ev, NULL);
	f->deleted++;
	eventloop_stop(f->loop);
}

/* A VM with a boot-time disk "rootfs" and device ids "rootfs" and "nic0",
 * a netdev "net0", and blk_slots + net_slots empty slots. */
static int hp_setup(struct hp_fixture *f, unsigned blk_slots, unsigned net_slots)
{
	memset(f, 0, sizeof(*f));
	if (fake_guest_init(&f->g, 1 << 20) < 0)
		return -1;
	bus_init(&f->bus);
	if (eventloop_create(&f->loop) < 0)
		return -1;
	struct vmm_config cfg = {0};
	cfg.n_drives = 1;
	snprintf(cfg.drives[0].id, VMM_ID_MAX, "rootfs");
	cfg.n_blks = 1;
	snprintf(cfg.blks[0].id, VMM_ID_MAX, "rootfs");
	cfg.n_netdevs = 1;
	snprintf(cfg.netdevs[0].id, VMM_ID_MAX, "net0");
	cfg.n_nets = 1;
	snprintf(cfg.nets[0].id, VMM_ID_MAX, "nic0");
	struct hotplug_host hh = {
	    .vm_name = "test", .device_deleted = hp_device_deleted, .opaque = f};
	struct perr err = {0};
	if (hotplug_create(&cfg, &hh, &f->hp, &err) < 0)
		return -1;
	for (unsigned i = 0; i < blk_slots + net_slots; i++) {
		struct virtio_mmio_host host = {
		    .mem = &f->g.mem,
		    .mmio_bus = &f->bus,
		    .loop = f->loop,
		    .vm_fd = -1,
		    .base = SLOT_BASE + i * VIRTIO_MMIO_SIZE,
		    .gsi = 5 + i,
		    .unplugged = hotplug_slot_unplugged,
		    .unplug_opaque = f->hp,
		};
		if (virtio_mmio_attach(&host, NULL, &f->slots[i], &err) < 0)
			return -1;
		f->n_slots++;
		if (hotplug_add_slot(f->hp, i < blk_slots ? HOTPLUG_BLK : HOTPLUG_NET, f->slots[i],
				     &err) < 0)
			return -1;
	}
	snprintf(f->image, sizeof(f->image), "/tmp/petrel-hotplug-XXXXXX");
	int fd = mkstemp(f->image);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		return -1;
	close(fd);
	f->s = qmp_session_new(&hp_backend, f, hp_write, f);
	if (!f->s || qmp_session_greet(f->s) < 0)
		return -1;
	const char *caps = "{\"execute\": \"qmp_capabilities\"}";
	return qmp_session_feed(f->s, caps, strlen(caps));
}

static void hp_teardown(struct hp_fixture *f)
{
	qmp_session_free(f->s);
	while (f->n_slots)
		virtio_mmio_detach(f->slots[--f->n_slots]);
	hotplug_destroy(f->hp);
	eventloop_destroy(f->loop);
	bus_destroy(&f->bus);
	fake_guest_free(&f->g);
	if (f->image[0])
		unlink(f->image);
}

/* Runs one command; returns everything it printed (reply and events). */
static const char *hp_cmd(struct hp_fixture *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *hp_cmd(struct hp_fixture *f, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->reply_start = f->out_len;
	qmp_session_feed(f->s, msg, strlen(msg));
	return f->out + f->reply_start;
}

static uint32_t hp_reg(struct hp_fixture *f, unsigned slot, uint64_t reg)
{
	uint32_t v = 0;
	bus_read(&f->bus, SLOT_BASE + slot * VIRTIO_MMIO_SIZE + reg, &v, 4);
	return v;
}

static void hp_set_status(struct hp_fixture *f, unsigned slot, uint32_t v)
{
	bus_write(&f->bus, SLOT_BASE + slot * VIRTIO_MMIO_SIZE + REG_STAT, &v, 4);
}

static void hp_timeout(void *opaque, uint32_t events)
{
	(void)events;
	eventloop_stop(opaque);
}

/* Runs the loop until a device_del completes, at most about 2 s. */
static void hp_run_loop(struct hp_fixture *f)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_value = {.tv_sec = 2}};
	timerfd_settime(tfd, 0, &its, NULL);
	eventloop_add(f->loop, tfd, EPOLLIN, hp_timeout, f->loop);
	eventloop_run(f->loop);
	eventloop_remove(f->loop, tfd);
	close(tfd);
}

static const char *hp_blockdev_add(struct hp_fixture *f, const char *node)
{
	return hp_cmd(f,
		      "{\"execute\": \"blockdev-add\", \"arguments\": {\"node-name\": \"%s\", "
		      "\"file\": {\"driver\": \"file\", \"filename\": \"%s\"}, \"cache\": "
		      "{\"direct\": false}, \"read-only\": false}}",
		      node, f->image);
}

static const char *hp_disk_add(struct hp_fixture *f, const char *id, const char *drive)
{
	return hp_cmd(f,
		      "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
		      "\"virtio-blk-mmio\", \"id\": \"%s\", \"drive\": \"%s\"}}",
		      id, drive);
}

#define HP_SETUP(f, blk, net)                                      \
	struct hp_fixture f;                                       \
	do {                                                       \
		if (hp_setup(&f, blk, net) < 0) {                  \
			hp_teardown(&f);                           \
			UNIT_FAIL("fixture: %s", strerror(errno)); \
		}                                                  \
	} while (0)

UNIT_TEST(test_hotplug_empty_slot_answers_device_id_0)
{
	HP_SETUP(f, 1, 1);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_MAGIC), 0x74726976);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 0);
	/* A driver's write to an empty slot changes nothing. */
	hp_set_status(&f, 0, 1);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_STAT), 0);
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_blockdev_add_and_device_add_plug_a_disk)
{
	HP_SETUP(f, 2, 1);
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d1"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk1", "d1"), HP_OK);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 2);
	UNIT_ASSERT_EQ(hp_reg(&f, 1, REG_DEVID), 0);
	/* StratoVirt's form: no drive=, the device is named like its node; addr picks a slot. */
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d2"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": "
					"{\"driver\": \"virtio-blk-mmio\", \"id\": \"d2\", "
					"\"addr\": \"0x1\"}}"),
			     HP_OK);
	UNIT_ASSERT_EQ(hp_reg(&f, 1, REG_DEVID), 2);
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_device_add_rejects_unknown_drive_and_netdev)
{
	HP_SETUP(f, 1, 1);
	const char *r = hp_disk_add(&f, "disk1", "nope");
	UNIT_ASSERT_CONTAINS(r, "GenericError");
	UNIT_ASSERT_CONTAINS(r, "drive 'nope' not found");
	r = hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
		       "\"virtio-net-mmio\", \"id\": \"nic1\", \"netdev\": \"nope\"}}");
	UNIT_ASSERT_CONTAINS(r, "netdev 'nope' not found");
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 0);
	UNIT_ASSERT_EQ(hp_reg(&f, 1, REG_DEVID), 0);
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_refuses_duplicate_ids)
{
	HP_SETUP(f, 2, 0);
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d1"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d1"), "Duplicate nodes with node-name='d1'");
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "rootfs"), "Duplicate nodes");
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "rootfs", "d1"), "Duplicate device ID 'rootfs'");
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk1", "d1"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d2"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk1", "d2"), "Duplicate device ID 'disk1'");
	/* One drive, one device. */
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk2", "d1"), "already in use by device 'disk1'");
	UNIT_ASSERT_EQ(hp_reg(&f, 1, REG_DEVID), 0);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"netdev_add\", \"arguments\": "
					"{\"id\": \"net0\", \"ifname\": \"tap9\"}}"),
			     "Duplicate ID 'net0' for netdev");
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_full_slots_are_an_error)
{
	HP_SETUP(f, 1, 0);
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d1"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d2"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk1", "d1"), HP_OK);
	const char *r = hp_disk_add(&f, "disk2", "d2");
	UNIT_ASSERT_CONTAINS(r, "GenericError");
	UNIT_ASSERT_CONTAINS(r, "No free virtio-blk-mmio slot");
	/* No net slot at all. */
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"netdev_add\", \"arguments\": "
					"{\"id\": \"n1\", \"ifname\": \"tap9\"}}"),
			     HP_OK);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": "
					"{\"driver\": \"virtio-net-mmio\", \"id\": \"n1\"}}"),
			     "No free virtio-net-mmio slot");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": "
					"{\"driver\": \"virtio-blk-mmio\", \"id\": \"x\", "
					"\"drive\": \"d2\", \"addr\": 0}}"),
			     "slot 0 is in use by device 'disk1'");
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_driver_backend_mismatch_is_an_error)
{
	HP_SETUP(f, 1, 1);
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d1"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"netdev_add\", \"arguments\": "
					"{\"id\": \"n1\", \"ifname\": \"tap9\"}}"),
			     HP_OK);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": "
					"{\"driver\": \"virtio-blk-mmio\", \"id\": \"x\", "
					"\"netdev\": \"n1\"}}"),
			     "virtio-blk-mmio has no property 'netdev'");
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "x", "n1"), "'n1' is a netdev");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": "
					"{\"driver\": \"virtio-net-mmio\", \"id\": \"y\", "
					"\"netdev\": \"d1\"}}"),
			     "'d1' is a drive");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": "
					"{\"driver\": \"e1000\", \"id\": \"z\"}}"),
			     "virtio-blk-mmio or virtio-net-mmio");
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 0);
	UNIT_ASSERT_EQ(hp_reg(&f, 1, REG_DEVID), 0);
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_bad_arguments_change_nothing)
{
	HP_SETUP(f, 1, 1);
	const char *r = hp_cmd(&f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"node-name\": "
				   "\"d1\", \"file\": {\"driver\": \"file\", \"filename\": "
				   "\"/nonexistent/x.img\"}}}");
	UNIT_ASSERT_CONTAINS(r, "Could not open '/nonexistent/x.img'");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"blockdev-del\", \"arguments\": "
					"{\"node-name\": \"d1\"}}"),
			     "Failed to find node with node-name='d1'");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f,
				    "{\"execute\": \"blockdev-add\", \"arguments\": "
				    "{\"node-name\": \"d1\", \"file\": {\"filename\": \"x\"}}}"),
			     "file: Parameter 'driver' is missing");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"netdev_add\", \"arguments\": "
					"{\"id\": \"n1\", \"fd\": \"3\"}}"),
			     "use 'ifname'");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f,
				    "{\"execute\": \"netdev_add\", \"arguments\": "
				    "{\"id\": \"n1\", \"ifname\": \"a-much-too-long-ifname\"}}"),
			     "too long");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"netdev_del\", \"arguments\": "
					"{\"id\": \"n1\"}}"),
			     "netdev 'n1' not found");
	UNIT_ASSERT_CONTAINS(hp_blockdev_add(&f, "d1"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": "
					"{\"driver\": \"virtio-blk-mmio\", \"id\": \"x\", "
					"\"drive\": \"d1\", \"addr\": \"0x7\"}}"),
			     "addr 7 does not exist");
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_add\", \"arguments\": "
					"{\"driver\": \"virtio-net-mmio\", \"id\": \"x\", "
					"\"mac\": \"01:02:03:04:05:06\"}}"),
			     "unicast MAC");
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 0);
	/* The drive is still free for a good request. */
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "x", "d1"), HP_OK);
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_device_del_of_unknown_or_boot_device_is_refused)
{
	HP_SETUP(f, 1, 0);
	const char *r = hp_cmd(&f, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"x\"}}");
	UNIT_ASSERT_CONTAINS(r, "DeviceNotFound");
	UNIT_ASSERT_CONTAINS(r, "Device 'x' not found");
	r = hp_cmd(&f, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"rootfs\"}}");
	UNIT_ASSERT_CONTAINS(r, "was present at boot");
	r = hp_cmd(&f,
		   "{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"rootfs\"}}");
	UNIT_ASSERT_CONTAINS(r, "boot-time drive");
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_device_del_of_an_unused_device_is_immediate)
{
	HP_SETUP(f, 1, 0);
	hp_blockdev_add(&f, "d1");
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk1", "d1"), HP_OK);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"blockdev-del\", \"arguments\": "
					"{\"node-name\": \"d1\"}}"),
			     "Node 'd1' is busy: in use by device 'disk1'");
	const char *r =
	    hp_cmd(&f, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"disk1\"}}");
	UNIT_ASSERT_CONTAINS(r, "\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":"
				"\"disk1\",\"path\":\"/machine/peripheral/disk1\"}");
	UNIT_ASSERT_CONTAINS(r, HP_OK);
	UNIT_ASSERT_EQ(f.deleted, 1);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 0);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"blockdev-del\", \"arguments\": "
					"{\"node-name\": \"d1\"}}"),
			     HP_OK);
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_device_del_waits_until_the_guest_resets_the_device)
{
	HP_SETUP(f, 1, 0);
	hp_blockdev_add(&f, "d1");
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk1", "d1"), HP_OK);
	/* The guest's driver takes the device (ACKNOWLEDGE | DRIVER). */
	hp_set_status(&f, 0, 1);
	hp_set_status(&f, 0, 3);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_STAT), 3);
	const char *r =
	    hp_cmd(&f, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"disk1\"}}");
	UNIT_ASSERT_CONTAINS(r, HP_OK);
	UNIT_ASSERT(!strstr(r, "DEVICE_DELETED"));
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 2);
	UNIT_ASSERT_CONTAINS(hp_cmd(&f, "{\"execute\": \"device_del\", \"arguments\": "
					"{\"id\": \"disk1\"}}"),
			     "already in the process of unplug");
	/* The slot stays taken meanwhile. */
	hp_blockdev_add(&f, "d2");
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk2", "d2"), "No free virtio-blk-mmio slot");
	/* Driver unbound: reset. The slot is empty at once; the device is freed on the loop. */
	hp_set_status(&f, 0, 0);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 0);
	f.reply_start = f.out_len;
	hp_run_loop(&f);
	UNIT_ASSERT_EQ(f.deleted, 1);
	UNIT_ASSERT_CONTAINS(f.out + f.reply_start, "\"device\":\"disk1\"");
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk2", "d2"), HP_OK);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 2);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_STAT), 0);
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_device_del_after_the_guest_unbound_is_immediate)
{
	HP_SETUP(f, 1, 0);
	hp_blockdev_add(&f, "d1");
	UNIT_ASSERT_CONTAINS(hp_disk_add(&f, "disk1", "d1"), HP_OK);
	hp_set_status(&f, 0, 1);
	hp_set_status(&f, 0, 3);
	/* Linux unbinding a driver: reset, then ACKNOWLEDGE again (virtio_dev_remove). */
	hp_set_status(&f, 0, 0);
	hp_set_status(&f, 0, 1);
	const char *r =
	    hp_cmd(&f, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"disk1\"}}");
	UNIT_ASSERT_CONTAINS(r, "DEVICE_DELETED");
	UNIT_ASSERT_EQ(f.deleted, 1);
	UNIT_ASSERT_EQ(hp_reg(&f, 0, REG_DEVID), 0);
	hp_teardown(&f);
}

struct hp_vcpu {
	struct hp_fixture *f;
	bool stop; /* __atomic */
	unsigned bad_ids;
	unsigned reads;
};

/* A vCPU that keeps probing and resetting slot 0 while QMP swaps devices. */
static void *hp_vcpu_thread(void *opaque)
{
	struct hp_vcpu *v = opaque;
	while (!__atomic_load_n(&v->stop, __ATOMIC_ACQUIRE)) {
		uint32_t id = hp_reg(v->f, 0, REG_DEVID);
		if (id != 0 && id != 2)
			v->bad_ids++;
		uint32_t cfg[2];
		bus_read(&v->f->bus, SLOT_BASE + 0x100, cfg, 4); /* capacity, when a disk */
		/* A driver's start (ACKNOWLEDGE, DRIVER), then a reset. */
		hp_set_status(v->f, 0, 1);
		hp_set_status(v->f, 0, 3);
		hp_set_status(v->f, 0, 0);
		__atomic_add_fetch(&v->reads, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

UNIT_TEST(test_hotplug_swaps_are_safe_against_concurrent_vcpu_accesses)
{
	HP_SETUP(f, 1, 0);
	hp_blockdev_add(&f, "d1");
	struct hp_vcpu v = {.f = &f};
	pthread_t th;
	UNIT_ASSERT(pthread_create(&th, NULL, hp_vcpu_thread, &v) == 0);
	/* On a loaded host the thread may not run at all before the swaps end. */
	while (__atomic_load_n(&v.reads, __ATOMIC_ACQUIRE) == 0)
		sched_yield();
	unsigned plugged = 0;
	for (int i = 0; i < 300; i++) {
		if (strstr(hp_disk_add(&f, "disk1", "d1"), HP_OK))
			plugged++;
		/* Immediate, or completed at the vCPU's next reset. */
		hp_cmd(&f, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"disk1\"}}");
		while (f.deleted < (int)plugged)
			hp_run_loop(&f);
	}
	__atomic_store_n(&v.stop, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	UNIT_ASSERT_EQ(plugged, 300);
	UNIT_ASSERT_EQ(f.deleted, 300);
	UNIT_ASSERT_EQ(v.bad_ids, 0);
	UNIT_ASSERT(v.reads > 0);
	hp_teardown(&f);
}

UNIT_TEST(test_hotplug_slot_counts_keep_the_microvm_limits)
{
	struct vmm_config cfg = {0};
	unsigned blk, net;
	hotplug_slot_counts(&cfg, &blk, &net);
	UNIT_ASSERT_EQ(blk, 6);
	UNIT_ASSERT_EQ(net, 2);
	cfg.n_blks = 1;
	cfg.n_nets = 1;
	cfg.vsock.present = cfg.rng.present = cfg.balloon.present = true;
	cfg.virtio_serial.present = true;
	hotplug_slot_counts(&cfg, &blk, &net);
	UNIT_ASSERT_EQ(net, 1);
	UNIT_ASSERT_EQ(blk, 4); /* 11 - 6 boot devices - 1 net slot */
	cfg.n_blks = 6;
	cfg.n_nets = 2;
	hotplug_slot_counts(&cfg, &blk, &net);
	UNIT_ASSERT_EQ(blk + net, 0);
}

UNIT_TEST(test_hotplug_commands_are_listed)
{
	HP_SETUP(f, 0, 0);
	const char *r = hp_cmd(&f, "{\"execute\": \"query-commands\"}");
	UNIT_ASSERT_CONTAINS(r, "\"device_add\"");
	UNIT_ASSERT_CONTAINS(r, "\"device_del\"");
	UNIT_ASSERT_CONTAINS(r, "\"blockdev-add\"");
	UNIT_ASSERT_CONTAINS(r, "\"netdev_add\"");
	hp_teardown(&f);
}

UNIT_MAIN("hotplug")
