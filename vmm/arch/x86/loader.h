/*
 * Kernel image loaders: a bzImage (Linux boot protocol), an uncompressed ELF
 * vmlinux (PVH entry when it has the XEN_ELFNOTE_PHYS32_ENTRY note, else its
 * 64-bit e_entry), or a raw image (loaded at 1 MiB, entered there in 64-bit
 * mode). Also places the initrd.
 */
#ifndef PETREL_X86_LOADER_H
#define PETREL_X86_LOADER_H

#include <stdint.h>

#include "../../../common/error.h"
#include "boot_protocol.h"

struct guest_mem;

enum x86_kernel_format {
	X86_KERNEL_BZIMAGE,
	X86_KERNEL_ELF,
	X86_KERNEL_RAW,
};

enum x86_entry_mode {
	X86_ENTRY_LONG64, /* 64-bit mode, paging on, %rsi = boot_params */
	X86_ENTRY_PVH32,  /* 32-bit protected mode, paging off, %ebx = hvm_start_info */
};

struct x86_kernel {
	enum x86_kernel_format format;
	enum x86_entry_mode mode;
	uint64_t entry;
	uint64_t load_gpa;	  /* lowest byte loaded */
	uint64_t end_gpa;	  /* first byte past what the kernel needs, init_size included */
	uint64_t initrd_addr_max; /* highest address for the initrd's last byte */
	struct x86_bzimage bz;	  /* format == X86_KERNEL_BZIMAGE */
};

const char *x86_kernel_format_name(enum x86_kernel_format f);

/* Loads path into guest RAM below ram_end. Errors name what is wrong with
 * the image, not the path (the caller prefixes "-kernel PATH"). */
int x86_kernel_load(struct guest_mem *mem, uint64_t ram_end, const char *path,
		    struct x86_kernel *out, struct perr *err);

/* Loads the initrd as high as the kernel allows, page aligned, below ram_end
 * and above the kernel. */
int x86_initrd_load(struct guest_mem *mem, uint64_t ram_end, const struct x86_kernel *k,
		    const char *path, uint64_t *gpa, uint64_t *size, struct perr *err);

#endif
