/*
 * Guest physical address map of the x86 MicroVm machine.
 *
 *   0x00000500  GDT (boot CPU)                 0x0009fc00  EBDA (reserved)
 *   0x00006000  PVH hvm_start_info + lists     0x000e0000  ACPI tables (RSDP first)
 *   0x00007000  boot_params (the zero page)    0x000f0000  MP floating pointer + table
 *   0x00009000  page tables (4 GiB identity)   0x00100000  kernel (bzImage, raw)
 *   0x00020000  kernel command line
 *
 *   RAM: [0, min(mem, 3 GiB)) and, for the rest, [4 GiB, 4 GiB + mem - 3 GiB).
 *   The hole above 3 GiB holds the virtio-mmio windows, the IOAPIC, the LAPIC
 *   and the KVM TSS / identity-map pages.
 */
#ifndef PETREL_X86_LAYOUT_H
#define PETREL_X86_LAYOUT_H

#define X86_GDT_GPA	  0x500ull
#define X86_PVH_INFO_GPA  0x6000ull
#define X86_ZERO_PAGE_GPA 0x7000ull
#define X86_PML4_GPA	  0x9000ull
#define X86_PDPT_GPA	  0xa000ull
#define X86_PD_GPA	  0xb000ull /* four pages: 0xb000..0xefff */
#define X86_CMDLINE_GPA	  0x20000ull
#define X86_CMDLINE_AREA  0x10000ull
#define X86_EBDA_GPA	  0x9fc00ull
#define X86_BIOS_AREA_GPA 0xa0000ull
#define X86_ACPI_GPA	  0xe0000ull
#define X86_ACPI_AREA	  0x10000ull
#define X86_MPTABLE_GPA	  0xf0000ull
#define X86_MPTABLE_AREA  0x10000ull
#define X86_HIMEM_GPA	  0x100000ull

#define X86_LOW_RAM_MAX	 (3ull << 30)
#define X86_HIGH_RAM_GPA (4ull << 30)

#define X86_VIRTIO_MMIO_BASE	  0xd0000000ull
#define X86_VIRTIO_MMIO_FIRST_GSI 5
#define X86_IOAPIC_GPA		  0xfec00000ull
#define X86_LAPIC_GPA		  0xfee00000ull
#define X86_IDENTITY_MAP_GPA	  0xfffbc000ull /* one page */
#define X86_TSS_GPA		  0xfffbd000ull /* three pages */

/* Legacy ISA interrupt lines of the MicroVm devices. */
#define X86_IRQ_KEYBOARD 1
#define X86_IRQ_COM1	 4

/* GDT selectors (see x86_write_gdt). */
#define X86_SEL_CODE32 0x08
#define X86_SEL_CODE64 0x10
#define X86_SEL_DATA   0x18
#define X86_SEL_TSS    0x20

#endif
