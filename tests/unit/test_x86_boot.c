/*
 * The x86 boot builders, without KVM: the RAM split and e820 map, the MP
 * table, the bzImage header and zero page, PVH start info, the kernel and
 * initrd loaders, and per-vCPU CPUID.
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../vmm/arch/x86/boot_protocol.h"
#include "../../vmm/arch/x86/cpuid.h"
#include "../../vmm/arch/x86/e820.h"
#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/arch/x86/loader.h"
#include "../../vmm/arch/x86/mptable.h"
#include "../../vmm/core/guest_mem.h"
#include "unit.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static uint8_t byte_sum(const void *p, size_t len)
{
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s += ((const uint8_t *)p)[i];
	return s;
}

/* ------------------------------------------------------------------------ */
/* RAM split and e820                                                         */
/* ------------------------------------------------------------------------ */

static uint64_t e820_ram_total(const struct x86_e820_entry *e, unsigned n)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		if (e[i].type == X86_E820_RAM)
			total += e[i].size;
	return total;
}

UNIT_TEST(test_e820_256m_has_base_memory_and_ram_from_1m)
{
	struct x86_ram_layout ram;
	x86_ram_split(256 * MiB, &ram);
	UNIT_ASSERT_EQ(ram.low_size, 256 * MiB);
	UNIT_ASSERT_EQ(ram.high_size, 0);
	struct x86_e820_entry e[X86_E820_MAX];
	unsigned n = x86_e820_build(&ram, e, X86_E820_MAX);
	UNIT_ASSERT_EQ(n, 4);
	UNIT_ASSERT_EQ(e[0].addr, 0);
	UNIT_ASSERT_EQ(e[0].size, 0x9fc00);
	UNIT_ASSERT_EQ(e[0].type, X86_E820_RAM);
	UNIT_ASSERT_EQ(e[1].type, X86_E820_RESERVED); /* EBDA */
	UNIT_ASSERT_EQ(e[2].addr, 0xe0000);	      /* ACPI and MP tables */
	UNIT_ASSERT_EQ(e[2].type, X86_E820_RESERVED);
	UNIT_ASSERT_EQ(e[3].addr, 1 * MiB);
	UNIT_ASSERT_EQ(e[3].addr + e[3].size, 256 * MiB);
	for (unsigned i = 1; i < n; i++)
		UNIT_ASSERT(e[i].addr >= e[i - 1].addr + e[i - 1].size);
}

UNIT_TEST(test_ram_split_puts_memory_above_3g_at_4g)
{
	struct x86_ram_layout ram;
	x86_ram_split(5 * GiB, &ram);
	UNIT_ASSERT_EQ(ram.low_size, 3 * GiB);
	UNIT_ASSERT_EQ(ram.high_size, 2 * GiB);
	struct x86_e820_entry e[X86_E820_MAX];
	unsigned n = x86_e820_build(&ram, e, X86_E820_MAX);
	UNIT_ASSERT_EQ(n, 5);
	UNIT_ASSERT_EQ(e[3].addr + e[3].size, 3 * GiB);
	UNIT_ASSERT_EQ(e[4].addr, 4 * GiB);
	UNIT_ASSERT_EQ(e[4].size, 2 * GiB);
	/* Only the legacy hole below 1 MiB is lost. */
	UNIT_ASSERT_EQ(e820_ram_total(e, n), 5 * GiB - (1 * MiB - 0x9fc00));
}

UNIT_TEST(test_ram_split_exactly_3g_has_no_high_ram)
{
	struct x86_ram_layout ram;
	x86_ram_split(3 * GiB, &ram);
	UNIT_ASSERT_EQ(ram.low_size, 3 * GiB);
	UNIT_ASSERT_EQ(ram.high_size, 0);
	struct x86_e820_entry e[X86_E820_MAX];
	UNIT_ASSERT_EQ(x86_e820_build(&ram, e, X86_E820_MAX), 4);
}

UNIT_TEST(test_e820_layout_keeps_the_hole_for_devices)
{
	/* The MMIO hole holds the virtio windows, IOAPIC, LAPIC, KVM's TSS. */
	UNIT_ASSERT(X86_LOW_RAM_MAX <= X86_VIRTIO_MMIO_BASE);
	UNIT_ASSERT(X86_VIRTIO_MMIO_BASE + 11ull * 0x200 < X86_IOAPIC_GPA);
	UNIT_ASSERT(X86_TSS_GPA + 3ull * 4096 <= X86_HIGH_RAM_GPA);
	UNIT_ASSERT(X86_IDENTITY_MAP_GPA + 4096 <= X86_TSS_GPA);
}

/* ------------------------------------------------------------------------ */
/* MP table                                                                   */
/* ------------------------------------------------------------------------ */

struct mp_view {
	const uint8_t *fp;
	const uint8_t *cfg;
	uint16_t cfg_len;
	uint16_t count;
};

static struct mp_view mp_view(const uint8_t *buf)
{
	struct mp_view v = {.fp = buf, .cfg = buf + 16};
	memcpy(&v.cfg_len, v.cfg + 4, 2);
	memcpy(&v.count, v.cfg + 34, 2);
	return v;
}

/* Walks the configuration table entries; returns the entry type counts. */
static void mp_count_types(const struct mp_view *v, unsigned counts[5])
{
	memset(counts, 0, 5 * sizeof(unsigned));
	const uint8_t *e = v->cfg + 44;
	for (unsigned i = 0; i < v->count; i++) {
		counts[e[0]]++;
		e += e[0] == 0 ? 20 : 8;
	}
}

UNIT_TEST(test_mptable_one_cpu_has_valid_checksums_and_entries)
{
	static uint8_t buf[X86_MPTABLE_AREA];
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_mptable_build(buf, sizeof(buf), X86_MPTABLE_GPA, 1, &err), 0);
	struct mp_view v = mp_view(buf);
	UNIT_ASSERT(memcmp(v.fp, "_MP_", 4) == 0);
	UNIT_ASSERT_EQ(byte_sum(v.fp, 16), 0);
	uint32_t physptr;
	memcpy(&physptr, v.fp + 4, 4);
	UNIT_ASSERT_EQ(physptr, X86_MPTABLE_GPA + 16);
	UNIT_ASSERT_EQ(v.fp[9], 4); /* spec 1.4 */
	UNIT_ASSERT(memcmp(v.cfg, "PCMP", 4) == 0);
	UNIT_ASSERT_EQ(byte_sum(v.cfg, v.cfg_len), 0);
	UNIT_ASSERT_EQ(v.count, 1 + 1 + 1 + 16 + 2);
	UNIT_ASSERT_EQ(16 + v.cfg_len, x86_mptable_size(1));
	unsigned counts[5];
	mp_count_types(&v, counts);
	UNIT_ASSERT_EQ(counts[0], 1);  /* processors */
	UNIT_ASSERT_EQ(counts[1], 1);  /* ISA bus */
	UNIT_ASSERT_EQ(counts[2], 1);  /* IOAPIC */
	UNIT_ASSERT_EQ(counts[3], 16); /* ISA IRQs */
	UNIT_ASSERT_EQ(counts[4], 2);  /* LINT0 ExtINT, LINT1 NMI */
	const uint8_t *cpu = v.cfg + 44;
	UNIT_ASSERT_EQ(cpu[1], 0);    /* APIC id */
	UNIT_ASSERT_EQ(cpu[3], 0x03); /* enabled, bootstrap */
	uint32_t lapic;
	memcpy(&lapic, v.cfg + 36, 4);
	UNIT_ASSERT_EQ(lapic, X86_LAPIC_GPA);
}

UNIT_TEST(test_mptable_254_cpus_fits_and_ioapic_takes_id_254)
{
	static uint8_t buf[X86_MPTABLE_AREA];
	struct perr err = {0};
	UNIT_ASSERT(x86_mptable_size(254) <= X86_MPTABLE_AREA);
	UNIT_ASSERT_EQ(x86_mptable_build(buf, sizeof(buf), X86_MPTABLE_GPA, 254, &err), 0);
	struct mp_view v = mp_view(buf);
	UNIT_ASSERT_EQ(byte_sum(v.fp, 16), 0);
	UNIT_ASSERT_EQ(byte_sum(v.cfg, v.cfg_len), 0);
	UNIT_ASSERT_EQ(v.count, 254 + 20);
	const uint8_t *e = v.cfg + 44;
	for (unsigned i = 0; i < 254; i++, e += 20) {
		UNIT_ASSERT_EQ(e[0], 0);
		UNIT_ASSERT_EQ(e[1], i);
		UNIT_ASSERT_EQ(e[3], i == 0 ? 0x03 : 0x01);
	}
	e += 8; /* bus */
	UNIT_ASSERT_EQ(e[0], 2);
	UNIT_ASSERT_EQ(e[1], 254);
	e += 8;
	for (unsigned irq = 0; irq < 16; irq++, e += 8) {
		UNIT_ASSERT_EQ(e[0], 3);
		UNIT_ASSERT_EQ(e[5], irq); /* source bus IRQ */
		UNIT_ASSERT_EQ(e[6], 254); /* to the IOAPIC */
		UNIT_ASSERT_EQ(e[7], irq); /* pin = GSI, KVM's default routing */
	}
}

UNIT_TEST(test_mptable_rejects_0_and_255_cpus_and_short_buffers)
{
	static uint8_t buf[X86_MPTABLE_AREA];
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_mptable_build(buf, sizeof(buf), X86_MPTABLE_GPA, 0, &err), -EINVAL);
	UNIT_ASSERT_EQ(x86_mptable_build(buf, sizeof(buf), X86_MPTABLE_GPA, 255, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "1 to 254");
	UNIT_ASSERT_EQ(x86_mptable_build(buf, 100, X86_MPTABLE_GPA, 2, &err), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* bzImage header and the zero page                                           */
/* ------------------------------------------------------------------------ */

/* A bzImage head as the kernel's build writes it (only the fields read). */
static void fake_bzimage_head(uint8_t *img, uint8_t setup_sects, uint16_t version,
			      uint16_t xloadflags)
{
	memset(img, 0, 4096);
	struct setup_header *h = (struct setup_header *)(img + X86_SETUP_HDR_OFFSET);
	h->setup_sects = setup_sects;
	h->boot_flag = X86_BOOT_FLAG;
	h->header = X86_HDRS_MAGIC;
	h->version = version;
	h->loadflags = LOADED_HIGH;
	h->code32_start = 0x100000;
	h->initrd_addr_max = 0x7fffffff;
	h->kernel_alignment = 0x200000;
	h->relocatable_kernel = 1;
	h->xloadflags = xloadflags;
	h->cmdline_size = 2047;
	h->pref_address = 0x1000000;
	h->init_size = 0x800000;
	img[0x201] = 0x66; /* jump offset: the header ends at 0x268 */
}

UNIT_TEST(test_bzimage_parse_reads_the_setup_header)
{
	static uint8_t img[4096];
	fake_bzimage_head(img, 27, 0x020f, XLF_KERNEL_64);
	struct x86_bzimage bz;
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, sizeof(img), 3 * MiB, &bz, &err), 0);
	UNIT_ASSERT_EQ(bz.payload_offset, 28 * 512);
	UNIT_ASSERT_EQ(bz.payload_size, 3 * MiB - 28ull * 512);
	UNIT_ASSERT_EQ(bz.version, 0x020f);
	UNIT_ASSERT_EQ(bz.cmdline_max, 2047);
	UNIT_ASSERT_EQ(bz.initrd_addr_max, 0x7fffffff);
	UNIT_ASSERT_EQ(bz.pref_address, 0x1000000);
	UNIT_ASSERT_EQ(bz.init_size, 0x800000);
}

UNIT_TEST(test_bzimage_parse_setup_sects_0_means_4)
{
	static uint8_t img[4096];
	fake_bzimage_head(img, 0, 0x020f, XLF_KERNEL_64);
	struct x86_bzimage bz;
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, sizeof(img), 1 * MiB, &bz, &err), 0);
	UNIT_ASSERT_EQ(bz.payload_offset, 5 * 512);
}

UNIT_TEST(test_bzimage_parse_rejects_old_protocol_and_no_64bit_entry)
{
	static uint8_t img[4096];
	struct x86_bzimage bz;
	struct perr err = {0};
	fake_bzimage_head(img, 4, 0x0209, XLF_KERNEL_64);
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, sizeof(img), 1 * MiB, &bz, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "2.09 is too old");
	fake_bzimage_head(img, 4, 0x020f, 0);
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, sizeof(img), 1 * MiB, &bz, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "64-bit entry");
	fake_bzimage_head(img, 4, 0x020f, XLF_KERNEL_64);
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, 2048, 2048, &bz, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "truncated");
	memset(img + 0x202, 0, 4);
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, sizeof(img), 1 * MiB, &bz, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "not a bzImage");
}

static const struct x86_e820_entry test_e820[] = {
    {0, 0x9fc00, X86_E820_RAM},
    {0x9fc00, 0x400, X86_E820_RESERVED},
    {0x100000, 0x7f00000, X86_E820_RAM},
};

UNIT_TEST(test_boot_params_carry_header_cmdline_initrd_and_e820)
{
	static uint8_t img[4096];
	fake_bzimage_head(img, 27, 0x020f, XLF_KERNEL_64);
	struct x86_bzimage bz;
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, sizeof(img), 3 * MiB, &bz, &err), 0);
	struct x86_boot_args a = {
	    .kernel_load_gpa = 0x100000,
	    .cmdline_gpa = X86_CMDLINE_GPA,
	    .cmdline_len = 30,
	    .initrd_gpa = 0x7000000,
	    .initrd_size = 0x123456,
	    .e820 = test_e820,
	    .n_e820 = 3,
	    .rsdp_gpa = 0xe0000,
	};
	static struct boot_params bp;
	UNIT_ASSERT_EQ(x86_boot_params_build(&bp, &bz, &a, &err), 0);
	UNIT_ASSERT_EQ(bp.hdr.setup_sects, 27); /* copied from the image */
	UNIT_ASSERT_EQ(bp.hdr.header, X86_HDRS_MAGIC);
	UNIT_ASSERT_EQ(bp.hdr.type_of_loader, 0xff);
	UNIT_ASSERT_EQ(bp.hdr.cmd_line_ptr, X86_CMDLINE_GPA);
	UNIT_ASSERT_EQ(bp.ext_cmd_line_ptr, 0);
	UNIT_ASSERT_EQ(bp.hdr.ramdisk_image, 0x7000000);
	UNIT_ASSERT_EQ(bp.hdr.ramdisk_size, 0x123456);
	UNIT_ASSERT_EQ(bp.hdr.code32_start, 0x100000);
	UNIT_ASSERT_EQ(bp.hdr.vid_mode, 0xffff);
	UNIT_ASSERT_EQ(bp.acpi_rsdp_addr, 0xe0000);
	UNIT_ASSERT_EQ(bp.e820_entries, 3);
	UNIT_ASSERT_EQ(bp.e820_table[2].addr, 0x100000);
	UNIT_ASSERT_EQ(bp.e820_table[2].size, 0x7f00000);
	UNIT_ASSERT_EQ(bp.e820_table[1].type, X86_E820_RESERVED);
}

UNIT_TEST(test_boot_params_reject_a_command_line_longer_than_the_kernel_takes)
{
	static uint8_t img[4096];
	fake_bzimage_head(img, 4, 0x020f, XLF_KERNEL_64);
	struct x86_bzimage bz;
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, sizeof(img), 1 * MiB, &bz, &err), 0);
	struct x86_boot_args a = {.cmdline_len = 2048, .e820 = test_e820, .n_e820 = 3};
	static struct boot_params bp;
	UNIT_ASSERT_EQ(x86_boot_params_build(&bp, &bz, &a, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "at most 2047");
	a.cmdline_len = 2047;
	UNIT_ASSERT_EQ(x86_boot_params_build(&bp, &bz, &a, &err), 0);
}

UNIT_TEST(test_boot_params_without_image_header_are_synthesized)
{
	struct x86_boot_args a = {.cmdline_gpa = X86_CMDLINE_GPA, .e820 = test_e820, .n_e820 = 3};
	static struct boot_params bp;
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_boot_params_build(&bp, NULL, &a, &err), 0);
	UNIT_ASSERT_EQ(bp.hdr.boot_flag, X86_BOOT_FLAG);
	UNIT_ASSERT_EQ(bp.hdr.header, X86_HDRS_MAGIC);
	UNIT_ASSERT_EQ(bp.hdr.version, X86_BOOT_PROTOCOL_SYNTH);
	UNIT_ASSERT_EQ(bp.hdr.type_of_loader, 0xff);
	UNIT_ASSERT_EQ(bp.hdr.ramdisk_size, 0);
	UNIT_ASSERT_EQ(bp.e820_entries, 3);
}

UNIT_TEST(test_boot_params_give_rsdp_only_to_protocol_2_14_and_later)
{
	static uint8_t img[4096];
	fake_bzimage_head(img, 4, 0x020d, XLF_KERNEL_64);
	struct x86_bzimage bz;
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_bzimage_parse(img, sizeof(img), 1 * MiB, &bz, &err), 0);
	struct x86_boot_args a = {.e820 = test_e820, .n_e820 = 3, .rsdp_gpa = 0xe0000};
	static struct boot_params bp;
	UNIT_ASSERT_EQ(x86_boot_params_build(&bp, &bz, &a, &err), 0);
	UNIT_ASSERT_EQ(bp.acpi_rsdp_addr, 0);
}

UNIT_TEST(test_pvh_start_info_has_memmap_cmdline_and_initrd_module)
{
	uint8_t buf[512];
	struct x86_boot_args a = {
	    .cmdline_gpa = X86_CMDLINE_GPA,
	    .initrd_gpa = 0x7000000,
	    .initrd_size = 0x4000,
	    .e820 = test_e820,
	    .n_e820 = 3,
	};
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_pvh_info_build(buf, sizeof(buf), X86_PVH_INFO_GPA, &a, &err), 0);
	struct x86_pvh_start_info si;
	memcpy(&si, buf, sizeof(si));
	UNIT_ASSERT_EQ(si.magic, 0x336ec578);
	UNIT_ASSERT_EQ(si.version, 1);
	UNIT_ASSERT_EQ(si.cmdline_paddr, X86_CMDLINE_GPA);
	UNIT_ASSERT_EQ(si.nr_modules, 1);
	UNIT_ASSERT_EQ(si.modlist_paddr, X86_PVH_INFO_GPA + 56);
	struct x86_pvh_module mod;
	memcpy(&mod, buf + si.modlist_paddr - X86_PVH_INFO_GPA, sizeof(mod));
	UNIT_ASSERT_EQ(mod.paddr, 0x7000000);
	UNIT_ASSERT_EQ(mod.size, 0x4000);
	UNIT_ASSERT_EQ(si.memmap_entries, 3);
	struct x86_pvh_memmap_entry map[3];
	memcpy(map, buf + si.memmap_paddr - X86_PVH_INFO_GPA, sizeof(map));
	UNIT_ASSERT_EQ(map[2].addr, 0x100000);
	UNIT_ASSERT_EQ(map[2].size, 0x7f00000);
	UNIT_ASSERT_EQ(map[2].type, X86_E820_RAM);
	UNIT_ASSERT_EQ(si.memmap_paddr + 3ull * 24 - X86_PVH_INFO_GPA, x86_pvh_info_size(3));
}

UNIT_TEST(test_pvh_start_info_without_initrd_has_no_modules)
{
	uint8_t buf[512];
	struct x86_boot_args a = {.cmdline_gpa = X86_CMDLINE_GPA, .e820 = test_e820, .n_e820 = 3};
	struct perr err = {0};
	UNIT_ASSERT_EQ(x86_pvh_info_build(buf, sizeof(buf), X86_PVH_INFO_GPA, &a, &err), 0);
	struct x86_pvh_start_info si;
	memcpy(&si, buf, sizeof(si));
	UNIT_ASSERT_EQ(si.nr_modules, 0);
	UNIT_ASSERT_EQ(si.modlist_paddr, 0);
	UNIT_ASSERT_EQ(x86_pvh_info_build(buf, 60, X86_PVH_INFO_GPA, &a, &err), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Loaders                                                                    */
/* ------------------------------------------------------------------------ */

struct test_ram {
	struct guest_mem mem;
	uint8_t *buf;
	uint64_t size;
	char path[64];
};

static void test_ram_init(struct test_ram *r, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->buf = calloc(1, size);
	guest_mem_add_region(&r->mem, 0, size, r->buf);
	snprintf(r->path, sizeof(r->path), "/tmp/petrel-x86-boot-XXXXXX");
	int fd = mkstemp(r->path);
	close(fd);
}

static void test_ram_write_file(struct test_ram *r, const void *data, size_t len)
{
	FILE *f = fopen(r->path, "w");
	fwrite(data, 1, len, f);
	fclose(f);
}

static void test_ram_free(struct test_ram *r)
{
	unlink(r->path);
	free(r->buf);
}

/* An ELF64 x86_64 image: one PT_LOAD (16 bytes of 0xcc, 32 in memory) at
 * 2 MiB and, when pvh_entry, a PT_NOTE with XEN_ELFNOTE_PHYS32_ENTRY. */
static size_t fake_elf(uint8_t *out, uint64_t e_entry, uint64_t pvh_entry)
{
	memset(out, 0, 4096);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)out;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_machine = EM_X86_64;
	eh->e_entry = e_entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = pvh_entry ? 2 : 1;
	Elf64_Phdr *ph = (Elf64_Phdr *)(out + sizeof(*eh));
	ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
			     .p_offset = 0x800,
			     .p_paddr = 2 * MiB,
			     .p_filesz = 16,
			     .p_memsz = 32};
	memset(out + 0x800, 0xcc, 16);
	if (pvh_entry) {
		uint8_t *note = out + 0x400;
		Elf64_Nhdr nh = {.n_namesz = 4, .n_descsz = 8, .n_type = 18};
		memcpy(note, &nh, sizeof(nh));
		memcpy(note + sizeof(nh), "Xen", 4);
		memcpy(note + sizeof(nh) + 4, &pvh_entry, 8);
		ph[1] = (Elf64_Phdr){
		    .p_type = PT_NOTE, .p_offset = 0x400, .p_filesz = sizeof(nh) + 4 + 8};
	}
	return 0x810;
}

UNIT_TEST(test_loader_elf_with_pvh_note_is_entered_in_32bit_mode)
{
	struct test_ram r;
	test_ram_init(&r, 64 * MiB);
	uint8_t img[4096];
	size_t len = fake_elf(img, 2 * MiB, 2 * MiB + 8);
	test_ram_write_file(&r, img, len);
	memset(r.buf + 2 * MiB + 16, 0x55, 16); /* bss must come out zeroed */
	struct x86_kernel k;
	struct perr err = {0};
	int rc = x86_kernel_load(&r.mem, r.size, r.path, &k, &err);
	bool loaded = r.buf[2 * MiB] == 0xcc && r.buf[2 * MiB + 15] == 0xcc;
	bool bss = r.buf[2 * MiB + 16] == 0 && r.buf[2 * MiB + 31] == 0;
	test_ram_free(&r);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(k.format, X86_KERNEL_ELF);
	UNIT_ASSERT_EQ(k.mode, X86_ENTRY_PVH32);
	UNIT_ASSERT_EQ(k.entry, 2 * MiB + 8);
	UNIT_ASSERT_EQ(k.end_gpa, 2 * MiB + 32);
	UNIT_ASSERT(loaded);
	UNIT_ASSERT(bss);
}

UNIT_TEST(test_loader_elf_without_note_uses_e_entry_in_64bit_mode)
{
	struct test_ram r;
	test_ram_init(&r, 64 * MiB);
	uint8_t img[4096];
	size_t len = fake_elf(img, 2 * MiB + 4, 0);
	test_ram_write_file(&r, img, len);
	struct x86_kernel k;
	struct perr err = {0};
	int rc = x86_kernel_load(&r.mem, r.size, r.path, &k, &err);
	/* A virtual entry point is refused with a reason. */
	len = fake_elf(img, 0xffffffff81000000ull, 0);
	test_ram_write_file(&r, img, len);
	struct x86_kernel k2;
	int rc2 = x86_kernel_load(&r.mem, r.size, r.path, &k2, &err);
	test_ram_free(&r);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(k.mode, X86_ENTRY_LONG64);
	UNIT_ASSERT_EQ(k.entry, 2 * MiB + 4);
	UNIT_ASSERT_EQ(rc2, -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "entry point");
}

UNIT_TEST(test_loader_raw_image_is_loaded_and_entered_at_1m)
{
	struct test_ram r;
	test_ram_init(&r, 64 * MiB);
	const uint8_t code[] = {0x90, 0x90, 0xf4};
	test_ram_write_file(&r, code, sizeof(code));
	struct x86_kernel k;
	struct perr err = {0};
	int rc = x86_kernel_load(&r.mem, r.size, r.path, &k, &err);
	bool loaded = memcmp(r.buf + 1 * MiB, code, sizeof(code)) == 0;
	test_ram_free(&r);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(k.format, X86_KERNEL_RAW);
	UNIT_ASSERT_EQ(k.mode, X86_ENTRY_LONG64);
	UNIT_ASSERT_EQ(k.entry, 1 * MiB);
	UNIT_ASSERT(loaded);
}

UNIT_TEST(test_loader_bzimage_payload_goes_to_1m_and_entry_is_startup_64)
{
	struct test_ram r;
	test_ram_init(&r, 64 * MiB);
	static uint8_t img[8192];
	fake_bzimage_head(img, 4, 0x020f, XLF_KERNEL_64);
	memset(img + 5ul * 512, 0xab, sizeof(img) - 5ul * 512);
	test_ram_write_file(&r, img, sizeof(img));
	struct x86_kernel k;
	struct perr err = {0};
	int rc = x86_kernel_load(&r.mem, r.size, r.path, &k, &err);
	bool loaded =
	    r.buf[1 * MiB] == 0xab && r.buf[1 * MiB + sizeof(img) - 5ul * 512 - 1] == 0xab;
	test_ram_free(&r);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(k.format, X86_KERNEL_BZIMAGE);
	UNIT_ASSERT_EQ(k.entry, 1 * MiB + 0x200);
	/* The kernel decompresses to its preferred address: init_size from there. */
	UNIT_ASSERT_EQ(k.end_gpa, 0x1000000 + 0x800000);
	UNIT_ASSERT(loaded);
}

UNIT_TEST(test_initrd_goes_high_page_aligned_below_initrd_addr_max)
{
	struct test_ram r;
	test_ram_init(&r, 64 * MiB);
	static uint8_t data[5000];
	memset(data, 0x5a, sizeof(data));
	test_ram_write_file(&r, data, sizeof(data));
	struct x86_kernel k = {.end_gpa = 8 * MiB, .initrd_addr_max = 32 * MiB - 1};
	uint64_t gpa = 0, size = 0;
	struct perr err = {0};
	int rc = x86_initrd_load(&r.mem, r.size, &k, r.path, &gpa, &size, &err);
	bool loaded = rc == 0 && r.buf[gpa] == 0x5a && r.buf[gpa + size - 1] == 0x5a;
	/* Limited by RAM rather than by the kernel. */
	k.initrd_addr_max = 0xffffffff;
	uint64_t gpa2 = 0;
	int rc2 = x86_initrd_load(&r.mem, r.size, &k, r.path, &gpa2, &size, &err);
	test_ram_free(&r);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(size, sizeof(data));
	UNIT_ASSERT_EQ(gpa % 4096, 0);
	UNIT_ASSERT(gpa + size <= 32 * MiB);
	UNIT_ASSERT(gpa + size > 32 * MiB - 2ull * 4096);
	UNIT_ASSERT(loaded);
	UNIT_ASSERT_EQ(rc2, 0);
	UNIT_ASSERT(gpa2 + size <= 64 * MiB && gpa2 > 60 * MiB);
}

UNIT_TEST(test_initrd_that_does_not_fit_above_the_kernel_fails)
{
	struct test_ram r;
	test_ram_init(&r, 16 * MiB);
	static uint8_t data[4096];
	test_ram_write_file(&r, data, sizeof(data));
	struct x86_kernel k = {.end_gpa = 16 * MiB - 100, .initrd_addr_max = 0xffffffff};
	uint64_t gpa, size;
	struct perr err = {0};
	int rc = x86_initrd_load(&r.mem, r.size, &k, r.path, &gpa, &size, &err);
	test_ram_free(&r);
	UNIT_ASSERT_EQ(rc, -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "do not fit");
}

/* ------------------------------------------------------------------------ */
/* CPUID                                                                      */
/* ------------------------------------------------------------------------ */

static struct kvm_cpuid2 *fake_supported(const char *vendor)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 16 * sizeof(struct kvm_cpuid_entry2));
	struct kvm_cpuid_entry2 *e = c->entries;
	e[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd};
	memcpy(&e[0].ebx, vendor, 4);
	memcpy(&e[0].edx, vendor + 4, 4);
	memcpy(&e[0].ecx, vendor + 8, 4);
	e[1] = (struct kvm_cpuid_entry2){
	    .function = 1, .eax = 0x806f8, .ebx = 0x00ff0800 | 0x07000000, .edx = 1u << 28};
	/* leaf 4: L1d and L3 */
	e[2] = (struct kvm_cpuid_entry2){.function = 4,
					 .index = 0,
					 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
					 .eax = 0x21 | 0xfc000000};
	e[3] = (struct kvm_cpuid_entry2){.function = 4,
					 .index = 1,
					 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
					 .eax = 0x63 | 0xfc000000};
	e[4] = (struct kvm_cpuid_entry2){
	    .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 2};
	e[5] = (struct kvm_cpuid_entry2){.function = 0x80000008, .ecx = 0x7007};
	e[6] = (struct kvm_cpuid_entry2){.function = 0x8000001e, .eax = 9};
	c->nent = 7;
	return c;
}

UNIT_TEST(test_cpuid_gives_each_vcpu_its_apic_id_and_a_flat_topology)
{
	struct kvm_cpuid2 *sup = fake_supported("GenuineIntel");
	struct kvm_cpuid2 *c = NULL;
	struct perr err = {0};
	int rc = x86_cpuid_for_vcpu(sup, 3, 4, &c, &err);
	free(sup);
	UNIT_ASSERT_EQ(rc, 0);
	struct kvm_cpuid_entry2 *l1 = x86_cpuid_find(c, 1, 0);
	struct kvm_cpuid_entry2 *l4a = x86_cpuid_find(c, 4, 0);
	struct kvm_cpuid_entry2 *l4c = x86_cpuid_find(c, 4, 1);
	struct kvm_cpuid_entry2 *smt = x86_cpuid_find(c, 0xb, 0);
	struct kvm_cpuid_entry2 *core = x86_cpuid_find(c, 0xb, 1);
	struct kvm_cpuid_entry2 *end = x86_cpuid_find(c, 0xb, 2);
	struct kvm_cpuid_entry2 *hv = x86_cpuid_find(c, 0x40000000, 0);
	struct kvm_cpuid_entry2 l1v = *l1, l4av = *l4a, l4cv = *l4c, smtv = *smt, corev = *core,
				endv = *end, hvv = *hv;
	free(c);
	UNIT_ASSERT_EQ(l1v.ebx >> 24, 3);
	UNIT_ASSERT_EQ((l1v.ebx >> 16) & 0xff, 4);
	UNIT_ASSERT_EQ(l1v.ebx & 0xffff, 0x0800);    /* CLFLUSH size kept */
	UNIT_ASSERT(l1v.ecx & (1u << 31));	     /* hypervisor */
	UNIT_ASSERT(l1v.edx & (1u << 28));	     /* HTT: more than one logical CPU */
	UNIT_ASSERT_EQ(l4av.eax >> 26, 3);	     /* 4 cores per package */
	UNIT_ASSERT_EQ((l4av.eax >> 14) & 0xfff, 0); /* L1 is per core */
	UNIT_ASSERT_EQ((l4cv.eax >> 14) & 0xfff, 3); /* L3 shared by all 4 */
	UNIT_ASSERT_EQ(smtv.ebx, 1);
	UNIT_ASSERT_EQ(smtv.ecx, 0x100);
	UNIT_ASSERT_EQ(smtv.edx, 3);
	UNIT_ASSERT_EQ(corev.eax, 2); /* APIC id bits below the package */
	UNIT_ASSERT_EQ(corev.ebx, 4);
	UNIT_ASSERT_EQ(corev.ecx, 0x201);
	UNIT_ASSERT_EQ(corev.edx, 3);
	UNIT_ASSERT_EQ((endv.ecx >> 8) & 0xff, 0);
	UNIT_ASSERT_EQ(hvv.eax, 0x40000001);
	char sig[13] = {0};
	memcpy(sig, &hvv.ebx, 4);
	memcpy(sig + 4, &hvv.ecx, 4);
	memcpy(sig + 8, &hvv.edx, 4);
	UNIT_ASSERT_STREQ(sig, "KVMKVMKVM");
}

UNIT_TEST(test_cpuid_single_vcpu_has_no_htt)
{
	struct kvm_cpuid2 *sup = fake_supported("GenuineIntel");
	struct kvm_cpuid2 *c = NULL;
	struct perr err = {0};
	int rc = x86_cpuid_for_vcpu(sup, 0, 1, &c, &err);
	free(sup);
	UNIT_ASSERT_EQ(rc, 0);
	uint32_t edx = x86_cpuid_find(c, 1, 0)->edx;
	uint32_t ebx = x86_cpuid_find(c, 1, 0)->ebx;
	free(c);
	UNIT_ASSERT(!(edx & (1u << 28)));
	UNIT_ASSERT_EQ(ebx >> 24, 0);
}

UNIT_TEST(test_cpuid_amd_core_count_and_extended_apic_id)
{
	struct kvm_cpuid2 *sup = fake_supported("AuthenticAMD");
	struct kvm_cpuid2 *c = NULL;
	struct perr err = {0};
	int rc = x86_cpuid_for_vcpu(sup, 5, 8, &c, &err);
	free(sup);
	UNIT_ASSERT_EQ(rc, 0);
	uint32_t ecx8 = x86_cpuid_find(c, 0x80000008, 0)->ecx;
	uint32_t eax1e = x86_cpuid_find(c, 0x8000001e, 0)->eax;
	free(c);
	UNIT_ASSERT_EQ(ecx8 & 0xff, 7);	       /* NC: 8 cores */
	UNIT_ASSERT_EQ((ecx8 >> 12) & 0xf, 3); /* APIC id core bits */
	UNIT_ASSERT_EQ(eax1e, 5);
}

UNIT_TEST(test_cpuid_rejects_apic_id_outside_the_vm)
{
	struct kvm_cpuid2 *sup = fake_supported("GenuineIntel");
	struct kvm_cpuid2 *c = NULL;
	struct perr err = {0};
	int rc = x86_cpuid_for_vcpu(sup, 4, 4, &c, &err);
	free(sup);
	UNIT_ASSERT_EQ(rc, -EINVAL);
	UNIT_ASSERT(c == NULL);
}

UNIT_MAIN("x86_boot")
