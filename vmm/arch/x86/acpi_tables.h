/*
 * ACPI tables for the x86 MicroVm machine (-machine microvm,acpi=on): how a
 * guest kernel built without MP-table parsing or virtio-mmio command-line
 * devices (Debian's stock cloud kernel) finds its CPUs, its interrupt
 * controller and its devices, and how it powers off.
 *
 * The machine is a hardware-reduced ACPI platform (ACPI 6.3 §4.1): no PM1
 * event/control blocks, no PM timer, no GPEs, no SCI and no FACS. Linux then
 * also leaves the 8259 PIC and the PIT alone and uses the LAPIC timer.
 *
 *   RSDP (revision 2, the first bytes of the region, so a scan finds it too)
 *    └ XSDT ─ FADT  HW_REDUCED_ACPI; X_DSDT; SLEEP_CONTROL/STATUS_REG in I/O space
 *           │  └ DSDT  \_S5 = {5, 0, 0, 0}
 *           │          \_SB.COM1 PNP0501 (0x3f8, IRQ 4)   if has_serial
 *           │          \_SB.PS2K PNP0303 (0x60/0x64, IRQ 1) if has_i8042
 *           │          \_SB.VRnn LNRO0005 (window, GSI)    per virtio-mmio device
 *           └ MADT  one enabled LAPIC per CPU (APIC id = ACPI UID = index), the
 *                   IOAPIC (GSI base 0, same id as the MP table), NMI on LINT1
 *
 * No interrupt source overrides: the machine keeps KVM's default routing,
 * ISA IRQ n = GSI n (IRQ 0 included), which is what ACPI assumes without them.
 */
#ifndef PETREL_X86_ACPI_TABLES_H
#define PETREL_X86_ACPI_TABLES_H

#include <stdbool.h>
#include <stdint.h>

#include "../../../common/error.h"
#include "../../core/guest_mem.h"

#define ACPI_TABLES_OEM_ID	 "PETREL"   /* 6 characters */
#define ACPI_TABLES_OEM_TABLE_ID "PETRELVM" /* 8 characters */

/* The largest machine the tables describe: APIC ids 0..253, 255 being the
 * broadcast id and 254 the IOAPIC's with 254 CPUs. */
#define ACPI_TABLES_MAX_CPUS 254
/* virtio-mmio devices are named VR00..VRFF. */
#define ACPI_TABLES_MAX_VIRTIO 256

struct acpi_mmio_dev {
	uint64_t base; /* below 4 GiB: described with Memory32Fixed */
	uint32_t size;
	uint32_t gsi; /* an IOAPIC pin, 0..23 */
};

struct acpi_config {
	unsigned ncpus; /* 1..254, APIC ids 0..n-1 */
	const struct acpi_mmio_dev *virtio;
	unsigned n_virtio;
	/* I/O ports of the sleep registers, as registered with acpi_pm_create
	 * (vmm/hw/acpi_pm.h: ACPI_PM_SLEEP_CTL_PORT, ACPI_PM_SLEEP_STS_PORT).
	 * Both must be set and differ. */
	uint16_t pm_sleep_ctl_port;
	uint16_t pm_sleep_sts_port;
	bool has_serial;   /* COM1: 0x3f8, IRQ 4 */
	bool has_i8042;	   /* keyboard controller: 0x60/0x64, IRQ 1 */
	bool has_cmos_rtc; /* a CMOS RTC at 0x70; without it the FADT says "none" */
};

/*
 * Writes RSDP, XSDT, FADT, MADT and DSDT into guest memory [base, base + len)
 * (base 16-byte aligned; the MicroVm machine uses X86_ACPI_GPA/X86_ACPI_AREA,
 * 0xe0000 + 64 KiB, where a BIOS-area scan also finds the RSDP) and returns
 * the RSDP's address for boot_params.acpi_rsdp_addr / PVH rsdp_paddr.
 * -EINVAL for a bad config, -ENOSPC when the tables do not fit in len,
 * -EFAULT when the region is not guest RAM. Nothing is written on error.
 */
int acpi_build_tables(struct guest_mem *mem, uint64_t base, uint64_t len,
		      const struct acpi_config *cfg, uint64_t *rsdp_gpa, struct perr *err);

#endif
