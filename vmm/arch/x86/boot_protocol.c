#include "boot_protocol.h"

#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct boot_params) == 4096, "the zero page is one page");
_Static_assert(sizeof(struct x86_pvh_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(sizeof(struct x86_pvh_module) == 32, "hvm_modlist_entry is 32 bytes");
_Static_assert(sizeof(struct x86_pvh_memmap_entry) == 24, "hvm_memmap_table_entry is 24 bytes");

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int x86_bzimage_parse(const void *head, size_t head_len, uint64_t image_size,
		      struct x86_bzimage *out, struct perr *err)
{
	const uint8_t *p = head;
	memset(out, 0, sizeof(*out));
	if (head_len < X86_SETUP_HDR_OFFSET + sizeof(struct setup_header) ||
	    image_size < head_len || le16(p + 0x1fe) != X86_BOOT_FLAG ||
	    le32(p + 0x202) != X86_HDRS_MAGIC)
		return perr_setx(err, -EINVAL, "not a bzImage (no \"HdrS\" setup header)");

	/* The header runs to 0x202 + the byte at 0x201 (the jump's offset). */
	size_t hdr_end = 0x202 + (size_t)p[0x201];
	size_t hdr_max = X86_SETUP_HDR_OFFSET + sizeof(struct setup_header);
	if (hdr_end > hdr_max)
		hdr_end = hdr_max;
	memcpy(&out->hdr, p + X86_SETUP_HDR_OFFSET, hdr_end - X86_SETUP_HDR_OFFSET);

	const struct setup_header *h = &out->hdr;
	out->version = h->version;
	if (h->version < X86_BOOT_PROTOCOL_MIN)
		return perr_setx(
		    err, -EINVAL,
		    "bzImage boot protocol %u.%02u is too old; 2.12 or later is needed",
		    h->version >> 8, h->version & 0xff);
	if (!(h->loadflags & LOADED_HIGH))
		return perr_setx(err, -EINVAL, "bzImage is not loaded high (a zImage?)");
	if (!(h->xloadflags & XLF_KERNEL_64))
		return perr_setx(err, -EINVAL, "bzImage has no 64-bit entry point (XLF_KERNEL_64)");

	unsigned setup_sects = h->setup_sects ? h->setup_sects : 4;
	out->payload_offset = (size_t)(setup_sects + 1) * 512;
	if (out->payload_offset >= image_size)
		return perr_setx(err, -EINVAL,
				 "bzImage is truncated: %llu bytes, its setup alone takes %zu",
				 (unsigned long long)image_size, out->payload_offset);
	out->payload_size = (size_t)(image_size - out->payload_offset);
	out->initrd_addr_max = h->initrd_addr_max;
	out->cmdline_max = h->cmdline_size;
	out->init_size = h->init_size;
	out->pref_address = h->pref_address;
	return 0;
}

static int boot_params_set_e820(struct boot_params *bp, const struct x86_boot_args *a,
				struct perr *err)
{
	if (a->n_e820 > E820_MAX_ENTRIES_ZEROPAGE)
		return perr_setx(err, -EINVAL, "boot_params: %u e820 entries; at most %d fit",
				 a->n_e820, E820_MAX_ENTRIES_ZEROPAGE);
	for (unsigned i = 0; i < a->n_e820; i++) {
		bp->e820_table[i].addr = a->e820[i].addr;
		bp->e820_table[i].size = a->e820[i].size;
		bp->e820_table[i].type = a->e820[i].type;
	}
	bp->e820_entries = (uint8_t)a->n_e820;
	return 0;
}

int x86_boot_params_build(struct boot_params *bp, const struct x86_bzimage *bz,
			  const struct x86_boot_args *a, struct perr *err)
{
	memset(bp, 0, sizeof(*bp));
	struct setup_header *h = &bp->hdr;
	uint32_t cmdline_max;
	if (bz) {
		*h = bz->hdr;
		cmdline_max = bz->cmdline_max;
	} else {
		h->boot_flag = X86_BOOT_FLAG;
		h->header = X86_HDRS_MAGIC;
		h->version = X86_BOOT_PROTOCOL_SYNTH;
		h->loadflags = LOADED_HIGH;
		h->kernel_alignment = 0x1000000;
		h->cmdline_size = 2047;
		h->initrd_addr_max = 0x7fffffff;
		cmdline_max = h->cmdline_size;
	}
	if (a->cmdline_len > cmdline_max)
		return perr_setx(err, -EINVAL,
				 "kernel command line is %u bytes; the kernel accepts at most %u",
				 a->cmdline_len, cmdline_max);

	h->type_of_loader = X86_LOADER_UNDEFINED;
	h->vid_mode = 0xffff; /* "normal": no video mode change */
	h->code32_start = (uint32_t)a->kernel_load_gpa;
	h->cmd_line_ptr = (uint32_t)a->cmdline_gpa;
	bp->ext_cmd_line_ptr = (uint32_t)(a->cmdline_gpa >> 32);
	if (a->initrd_size) {
		h->ramdisk_image = (uint32_t)a->initrd_gpa;
		h->ramdisk_size = (uint32_t)a->initrd_size;
		bp->ext_ramdisk_image = (uint32_t)(a->initrd_gpa >> 32);
		bp->ext_ramdisk_size = (uint32_t)(a->initrd_size >> 32);
	}
	/* acpi_rsdp_addr is read from protocol 2.14 on. */
	if (a->rsdp_gpa && h->version >= 0x020e)
		bp->acpi_rsdp_addr = a->rsdp_gpa;
	return boot_params_set_e820(bp, a, err);
}

size_t x86_pvh_info_size(unsigned n_e820)
{
	return sizeof(struct x86_pvh_start_info) + sizeof(struct x86_pvh_module) +
	       n_e820 * sizeof(struct x86_pvh_memmap_entry);
}

int x86_pvh_info_build(void *buf, size_t size, uint64_t gpa, const struct x86_boot_args *a,
		       struct perr *err)
{
	size_t need = x86_pvh_info_size(a->n_e820);
	if (size < need)
		return perr_setx(err, -EINVAL, "PVH start info: %zu bytes do not fit in %zu", need,
				 size);
	memset(buf, 0, need);
	struct x86_pvh_start_info *si = buf;
	struct x86_pvh_module *mod = (struct x86_pvh_module *)(si + 1);
	struct x86_pvh_memmap_entry *map = (struct x86_pvh_memmap_entry *)(mod + 1);

	si->magic = X86_PVH_MAGIC;
	si->version = 1;
	si->cmdline_paddr = a->cmdline_gpa;
	si->rsdp_paddr = a->rsdp_gpa;
	if (a->initrd_size) {
		mod->paddr = a->initrd_gpa;
		mod->size = a->initrd_size;
		si->nr_modules = 1;
		si->modlist_paddr = gpa + sizeof(*si);
	}
	for (unsigned i = 0; i < a->n_e820; i++)
		map[i] = (struct x86_pvh_memmap_entry){a->e820[i].addr, a->e820[i].size,
						       a->e820[i].type, 0};
	si->memmap_paddr = gpa + sizeof(*si) + sizeof(*mod);
	si->memmap_entries = a->n_e820;
	return 0;
}
