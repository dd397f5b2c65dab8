#include "i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../core/bus.h"

/* Status register (port 0x64, read). */
#define STR_OBF	     0x01 /* output buffer full */
#define STR_SYSFLAG  0x04
#define STR_CMD	     0x08 /* last write was a command */
#define STR_UNLOCKED 0x10

/* Controller configuration byte ("command byte"). */
#define CTR_KBDINT  0x01
#define CTR_AUXINT  0x02
#define CTR_SYSFLAG 0x04
#define CTR_KBDDIS  0x10
#define CTR_AUXDIS  0x20
#define CTR_XLATE   0x40

/* Controller commands (port 0x64, write). */
#define CMD_READ_CTR	   0x20
#define CMD_WRITE_CTR	   0x60
#define CMD_AUX_DISABLE	   0xa7
#define CMD_AUX_ENABLE	   0xa8
#define CMD_AUX_TEST	   0xa9
#define CMD_SELF_TEST	   0xaa
#define CMD_KBD_TEST	   0xab
#define CMD_KBD_DISABLE	   0xad
#define CMD_KBD_ENABLE	   0xae
#define CMD_READ_INPUT	   0xc0
#define CMD_READ_OUTPUT	   0xd0
#define CMD_WRITE_OUTPUT   0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX	   0xd4
#define CMD_PULSE_RESET	   0xfe

/* Keyboard commands (port 0x60, write) and replies. */
#define KBD_CMD_SET_LEDS  0xed
#define KBD_CMD_ECHO	  0xee
#define KBD_CMD_SCANSET	  0xf0
#define KBD_CMD_GET_ID	  0xf2
#define KBD_CMD_SET_RATE  0xf3
#define KBD_CMD_ENABLE	  0xf4
#define KBD_CMD_DISABLE	  0xf5
#define KBD_CMD_RESET_DIS 0xf6
#define KBD_CMD_RESET	  0xff
#define KBD_REPLY_ACK	  0xfa
#define KBD_REPLY_POR	  0xaa /* power-on reset passed */
#define KBD_REPLY_RESEND  0xfe

#define OUTPUT_PORT_RESET 0x01 /* active low: 0 resets the CPU */
#define OUTPUT_PORT_A20	  0x02

#define I8042_QUEUE 64

struct i8042 {
	pthread_mutex_t lock;
	struct bus *pio;
	void (*set_irq)(void *opaque, bool level);
	void *irq_opaque;
	void (*reset)(void *opaque);
	void *reset_opaque;
	bool irq_level;

	uint8_t ctr;
	uint8_t status_cmd; /* STR_CMD */
	uint8_t output_port;
	uint8_t pending_cmd;	 /* controller command waiting for its data byte */
	uint8_t pending_kbd_cmd; /* keyboard command waiting for its argument */
	bool kbd_scanning;
	uint8_t scanset;

	uint8_t queue[I8042_QUEUE]; /* bytes for the guest, from the keyboard */
	unsigned q_head, q_count;
	struct log_ratelimit rl;
};

static void kbd_update_irq_locked(struct i8042 *k)
{
	bool level = k->q_count && (k->ctr & CTR_KBDINT);
	if (level != k->irq_level) {
		k->irq_level = level;
		if (k->set_irq)
			k->set_irq(k->irq_opaque, level);
	}
}

static void kbd_queue_locked(struct i8042 *k, uint8_t b)
{
	if (k->q_count == I8042_QUEUE)
		return;
	k->queue[(k->q_head + k->q_count) % I8042_QUEUE] = b;
	k->q_count++;
}

/* A controller reply replaces whatever the guest has not read: the real
 * output buffer holds one byte, and Linux flushes before each command. */
static void ctl_reply_locked(struct i8042 *k, uint8_t b)
{
	k->q_count = 0;
	kbd_queue_locked(k, b);
}

static void kbd_command_locked(struct i8042 *k, uint8_t v)
{
	if (k->pending_kbd_cmd) {
		uint8_t cmd = k->pending_kbd_cmd;
		k->pending_kbd_cmd = 0;
		kbd_queue_locked(k, KBD_REPLY_ACK);
		if (cmd == KBD_CMD_SCANSET) {
			if (v == 0)
				kbd_queue_locked(k, k->scanset);
			else if (v <= 3)
				k->scanset = v;
		}
		return;
	}
	switch (v) {
	case KBD_CMD_SET_LEDS:
	case KBD_CMD_SET_RATE:
	case KBD_CMD_SCANSET:
		k->pending_kbd_cmd = v;
		kbd_queue_locked(k, KBD_REPLY_ACK);
		break;
	case KBD_CMD_ECHO:
		kbd_queue_locked(k, KBD_CMD_ECHO);
		break;
	case KBD_CMD_GET_ID:
		kbd_queue_locked(k, KBD_REPLY_ACK);
		kbd_queue_locked(k, 0xab); /* MF2 keyboard */
		kbd_queue_locked(k, 0x83);
		break;
	case KBD_CMD_ENABLE:
		k->kbd_scanning = true;
		kbd_queue_locked(k, KBD_REPLY_ACK);
		break;
	case KBD_CMD_DISABLE:
	case KBD_CMD_RESET_DIS:
		k->kbd_scanning = v == KBD_CMD_RESET_DIS;
		kbd_queue_locked(k, KBD_REPLY_ACK);
		break;
	case KBD_CMD_RESET:
		k->scanset = 2;
		k->kbd_scanning = true;
		kbd_queue_locked(k, KBD_REPLY_ACK);
		kbd_queue_locked(k, KBD_REPLY_POR);
		break;
	default:
		/* Typematic/make-break modes (0xf7-0xfd) and the rest: acknowledged. */
		kbd_queue_locked(k, KBD_REPLY_ACK);
		break;
	}
}

/* Returns true when the guest asked for a CPU reset. */
static bool ctl_data_locked(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;
	k->pending_cmd = 0;
	switch (cmd) {
	case CMD_WRITE_CTR:
		k->ctr = v;
		return false;
	case CMD_WRITE_OUTPUT:
		k->output_port = v;
		return !(v & OUTPUT_PORT_RESET);
	case CMD_WRITE_KBD_OBUF:
	case CMD_WRITE_AUX_OBUF:
		/* There is no mouse port: an AUX byte comes back as keyboard data,
		 * without AUXDATA in the status, which Linux's AUX loop test
		 * (and its MUX probe) take as "no AUX" at once, instead of
		 * polling for half a second per attempt. */
		ctl_reply_locked(k, v);
		return false;
	case CMD_WRITE_AUX:
		return false; /* to the absent mouse */
	default:
		if (k->ctr & CTR_KBDDIS) /* data to a disabled keyboard is lost */
			return false;
		kbd_command_locked(k, v);
		return false;
	}
}

/* Returns true when the guest asked for a CPU reset. */
static bool ctl_command_locked(struct i8042 *k, uint8_t v)
{
	switch (v) {
	case CMD_READ_CTR:
		ctl_reply_locked(k, k->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPUT:
	case CMD_WRITE_KBD_OBUF:
	case CMD_WRITE_AUX_OBUF:
	case CMD_WRITE_AUX:
		k->pending_cmd = v;
		break;
	case CMD_AUX_DISABLE:
		k->ctr |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
		ctl_reply_locked(k, 0x02); /* clock line stuck high: no aux port */
		break;
	case CMD_SELF_TEST:
		ctl_reply_locked(k, 0x55);
		break;
	case CMD_KBD_TEST:
		ctl_reply_locked(k, 0x00);
		break;
	case CMD_KBD_DISABLE:
		k->ctr |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case CMD_READ_INPUT:
		ctl_reply_locked(k, 0x80); /* keyboard not inhibited */
		break;
	case CMD_READ_OUTPUT:
		ctl_reply_locked(k, k->output_port);
		break;
	default:
		/* 0xf0-0xff pulse output port lines for 6 us; bit 0 is reset. */
		if ((v & 0xf0) == 0xf0)
			return !(v & OUTPUT_PORT_RESET);
		LOG_GUEST_RATELIMITED(&k->rl, "i8042: unknown controller command %#x", v);
		break;
	}
	return false;
}

static uint8_t i8042_read_data_locked(struct i8042 *k)
{
	if (!k->q_count)
		return 0;
	uint8_t v = k->queue[k->q_head];
	k->q_head = (k->q_head + 1) % I8042_QUEUE;
	k->q_count--;
	/* Lower the line, so that the next byte is a new edge. */
	if (k->irq_level && k->set_irq) {
		k->irq_level = false;
		k->set_irq(k->irq_opaque, false);
	}
	return v;
}

static uint8_t i8042_read_status_locked(struct i8042 *k)
{
	return (k->q_count ? STR_OBF : 0) | STR_UNLOCKED | k->status_cmd |
	       (k->ctr & CTR_SYSFLAG ? STR_SYSFLAG : 0);
}

static void i8042_read(struct i8042 *k, bool data_port, void *data, unsigned len)
{
	memset(data, 0xff, len);
	pthread_mutex_lock(&k->lock);
	uint8_t v = data_port ? i8042_read_data_locked(k) : i8042_read_status_locked(k);
	kbd_update_irq_locked(k);
	pthread_mutex_unlock(&k->lock);
	((uint8_t *)data)[0] = v;
}

static void i8042_write(struct i8042 *k, bool data_port, const void *data)
{
	uint8_t v = ((const uint8_t *)data)[0];
	pthread_mutex_lock(&k->lock);
	k->status_cmd = data_port ? 0 : STR_CMD;
	bool reset = data_port ? ctl_data_locked(k, v) : ctl_command_locked(k, v);
	kbd_update_irq_locked(k);
	pthread_mutex_unlock(&k->lock);
	if (reset && k->reset)
		k->reset(k->reset_opaque);
}

static void i8042_data_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)off;
	i8042_read(opaque, true, data, len);
}

static void i8042_data_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)off;
	(void)len;
	i8042_write(opaque, true, data);
}

static void i8042_cmd_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)off;
	i8042_read(opaque, false, data, len);
}

static void i8042_cmd_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)off;
	(void)len;
	i8042_write(opaque, false, data);
}

/* Two one-port ranges, so that 0x61 (the PIT's speaker gate, in KVM) stays free. */
static const struct bus_ops i8042_data_ops = {
    .read = i8042_data_read,
    .write = i8042_data_write,
};

static const struct bus_ops i8042_cmd_ops = {
    .read = i8042_cmd_read,
    .write = i8042_cmd_write,
};

bool i8042_press_ctrl_alt_del(struct i8042 *k)
{
	/* Ctrl, Alt, Delete (an E0-prefixed key) down, then up in reverse. */
	static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
				       0x71, 0xf0, 0x11, 0xf0, 0x14};
	pthread_mutex_lock(&k->lock);
	/* Scan codes reach the guest only from an enabled keyboard; before
	 * atkbd has probed they would be taken for replies to its commands. */
	if (!k->kbd_scanning || (k->ctr & CTR_KBDDIS)) {
		pthread_mutex_unlock(&k->lock);
		return false;
	}
	bool xlate = k->ctr & CTR_XLATE;
	const uint8_t *codes = xlate || k->scanset == 1 ? set1 : set2;
	size_t n = xlate || k->scanset == 1 ? sizeof(set1) : sizeof(set2);
	for (size_t i = 0; i < n; i++)
		kbd_queue_locked(k, codes[i]);
	kbd_update_irq_locked(k);
	pthread_mutex_unlock(&k->lock);
	return true;
}

int i8042_create(const struct i8042_config *cfg, struct i8042 **out, struct perr *err)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return perr_setx(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&k->lock, NULL);
	k->pio = cfg->pio;
	k->set_irq = cfg->set_irq;
	k->irq_opaque = cfg->irq_opaque;
	k->reset = cfg->reset;
	k->reset_opaque = cfg->reset_opaque;
	/* As a BIOS leaves it: keyboard interrupt on, translation on, POST done. */
	k->ctr = CTR_KBDINT | CTR_SYSFLAG | CTR_XLATE | CTR_AUXDIS;
	k->output_port = OUTPUT_PORT_RESET | OUTPUT_PORT_A20;
	k->scanset = 2;
	k->kbd_scanning = true;

	int rc = bus_register(cfg->pio, I8042_DATA_PORT, 1, &i8042_data_ops, k);
	if (rc == 0) {
		rc = bus_register(cfg->pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, k);
		if (rc < 0)
			bus_unregister(cfg->pio, I8042_DATA_PORT);
	}
	if (rc < 0) {
		pthread_mutex_destroy(&k->lock);
		free(k);
		return perr_set(err, rc, "i8042: ports 0x60/0x64");
	}
	*out = k;
	return 0;
}

void i8042_save(struct i8042 *k, struct i8042_state *out)
{
	pthread_mutex_lock(&k->lock);
	*out = (struct i8042_state){
	    .ctr = k->ctr,
	    .status_cmd = k->status_cmd,
	    .output_port = k->output_port,
	    .pending_cmd = k->pending_cmd,
	    .pending_kbd_cmd = k->pending_kbd_cmd,
	    .kbd_scanning = k->kbd_scanning,
	    .scanset = k->scanset,
	};
	pthread_mutex_unlock(&k->lock);
}

void i8042_restore(struct i8042 *k, const struct i8042_state *in)
{
	pthread_mutex_lock(&k->lock);
	k->ctr = in->ctr;
	k->status_cmd = in->status_cmd;
	k->output_port = in->output_port;
	k->pending_cmd = in->pending_cmd;
	k->pending_kbd_cmd = in->pending_kbd_cmd;
	k->kbd_scanning = in->kbd_scanning != 0;
	k->scanset = in->scanset == 1 || in->scanset == 3 ? in->scanset : 2;
	k->q_count = 0;
	kbd_update_irq_locked(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	bus_unregister(k->pio, I8042_DATA_PORT);
	bus_unregister(k->pio, I8042_CMD_PORT);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
