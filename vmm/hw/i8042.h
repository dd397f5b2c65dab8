/*
 * The PS/2 controller (i8042) at ports 0x60/0x64 with a keyboard behind it
 * and no mouse: enough for Linux's i8042 and atkbd drivers to probe without
 * timeouts, for the reset line (command 0xfe, or output port bit 0) to reset
 * the machine, and for the VMM to type Ctrl-Alt-Del (system_powerdown).
 */
#ifndef PETREL_I8042_H
#define PETREL_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"

struct bus;
struct i8042;

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT	0x64

struct i8042_config {
	struct bus *pio;
	/* The keyboard interrupt line (ISA IRQ 1); any thread. */
	void (*set_irq)(void *opaque, bool level);
	void *irq_opaque;
	/* The guest pulsed the CPU reset line; called on a vCPU thread. */
	void (*reset)(void *opaque);
	void *reset_opaque;
};

int i8042_create(const struct i8042_config *cfg, struct i8042 **out, struct perr *err);
/* No vCPU may run. NULL is a no-op. */
void i8042_destroy(struct i8042 *kbd);

/* Snapshots: the controller's and keyboard's modes (queued scancodes are not
 * kept). */
struct i8042_state {
	uint8_t ctr, status_cmd, output_port, pending_cmd, pending_kbd_cmd;
	uint8_t kbd_scanning, scanset;
	uint8_t pad;
};
void i8042_save(struct i8042 *kbd, struct i8042_state *out);
void i8042_restore(struct i8042 *kbd, const struct i8042_state *in);
/* Queues the make and break codes of Ctrl-Alt-Del, in the scan code set the
 * guest has configured (set 1 when the controller translates). False when
 * the guest has not enabled its keyboard (nothing is queued). Any thread. */
bool i8042_press_ctrl_alt_del(struct i8042 *kbd);

#endif
