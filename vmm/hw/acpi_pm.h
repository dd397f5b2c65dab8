/*
 * The sleep registers of a hardware-reduced ACPI machine (ACPI 6.4, chapter 4
 * "Sleep Control and Status Registers"): the two one-byte I/O ports that the
 * FADT's SLEEP_CONTROL_REG and SLEEP_STATUS_REG point at. They are all the
 * power management a MicroVm guest gets: writing SLP_EN with SLP_TYP = 5 (the
 * value of the DSDT's \_S5 package) powers the machine off.
 *
 *   sleep control, write-only:  bits 2-4 SLP_TYP, bit 5 SLP_EN
 *   sleep status:               bit 7 WAK_STS, write 1 to clear
 */
#ifndef PETREL_HW_ACPI_PM_H
#define PETREL_HW_ACPI_PM_H

#include <stdint.h>

#include "../../common/error.h"
#include "../core/bus.h"

/* Default ports: free on a PC (nothing ISA lives at 0x600) and away from
 * everything the MicroVm machine places below 0x400. */
#define ACPI_PM_SLEEP_CTL_PORT 0x600
#define ACPI_PM_SLEEP_STS_PORT 0x601

/* SLP_TYP value for S5 (soft off); the DSDT's \_S5 package carries it. */
#define ACPI_PM_SLP_TYP_S5 5

struct acpi_pm;

/*
 * Registers the two ports on pio_bus (-EBUSY when one is taken, -EINVAL when
 * they are equal). on_poweroff(opaque) runs on the vCPU thread that wrote
 * SLP_EN with SLP_TYP 5; it may run more than once (several vCPUs, or a guest
 * that retries) and must only ask the VM to shut down. Other sleep types are
 * refused: the write is logged and WAK_STS set, so that a guest waiting for
 * the wake-up goes on running.
 */
int acpi_pm_create(struct bus *pio_bus, uint16_t ctl_port, uint16_t sts_port,
		   void (*on_poweroff)(void *), void *opaque, struct acpi_pm **out,
		   struct perr *err);
/* Unregisters the ports and frees pm; NULL is a no-op. */
void acpi_pm_destroy(struct acpi_pm *pm);

#endif
