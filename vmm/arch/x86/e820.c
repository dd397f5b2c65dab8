#include "e820.h"

#include "layout.h"

void x86_ram_split(uint64_t mem_bytes, struct x86_ram_layout *out)
{
	out->low_size = mem_bytes < X86_LOW_RAM_MAX ? mem_bytes : X86_LOW_RAM_MAX;
	out->high_size = mem_bytes - out->low_size;
}

static unsigned e820_add(struct x86_e820_entry *out, unsigned n, unsigned max, uint64_t addr,
			 uint64_t size, uint32_t type)
{
	if (n < max && size)
		out[n++] = (struct x86_e820_entry){addr, size, type};
	return n;
}

unsigned x86_e820_build(const struct x86_ram_layout *ram, struct x86_e820_entry *out, unsigned max)
{
	unsigned n = 0;
	/* Base memory ends where a PC's EBDA starts; Linux puts its real-mode
	 * trampoline (SMP bring-up) there. The VMM's own tables live in the
	 * reserved BIOS area, which Linux never allocates. */
	n = e820_add(out, n, max, 0, X86_EBDA_GPA, X86_E820_RAM);
	n = e820_add(out, n, max, X86_EBDA_GPA, X86_BIOS_AREA_GPA - X86_EBDA_GPA,
		     X86_E820_RESERVED);
	n = e820_add(out, n, max, X86_ACPI_GPA, X86_HIMEM_GPA - X86_ACPI_GPA, X86_E820_RESERVED);
	if (ram->low_size > X86_HIMEM_GPA)
		n = e820_add(out, n, max, X86_HIMEM_GPA, ram->low_size - X86_HIMEM_GPA,
			     X86_E820_RAM);
	n = e820_add(out, n, max, X86_HIGH_RAM_GPA, ram->high_size, X86_E820_RAM);
	return n;
}
