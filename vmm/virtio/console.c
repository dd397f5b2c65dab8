#include "console.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../core/chardev.h"
#include "virtqueue.h"

#define CONSOLE_QUEUE_SIZE 128
#define CONSOLE_RX_QUEUE   0 /* receiveq0: device to driver */
#define CONSOLE_TX_QUEUE   1 /* transmitq0: driver to device */

/* §5.3.4, little-endian. Without features, the driver reads none of it. */
struct virtio_console_config {
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __attribute__((packed));

struct virtio_console {
	struct virtio_dev vdev; /* first: the transport hands us &vdev */
	struct chardev *chr;
	bool attached; /* we are chr's frontend */
	struct virtio_console_config config;

	/* Chardev input not yet given to the guest. The chardev side (its loop)
	 * and the queue side (the device's loop) may be different threads. */
	pthread_mutex_t rx_lock;
	uint8_t rx_buf[VIRTIO_CONSOLE_RX_BUFFER];
	size_t rx_len;
	bool rx_paused; /* can_receive said 0: the chardev waits for accept_input */

	struct log_ratelimit ratelimit;
	struct virtq_chain chain;
};

static struct virtio_console *to_console(struct virtio_dev *vdev)
{
	return (struct virtio_console *)(void *)((char *)vdev -
						 offsetof(struct virtio_console, vdev));
}

/* Chardev frontend (the chardev's loop thread). */

static size_t console_can_receive(void *opaque)
{
	struct virtio_console *c = opaque;
	pthread_mutex_lock(&c->rx_lock);
	size_t room = sizeof(c->rx_buf) - c->rx_len;
	if (!room)
		c->rx_paused = true;
	pthread_mutex_unlock(&c->rx_lock);
	return room;
}

static void console_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct virtio_console *c = opaque;
	pthread_mutex_lock(&c->rx_lock);
	size_t room = sizeof(c->rx_buf) - c->rx_len;
	if (len > room)
		len = room; /* cannot happen: the chardev read at most can_receive() */
	memcpy(c->rx_buf + c->rx_len, buf, len);
	c->rx_len += len;
	pthread_mutex_unlock(&c->rx_lock);
	/* The queue is only touched from a transport callback: ask for one. */
	virtio_dev_kick(&c->vdev, CONSOLE_RX_QUEUE);
}

static const struct chardev_frontend console_frontend = {
    .can_receive = console_can_receive,
    .receive = console_receive,
};

/* Queues (transport callbacks). */

/* §5.3.6.1: input goes into the buffers the driver posted on receiveq0;
 * what does not fit waits for more buffers. */
static void console_flush_rx(struct virtio_console *c, struct virtqueue *vq)
{
	bool resume = false;
	pthread_mutex_lock(&c->rx_lock);
	while (c->rx_len) {
		int ret = virtq_pop_desc_chain(vq, &c->chain);
		if (ret <= 0)
			break;
		size_t n = virtq_iov_from_buf(virtq_chain_in(&c->chain), c->chain.n_in, 0,
					      c->rx_buf, c->rx_len);
		if (n == 0)
			LOG_GUEST_RATELIMITED(&c->ratelimit,
					      "%s: receive buffer %u has no writable space",
					      c->vdev.id, c->chain.head);
		memmove(c->rx_buf, c->rx_buf + n, c->rx_len - n);
		c->rx_len -= n;
		virtq_push_used(vq, c->chain.head, (uint32_t)n);
	}
	if (c->rx_paused && c->rx_len < sizeof(c->rx_buf)) {
		c->rx_paused = false;
		resume = true;
	}
	pthread_mutex_unlock(&c->rx_lock);
	virtq_notify_used(vq);
	if (resume)
		chardev_accept_input(c->chr);
}

/* §5.3.6.2: everything the driver puts on transmitq0 is port output. */
static void console_drain_tx(struct virtio_console *c, struct virtqueue *vq)
{
	while (virtq_pop_desc_chain(vq, &c->chain) > 0) {
		for (unsigned i = 0; i < c->chain.n_out; i++)
			chardev_write(c->chr, c->chain.iov[i].iov_base, c->chain.iov[i].iov_len);
		virtq_push_used(vq, c->chain.head, 0);
	}
	virtq_notify_used(vq);
}

static void console_queue_notify(struct virtio_dev *vdev, unsigned index)
{
	struct virtio_console *c = to_console(vdev);
	if (index == CONSOLE_RX_QUEUE)
		console_flush_rx(c, &vdev->vqs[index]);
	else
		console_drain_tx(c, &vdev->vqs[index]);
}

/* Device ops. */

static uint32_t console_config_size(struct virtio_dev *vdev)
{
	(void)vdev;
	return sizeof(struct virtio_console_config);
}

static void console_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&to_console(vdev)->config + offset, len);
}

static void console_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
				 unsigned len)
{
	/* emerg_wr is writable only with VIRTIO_CONSOLE_F_EMERG_WRITE, not offered. */
	struct virtio_console *c = to_console(vdev);
	(void)data;
	LOG_GUEST_RATELIMITED(&c->ratelimit, "%s: %u-byte config write at %u ignored", vdev->id,
			      len, offset);
}

static int console_activate(struct virtio_dev *vdev)
{
	/* Input that arrived before the driver was ready goes out once it posts
	 * buffers; if it already has, this run delivers it. */
	virtio_dev_kick(vdev, CONSOLE_RX_QUEUE);
	return 0;
}

static int console_realize(struct virtio_dev *vdev, struct perr *err)
{
	struct virtio_console *c = to_console(vdev);
	(void)err;
	chardev_attach(c->chr, &console_frontend, c);
	c->attached = true;
	return 0;
}

static void console_destroy(struct virtio_dev *vdev)
{
	struct virtio_console *c = to_console(vdev);
	if (c->attached)
		chardev_attach(c->chr, NULL, NULL);
	pthread_mutex_destroy(&c->rx_lock);
	free(c);
}

static const struct virtio_dev_ops console_ops = {
    .name = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .num_queues = 2,
    .max_queue_size = CONSOLE_QUEUE_SIZE,
    .config_read = console_config_read,
    .config_write = console_config_write,
    .config_size = console_config_size,
    .realize = console_realize,
    .activate = console_activate,
    .queue_notify = console_queue_notify,
    .destroy = console_destroy,
};

int virtio_console_create(const struct vmm_virtio_serial *cfg, struct chardev *chr,
			  struct virtio_dev **out, struct perr *err)
{
	if (!chr)
		return perr_setx(err, -EINVAL, "-device virtconsole: no chardev");
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (!c)
		return perr_set(err, -ENOMEM, "-device virtconsole");
	c->vdev.ops = &console_ops;
	c->chr = chr;
	pthread_mutex_init(&c->rx_lock, NULL);
	c->config.max_nr_ports = htole32(1);
	const char *id = cfg->console_id[0] ? cfg->console_id : cfg->console_chardev;
	snprintf(c->vdev.id, sizeof(c->vdev.id), "virtconsole %s", id);
	*out = &c->vdev;
	return 0;
}
