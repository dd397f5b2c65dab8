#include "serial8250.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/bus.h"
#include "../core/chardev.h"

/* Register offsets (DLAB = LCR bit 7 switches 0 and 1 to the divisor). */
enum {
	UART_RBR_THR_DLL = 0,
	UART_IER_DLM = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI	 0x08 /* modem status */
#define IER_MASK 0x0f

#define IIR_NO_INT	 0x01
#define IIR_MSI		 0x00
#define IIR_THRI	 0x02
#define IIR_RDI		 0x04
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE     0x01
#define FCR_CLEAR_RCVR 0x02
#define FCR_CLEAR_XMIT 0x04

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_CTS	   0x10
#define MSR_DSR	   0x20
#define MSR_RI	   0x40
#define MSR_DCD	   0x80
#define MSR_DELTAS 0x0f

#define RX_FIFO_SIZE 64

struct serial8250 {
	pthread_mutex_t lock;
	struct bus *pio;
	uint64_t base;
	struct chardev *chr;
	void (*set_irq)(void *opaque, bool level);
	void *irq_opaque;
	bool irq_level;

	uint8_t ier, lcr, mcr, msr, scr, fcr;
	uint16_t divisor;
	bool thre_pending; /* THRE interrupt not yet acknowledged */
	bool rx_stalled;   /* can_receive said 0: wake the chardev when drained */

	uint8_t rx[RX_FIFO_SIZE];
	unsigned rx_head, rx_count;
};

static uint8_t serial_iir_locked(const struct serial8250 *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0;
	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thre_pending)
		return IIR_THRI | fifo;
	if ((s->ier & IER_MSI) && (s->msr & MSR_DELTAS))
		return IIR_MSI | fifo;
	return IIR_NO_INT | fifo;
}

static void serial_update_irq_locked(struct serial8250 *s)
{
	bool level = !(serial_iir_locked(s) & IIR_NO_INT);
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->set_irq)
			s->set_irq(s->irq_opaque, level);
	}
}

static void serial_rx_push_locked(struct serial8250 *s, uint8_t c)
{
	if (s->rx_count == RX_FIFO_SIZE)
		return; /* only loopback can overrun: the chardev is flow-controlled */
	s->rx[(s->rx_head + s->rx_count) % RX_FIFO_SIZE] = c;
	s->rx_count++;
}

/* Modem status as the guest sees it: in loopback the outputs are wired
 * back (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD); otherwise a peer that is
 * always there. */
static uint8_t serial_modem_lines(uint8_t mcr)
{
	if (!(mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	uint8_t v = 0;
	if (mcr & MCR_RTS)
		v |= MSR_CTS;
	if (mcr & MCR_DTR)
		v |= MSR_DSR;
	if (mcr & MCR_OUT1)
		v |= MSR_RI;
	if (mcr & MCR_OUT2)
		v |= MSR_DCD;
	return v;
}

static void serial_set_mcr_locked(struct serial8250 *s, uint8_t mcr)
{
	uint8_t old = s->msr & ~MSR_DELTAS;
	uint8_t now = serial_modem_lines(mcr);
	uint8_t delta = 0;
	if ((old ^ now) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old ^ now) & MSR_DCD)
		delta |= MSR_DDCD;
	if ((old & MSR_RI) && !(now & MSR_RI))
		delta |= MSR_TERI; /* trailing edge of ring indicator */
	s->mcr = mcr & MCR_MASK;
	s->msr = now | (s->msr & MSR_DELTAS) | delta;
}

static void serial_write_thr_locked(struct serial8250 *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP)
		serial_rx_push_locked(s, c);
	else if (s->chr)
		chardev_write(s->chr, &c, 1);
	/* Sent at once: the holding register is empty again, and says so. */
	s->thre_pending = true;
}

static uint8_t serial_read_rbr_locked(struct serial8250 *s)
{
	if (!s->rx_count)
		return 0;
	uint8_t c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % RX_FIFO_SIZE;
	s->rx_count--;
	if (!s->rx_count && s->rx_stalled && s->chr) {
		s->rx_stalled = false;
		chardev_accept_input(s->chr);
	}
	return c;
}

static uint8_t serial_read_locked(struct serial8250 *s, uint64_t off)
{
	switch (off) {
	case UART_RBR_THR_DLL:
		if (s->lcr & LCR_DLAB)
			return (uint8_t)s->divisor;
		return serial_read_rbr_locked(s);
	case UART_IER_DLM:
		if (s->lcr & LCR_DLAB)
			return (uint8_t)(s->divisor >> 8);
		return s->ier;
	case UART_IIR_FCR: {
		uint8_t iir = serial_iir_locked(s);
		/* Reading IIR while it reports THRE acknowledges that interrupt. */
		if ((iir & 0x0f) == IIR_THRI)
			s->thre_pending = false;
		return iir;
	}
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return (s->rx_count ? LSR_DR : 0) | LSR_THRE | LSR_TEMT;
	case UART_MSR: {
		uint8_t v = s->msr;
		s->msr &= ~MSR_DELTAS;
		return v;
	}
	case UART_SCR:
		return s->scr;
	}
	return 0xff;
}

static void serial_write_locked(struct serial8250 *s, uint64_t off, uint8_t v)
{
	switch (off) {
	case UART_RBR_THR_DLL:
		if (s->lcr & LCR_DLAB)
			s->divisor = (uint16_t)((s->divisor & 0xff00) | v);
		else
			serial_write_thr_locked(s, v);
		break;
	case UART_IER_DLM:
		if (s->lcr & LCR_DLAB) {
			s->divisor = (uint16_t)((s->divisor & 0x00ff) | v << 8);
			break;
		}
		/* Enabling THRI with an idle transmitter raises THRE at once;
		 * Linux tests for exactly this (UART_BUG_THRE). */
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thre_pending = true;
		s->ier = v & IER_MASK;
		break;
	case UART_IIR_FCR:
		if (v & FCR_CLEAR_RCVR) {
			s->rx_count = 0;
			s->rx_head = 0;
			if (s->rx_stalled && s->chr) {
				s->rx_stalled = false;
				chardev_accept_input(s->chr);
			}
		}
		s->fcr = v & (FCR_ENABLE | 0xc0);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		serial_set_mcr_locked(s, v);
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* read-only (factory test writes are ignored) */
	case UART_SCR:
		s->scr = v;
		break;
	}
}

static void serial_bus_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct serial8250 *s = opaque;
	memset(data, 0xff, len);
	pthread_mutex_lock(&s->lock);
	((uint8_t *)data)[0] = serial_read_locked(s, off);
	serial_update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_bus_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct serial8250 *s = opaque;
	(void)len; /* a wider access writes its low byte, as on the ISA bus */
	pthread_mutex_lock(&s->lock);
	serial_write_locked(s, off, ((const uint8_t *)data)[0]);
	serial_update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
}

static const struct bus_ops serial8250_bus_ops = {
    .read = serial_bus_read,
    .write = serial_bus_write,
};

static size_t serial_can_receive(void *opaque)
{
	struct serial8250 *s = opaque;
	pthread_mutex_lock(&s->lock);
	/* In loopback the UART does not listen to the line. */
	size_t room = (s->mcr & MCR_LOOP) ? 0 : RX_FIFO_SIZE - s->rx_count;
	if (!room)
		s->rx_stalled = true;
	pthread_mutex_unlock(&s->lock);
	return room;
}

static void serial_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct serial8250 *s = opaque;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < len; i++)
		serial_rx_push_locked(s, buf[i]);
	serial_update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
}

static const struct chardev_frontend serial8250_frontend = {
    .can_receive = serial_can_receive,
    .receive = serial_receive,
};

int serial8250_create(const struct serial8250_config *cfg, struct serial8250 **out,
		      struct perr *err)
{
	struct serial8250 *s = calloc(1, sizeof(*s));
	if (!s)
		return perr_setx(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	s->pio = cfg->pio;
	s->base = cfg->base;
	s->chr = cfg->chr;
	s->set_irq = cfg->set_irq;
	s->irq_opaque = cfg->irq_opaque;
	s->divisor = 12; /* 9600 baud, as after a BIOS */
	s->lcr = 0x03;	 /* 8N1 */
	s->mcr = MCR_OUT2;
	s->msr = serial_modem_lines(s->mcr);

	int rc = bus_register(cfg->pio, cfg->base, SERIAL8250_PORTS, &serial8250_bus_ops, s);
	if (rc < 0) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return perr_set(err, rc, "serial: ports %#llx-%#llx", (unsigned long long)cfg->base,
				(unsigned long long)cfg->base + SERIAL8250_PORTS - 1);
	}
	if (s->chr)
		chardev_attach(s->chr, &serial8250_frontend, s);
	*out = s;
	return 0;
}

void serial8250_save(struct serial8250 *s, struct serial8250_state *out)
{
	pthread_mutex_lock(&s->lock);
	*out = (struct serial8250_state){
	    .ier = s->ier,
	    .lcr = s->lcr,
	    .mcr = s->mcr,
	    .msr = s->msr,
	    .scr = s->scr,
	    .fcr = s->fcr,
	    .divisor = s->divisor,
	    .thre_pending = s->thre_pending,
	};
	pthread_mutex_unlock(&s->lock);
}

/* Any register value is one a guest could have written: nothing to refuse. */
void serial8250_restore(struct serial8250 *s, const struct serial8250_state *in)
{
	pthread_mutex_lock(&s->lock);
	s->ier = in->ier;
	s->lcr = in->lcr;
	s->mcr = in->mcr;
	s->msr = in->msr;
	s->scr = in->scr;
	s->fcr = in->fcr;
	s->divisor = in->divisor;
	s->thre_pending = in->thre_pending != 0;
	serial_update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
}

void serial8250_destroy(struct serial8250 *s)
{
	if (!s)
		return;
	if (s->chr)
		chardev_attach(s->chr, NULL, NULL);
	bus_unregister(s->pio, s->base);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
