/*
 * The architectural state the boot vCPU starts in (64-bit long mode with
 * identity-mapped page tables, or PVH's 32-bit protected mode), and the
 * per-vCPU MSR, FPU and LAPIC setup a firmware would otherwise do.
 */
#ifndef PETREL_X86_REGS_H
#define PETREL_X86_REGS_H

#include <stdint.h>

#include "../../../common/error.h"
#include "loader.h"

struct guest_mem;

struct x86_boot_entry {
	enum x86_entry_mode mode;
	uint64_t rip;
	uint64_t boot_info_gpa; /* %rsi (boot_params) or %ebx (hvm_start_info) */
};

/* The GDT at X86_GDT_GPA and page tables identity-mapping the first 4 GiB
 * with 2 MiB pages at X86_PML4_GPA. */
int x86_write_boot_tables(struct guest_mem *mem, struct perr *err);
/* Registers, segments, control registers and FPU of the boot vCPU. */
int x86_vcpu_set_boot_state(int vcpu_fd, const struct x86_boot_entry *entry, struct perr *err);
/* MSRs every vCPU starts with (MTRRs enabled write-back, fast strings, zeroed
 * syscall MSRs). MSRs the host does not know are skipped. */
int x86_vcpu_set_msrs(int vcpu_fd, struct perr *err);
/* Virtual-wire mode: LINT0 ExtINT (the PIC), LINT1 NMI, as a BIOS leaves it. */
int x86_vcpu_set_lapic_lints(int vcpu_fd, struct perr *err);

#endif
