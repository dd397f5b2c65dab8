/*
 * The MicroVm's legacy devices through their port I/O, as a guest driver
 * sees them: the 16550A (Linux's 8250 driver checks) and the i8042 (Linux's
 * i8042/atkbd probes, the reset line, Ctrl-Alt-Del).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../vmm/core/bus.h"
#include "../../vmm/hw/i8042.h"
#include "../../vmm/hw/serial8250.h"
#include "unit.h"

struct irq_probe {
	bool level;
	unsigned raises;
	unsigned resets;
};

static void probe_set_irq(void *opaque, bool level)
{
	struct irq_probe *p = opaque;
	if (level && !p->level)
		p->raises++;
	p->level = level;
}

static void probe_reset(void *opaque)
{
	((struct irq_probe *)opaque)->resets++;
}

static uint8_t inb(struct bus *bus, uint16_t port)
{
	uint8_t v = 0;
	bus_read(bus, port, &v, 1);
	return v;
}

static void outb(struct bus *bus, uint16_t port, uint8_t v)
{
	bus_write(bus, port, &v, 1);
}

/* ------------------------------------------------------------------------ */
/* 16550A                                                                     */
/* ------------------------------------------------------------------------ */

#define COM1 0x3f8
#define RBR  (COM1 + 0)
#define IER  (COM1 + 1)
#define IIR  (COM1 + 2)
#define LCR  (COM1 + 3)
#define MCR  (COM1 + 4)
#define LSR  (COM1 + 5)
#define MSR  (COM1 + 6)
#define SCR  (COM1 + 7)

struct uart {
	struct bus bus;
	struct irq_probe irq;
	struct serial8250 *s;
};

static int uart_init(struct uart *u)
{
	memset(u, 0, sizeof(*u));
	bus_init(&u->bus);
	struct serial8250_config cfg = {
	    .pio = &u->bus,
	    .base = COM1,
	    .set_irq = probe_set_irq,
	    .irq_opaque = &u->irq,
	};
	struct perr err = {0};
	return serial8250_create(&cfg, &u->s, &err);
}

static void uart_fini(struct uart *u)
{
	serial8250_destroy(u->s);
	bus_destroy(&u->bus);
}

UNIT_TEST(test_uart_thre_interrupt_reasserts_when_enabled_again)
{
	struct uart u;
	UNIT_ASSERT_EQ(uart_init(&u), 0);
	UNIT_ASSERT_EQ(inb(&u.bus, IIR) & 0x0f, 0x01); /* nothing pending */
	UNIT_ASSERT_EQ(inb(&u.bus, LSR), 0x60);	       /* THRE | TEMT */
	outb(&u.bus, IER, 0x02);
	bool raised = u.irq.level;
	uint8_t iir1 = inb(&u.bus, IIR); /* reading it acknowledges THRE */
	bool lowered = !u.irq.level;
	uint8_t iir_after = inb(&u.bus, IIR);
	/* Linux's UART_BUG_THRE test: disable, enable again, THRE is back. */
	outb(&u.bus, IER, 0);
	outb(&u.bus, IER, 0x02);
	uint8_t iir2 = inb(&u.bus, IIR);
	/* Sending a byte empties the holding register again: THRE again. */
	outb(&u.bus, RBR, 'x');
	uint8_t iir3 = inb(&u.bus, IIR);
	uart_fini(&u);
	UNIT_ASSERT(raised);
	UNIT_ASSERT_EQ(iir1 & 0x0f, 0x02);
	UNIT_ASSERT(lowered);
	UNIT_ASSERT_EQ(iir_after & 0x0f, 0x01);
	UNIT_ASSERT_EQ(iir2 & 0x0f, 0x02);
	UNIT_ASSERT_EQ(iir3 & 0x0f, 0x02);
}

UNIT_TEST(test_uart_divisor_latch_scratch_and_fifo_bits)
{
	struct uart u;
	UNIT_ASSERT_EQ(uart_init(&u), 0);
	outb(&u.bus, LCR, 0x83);
	outb(&u.bus, RBR, 0x01); /* DLL: 115200 baud */
	outb(&u.bus, IER, 0x00); /* DLM */
	uint8_t dll = inb(&u.bus, RBR), dlm = inb(&u.bus, IER);
	outb(&u.bus, LCR, 0x03);
	outb(&u.bus, IER, 0x05);
	uint8_t ier = inb(&u.bus, IER);
	outb(&u.bus, SCR, 0xa5);
	uint8_t scr = inb(&u.bus, SCR);
	outb(&u.bus, IIR, 0x01); /* FCR: enable FIFOs, a 16550A says so in IIR */
	uint8_t iir = inb(&u.bus, IIR);
	uart_fini(&u);
	UNIT_ASSERT_EQ(dll, 0x01);
	UNIT_ASSERT_EQ(dlm, 0x00);
	UNIT_ASSERT_EQ(ier, 0x05);
	UNIT_ASSERT_EQ(scr, 0xa5);
	UNIT_ASSERT_EQ(iir & 0xc0, 0xc0);
}

UNIT_TEST(test_uart_loopback_receives_what_it_sends_with_rx_interrupt)
{
	struct uart u;
	UNIT_ASSERT_EQ(uart_init(&u), 0);
	outb(&u.bus, MCR, 0x10 | 0x02 | 0x01); /* loop, RTS, DTR */
	uint8_t msr = inb(&u.bus, MSR);
	outb(&u.bus, IER, 0x01);
	outb(&u.bus, RBR, 'L');
	uint8_t lsr = inb(&u.bus, LSR);
	uint8_t iir = inb(&u.bus, IIR);
	bool raised = u.irq.level;
	uint8_t c = inb(&u.bus, RBR);
	uint8_t lsr_after = inb(&u.bus, LSR);
	bool lowered = !u.irq.level;
	uart_fini(&u);
	UNIT_ASSERT_EQ(msr & 0xf0, 0x30); /* CTS from RTS, DSR from DTR */
	UNIT_ASSERT_EQ(lsr & 0x01, 0x01);
	UNIT_ASSERT_EQ(iir & 0x0f, 0x04);
	UNIT_ASSERT(raised);
	UNIT_ASSERT_EQ(c, 'L');
	UNIT_ASSERT_EQ(lsr_after & 0x01, 0);
	UNIT_ASSERT(lowered);
}

UNIT_TEST(test_uart_ports_are_taken_once)
{
	struct uart u;
	UNIT_ASSERT_EQ(uart_init(&u), 0);
	struct serial8250 *second = NULL;
	struct serial8250_config cfg = {.pio = &u.bus, .base = COM1 + 4};
	struct perr err = {0};
	int rc = serial8250_create(&cfg, &second, &err);
	uart_fini(&u);
	UNIT_ASSERT_EQ(rc, -EBUSY);
}

/* ------------------------------------------------------------------------ */
/* i8042                                                                      */
/* ------------------------------------------------------------------------ */

#define KBD_DATA 0x60
#define KBD_CMD	 0x64

struct kbc {
	struct bus bus;
	struct irq_probe irq;
	struct i8042 *k;
};

static int kbc_init(struct kbc *c)
{
	memset(c, 0, sizeof(*c));
	bus_init(&c->bus);
	struct i8042_config cfg = {
	    .pio = &c->bus,
	    .set_irq = probe_set_irq,
	    .irq_opaque = &c->irq,
	    .reset = probe_reset,
	    .reset_opaque = &c->irq,
	};
	struct perr err = {0};
	return i8042_create(&cfg, &c->k, &err);
}

static void kbc_fini(struct kbc *c)
{
	i8042_destroy(c->k);
	bus_destroy(&c->bus);
}

/* Reads every byte the controller has, as Linux's i8042_flush does. */
static size_t kbc_drain(struct kbc *c, uint8_t *out, size_t max)
{
	size_t n = 0;
	while ((inb(&c->bus, KBD_CMD) & 0x01) && n < max)
		out[n++] = inb(&c->bus, KBD_DATA);
	return n;
}

UNIT_TEST(test_i8042_self_test_and_command_byte)
{
	struct kbc c;
	UNIT_ASSERT_EQ(kbc_init(&c), 0);
	outb(&c.bus, KBD_CMD, 0xaa);
	uint8_t st = inb(&c.bus, KBD_CMD);
	uint8_t selftest = inb(&c.bus, KBD_DATA);
	outb(&c.bus, KBD_CMD, 0x20);
	uint8_t ctr = inb(&c.bus, KBD_DATA);
	outb(&c.bus, KBD_CMD, 0x60);
	outb(&c.bus, KBD_DATA, 0x47);
	outb(&c.bus, KBD_CMD, 0x20);
	uint8_t ctr2 = inb(&c.bus, KBD_DATA);
	uint8_t st_empty = inb(&c.bus, KBD_CMD);
	kbc_fini(&c);
	UNIT_ASSERT_EQ(st & 0x01, 0x01);
	UNIT_ASSERT_EQ(selftest, 0x55);
	UNIT_ASSERT_EQ(ctr, 0x65); /* KBDINT, SYSFLAG, AUXDIS, XLATE */
	UNIT_ASSERT_EQ(ctr2, 0x47);
	UNIT_ASSERT_EQ(st_empty & 0x01, 0);
}

UNIT_TEST(test_i8042_keyboard_identifies_itself_with_interrupts)
{
	struct kbc c;
	UNIT_ASSERT_EQ(kbc_init(&c), 0);
	outb(&c.bus, KBD_DATA, 0xf2);
	unsigned raises = c.irq.raises;
	uint8_t b[8];
	size_t n = kbc_drain(&c, b, sizeof(b));
	unsigned raises_after = c.irq.raises;
	kbc_fini(&c);
	UNIT_ASSERT_EQ(n, 3);
	UNIT_ASSERT_EQ(b[0], 0xfa);
	UNIT_ASSERT_EQ(b[1], 0xab);
	UNIT_ASSERT_EQ(b[2], 0x83);
	UNIT_ASSERT_EQ(raises, 1);
	/* Each further byte is a new edge on IRQ 1. */
	UNIT_ASSERT_EQ(raises_after, 3);
}

UNIT_TEST(test_i8042_reports_no_aux_port_without_waiting)
{
	struct kbc c;
	UNIT_ASSERT_EQ(kbc_init(&c), 0);
	/* AUX loopback: the byte comes back at once, but not as AUX data. */
	outb(&c.bus, KBD_CMD, 0xd3);
	outb(&c.bus, KBD_DATA, 0x5a);
	uint8_t st = inb(&c.bus, KBD_CMD);
	outb(&c.bus, KBD_CMD, 0xa9);
	uint8_t aux_test = inb(&c.bus, KBD_DATA);
	kbc_fini(&c);
	UNIT_ASSERT_EQ(st & 0x01, 0x01);
	UNIT_ASSERT_EQ(st & 0x20, 0);
	UNIT_ASSERT(aux_test != 0 && aux_test != 0xfa && aux_test != 0xff);
}

UNIT_TEST(test_i8042_reset_line_resets_the_machine)
{
	struct kbc c;
	UNIT_ASSERT_EQ(kbc_init(&c), 0);
	outb(&c.bus, KBD_CMD, 0xfe); /* pulse output line 0 */
	unsigned after_pulse = c.irq.resets;
	outb(&c.bus, KBD_CMD, 0xd1); /* write output port with bit 0 low */
	outb(&c.bus, KBD_DATA, 0x02);
	unsigned after_write = c.irq.resets;
	outb(&c.bus, KBD_CMD, 0xff); /* pulse nothing */
	unsigned after_noop = c.irq.resets;
	kbc_fini(&c);
	UNIT_ASSERT_EQ(after_pulse, 1);
	UNIT_ASSERT_EQ(after_write, 2);
	UNIT_ASSERT_EQ(after_noop, 2);
}

UNIT_TEST(test_i8042_ctrl_alt_del_in_the_guests_scan_code_set)
{
	struct kbc c;
	UNIT_ASSERT_EQ(kbc_init(&c), 0);
	uint8_t b[16];
	outb(&c.bus, KBD_DATA, 0xf5); /* atkbd deactivates while probing */
	kbc_drain(&c, b, sizeof(b));
	bool while_disabled = i8042_press_ctrl_alt_del(c.k);
	outb(&c.bus, KBD_DATA, 0xf4);
	kbc_drain(&c, b, sizeof(b));
	bool translated = i8042_press_ctrl_alt_del(c.k);
	size_t n1 = kbc_drain(&c, b, sizeof(b));
	static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	bool set1_ok = n1 == sizeof(set1) && memcmp(b, set1, n1) == 0;
	outb(&c.bus, KBD_CMD, 0x60);
	outb(&c.bus, KBD_DATA, 0x01); /* translation off */
	i8042_press_ctrl_alt_del(c.k);
	size_t n2 = kbc_drain(&c, b, sizeof(b));
	kbc_fini(&c);
	UNIT_ASSERT(!while_disabled);
	UNIT_ASSERT(translated);
	UNIT_ASSERT(set1_ok);
	UNIT_ASSERT_EQ(n2, 11);
	UNIT_ASSERT_EQ(b[0], 0x14);
	UNIT_ASSERT_EQ(b[10], 0x14);
}

UNIT_MAIN("machine_devices")
