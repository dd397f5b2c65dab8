/*
 * The Linux x86 boot protocol (Documentation/x86/boot.rst): the bzImage
 * setup header and the zero page (struct boot_params) a 64-bit entry expects
 * in %rsi, and PVH's hvm_start_info for the 32-bit entry in %ebx. Pure
 * functions over buffers, so they are unit-tested without KVM.
 */
#ifndef PETREL_X86_BOOT_PROTOCOL_H
#define PETREL_X86_BOOT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include <asm/bootparam.h>

#include "../../../common/error.h"
#include "e820.h"

#define X86_SETUP_HDR_OFFSET 0x1f1
#define X86_BOOT_FLAG	     0xaa55
#define X86_HDRS_MAGIC	     0x53726448 /* "HdrS" */
#define X86_LOADER_UNDEFINED 0xff	/* type_of_loader for a loader without an assigned id */
/* Oldest protocol accepted: 2.12 has xloadflags, so XLF_KERNEL_64 can be checked. */
#define X86_BOOT_PROTOCOL_MIN 0x020c
/* What a synthesized header (vmlinux 64-bit entry, raw image) claims. */
#define X86_BOOT_PROTOCOL_SYNTH 0x020f
#define X86_STARTUP64_OFFSET	0x200 /* startup_64 from the 32-bit entry (code32_start) */

struct x86_bzimage {
	struct setup_header hdr; /* the image's header; bytes past its end are zero */
	size_t payload_offset;	 /* the protected-mode kernel, (setup_sects + 1) * 512 */
	size_t payload_size;
	uint16_t version;
	uint64_t initrd_addr_max; /* highest address the initrd's last byte may have */
	uint32_t cmdline_max;	  /* longest command line, without the NUL */
	uint32_t init_size;	  /* memory the kernel needs at its load address */
	uint64_t pref_address;
};

/* Checks and decodes the setup header of a bzImage whose first head_len
 * bytes are in head (the first 4 KiB suffice) and whose file is image_size
 * bytes long. */
int x86_bzimage_parse(const void *head, size_t head_len, uint64_t image_size,
		      struct x86_bzimage *out, struct perr *err);

/* Where the loader put things, shared by the zero page and PVH start_info. */
struct x86_boot_args {
	uint64_t kernel_load_gpa; /* code32_start for a bzImage */
	uint64_t cmdline_gpa;
	uint32_t cmdline_len; /* without the NUL */
	uint64_t initrd_gpa;  /* 0 when none */
	uint64_t initrd_size;
	const struct x86_e820_entry *e820;
	unsigned n_e820;
	uint64_t rsdp_gpa; /* 0 when there are no ACPI tables */
};

/*
 * Fills the zero page. bz is the image's header, or NULL for a kernel that
 * has none (vmlinux entered at startup_64, raw images): a minimal 2.15
 * header is synthesized. -EINVAL when the command line or the e820 map do not
 * fit what the header allows.
 */
int x86_boot_params_build(struct boot_params *bp, const struct x86_bzimage *bz,
			  const struct x86_boot_args *a, struct perr *err);

/* PVH start of day (xen/include/public/arch-x86/hvm/start_info.h), version 1. */
#define X86_PVH_MAGIC		  0x336ec578
#define X86_PVH_NOTE_PHYS32_ENTRY 18 /* XEN_ELFNOTE_PHYS32_ENTRY */

struct x86_pvh_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct x86_pvh_module {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct x86_pvh_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* the e820 types */
	uint32_t reserved;
};

/* Bytes x86_pvh_info_build needs for n_e820 map entries. */
size_t x86_pvh_info_size(unsigned n_e820);
/* Writes start_info, then the module list (the initrd) and the memory map,
 * into buf, which the guest sees at gpa. */
int x86_pvh_info_build(void *buf, size_t size, uint64_t gpa, const struct x86_boot_args *a,
		       struct perr *err);

#endif
