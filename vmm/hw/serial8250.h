/*
 * A 16550A UART (8250 family) on port I/O, as Linux's 8250 driver expects it
 * at COM1 (0x3f8, IRQ 4): FIFO, THRE interrupts that re-assert when enabled
 * with an idle transmitter, divisor latch, scratch register, loopback.
 * Transmission is instantaneous; the chardev buffers a slow backend.
 */
#ifndef PETREL_SERIAL8250_H
#define PETREL_SERIAL8250_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"

struct bus;
struct chardev;
struct serial8250;

#define SERIAL8250_COM1_BASE 0x3f8
#define SERIAL8250_PORTS     8

struct serial8250_config {
	struct bus *pio;
	uint64_t base;
	struct chardev *chr; /* NULL: output discarded, no input */
	/* The interrupt line's level (the UART's INTR pin); any thread. */
	void (*set_irq)(void *opaque, bool level);
	void *irq_opaque;
};

/* Registers the 8 ports at cfg->base and attaches to the chardev. */
int serial8250_create(const struct serial8250_config *cfg, struct serial8250 **out,
		      struct perr *err);
/* Detaches and unregisters; no vCPU may run. NULL is a no-op. */
void serial8250_destroy(struct serial8250 *s);

/* Snapshots: the registers the guest programmed (received bytes not yet read
 * are not kept). */
struct serial8250_state {
	uint8_t ier, lcr, mcr, msr, scr, fcr;
	uint16_t divisor;
	uint8_t thre_pending;
	uint8_t pad[7];
};
void serial8250_save(struct serial8250 *s, struct serial8250_state *out);
void serial8250_restore(struct serial8250 *s, const struct serial8250_state *in);

#endif
