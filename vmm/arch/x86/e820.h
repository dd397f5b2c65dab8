/*
 * The guest's RAM split and the BIOS-style memory map (e820) that describes
 * it; the same map feeds boot_params and PVH's memmap.
 */
#ifndef PETREL_X86_E820_H
#define PETREL_X86_E820_H

#include <stdint.h>

#define X86_E820_RAM	  1
#define X86_E820_RESERVED 2
#define X86_E820_ACPI	  3

#define X86_E820_MAX 8

struct x86_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* RAM below the 3 GiB hole and RAM from 4 GiB up. */
struct x86_ram_layout {
	uint64_t low_size;
	uint64_t high_size;
};

void x86_ram_split(uint64_t mem_bytes, struct x86_ram_layout *out);
/* Fills up to max entries (X86_E820_MAX is always enough), sorted by address;
 * returns the number written. */
unsigned x86_e820_build(const struct x86_ram_layout *ram, struct x86_e820_entry *out, unsigned max);

#endif
