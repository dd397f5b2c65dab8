/*
 * Everything the x86 boot vCPU needs in guest memory before its first
 * instruction: the kernel and initrd, the command line, the e820 map, the MP
 * table, the zero page or PVH start info, the GDT and page tables.
 */
#ifndef PETREL_X86_BOOT_H
#define PETREL_X86_BOOT_H

#include <stdbool.h>

#include "../../../common/error.h"
#include "e820.h"
#include "regs.h"

struct guest_mem;

struct x86_boot_config {
	const char *kernel;
	const char *initrd; /* NULL or "" when none */
	const char *cmdline;
	unsigned ncpus;
	struct x86_ram_layout ram;
	uint64_t rsdp_gpa; /* ACPI tables already in guest memory; 0: none */
};

struct x86_boot_result {
	struct x86_boot_entry entry;
	enum x86_kernel_format format;
	uint64_t initrd_gpa;
	uint64_t initrd_size;
};

/* Errors read "-kernel PATH: ..." or "-initrd PATH: ...". */
int x86_boot_setup(struct guest_mem *mem, const struct x86_boot_config *bc,
		   struct x86_boot_result *out, struct perr *err);

#endif
