#include "acpi_tables.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"
#include "layout.h"
#include "mptable.h"

/* Table revisions of ACPI 6.3 (§5.2). Linux takes anything from ACPI 2.0 on;
 * 6.3 is also the newest the iasl in Debian bookworm disassembles. */
#define RSDP_REVISION	  2
#define XSDT_REVISION	  1
#define FADT_REVISION	  6
#define FADT_MINOR	  3
#define MADT_REVISION	  5
#define DSDT_REVISION	  2 /* 2 and up: AML integers are 64 bits */
#define ACPI_CREATOR_ID	  "PTRL"
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_REV  1

/* Tables start on 16-byte boundaries; the RSDP must (§5.2.5.1). */
#define ACPI_ALIGN 16

/* KVM's in-kernel IOAPIC (KVM_IOAPIC_NUM_PINS). */
#define IOAPIC_PINS 24

/* §5.2.6 System Description Table Header. */
struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* §5.2.5.3 Root System Description Pointer (revision 2). */
struct acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* of the first 20 bytes, the ACPI 1.0 part */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* of all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

#define RSDP_V1_LENGTH 20

/* §5.2.3.2 Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

#define GAS_SYSTEM_IO	     1
#define GAS_ACCESS_SIZE_BYTE 1

/* §5.2.9 Fixed ACPI Description Table (revision 6). */
struct acpi_fadt {
	struct acpi_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));

/* FADT Flags (Table 5.34) and IA-PC Boot Architecture Flags (Table 5.35). */
#define FADT_F_WBINVD		       (1u << 0)
#define FADT_F_HW_REDUCED_ACPI	       (1u << 20)
#define FADT_BOOT_LEGACY_DEVICES       (1u << 0)
#define FADT_BOOT_8042		       (1u << 1)
#define FADT_BOOT_VGA_NOT_PRESENT      (1u << 2)
#define FADT_BOOT_CMOS_RTC_NOT_PRESENT (1u << 5)

/* §5.2.12 Multiple APIC Description Table and its entries. */
struct acpi_madt {
	struct acpi_header header;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

struct madt_lapic {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type;
	uint8_t length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct madt_lapic_nmi {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

#define MADT_TYPE_LAPIC	    0
#define MADT_TYPE_IOAPIC    1
#define MADT_TYPE_LAPIC_NMI 4
#define MADT_LAPIC_ENABLED  (1u << 0)
#define MADT_ALL_PROCESSORS 0xff
#define MADT_NMI_CONFORMING 0 /* polarity and trigger as the bus says */

_Static_assert(sizeof(struct acpi_header) == 36, "table header is 36 bytes");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP revision 2 is 36 bytes");
_Static_assert(sizeof(struct acpi_gas) == 12, "a GAS is 12 bytes");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header is 44 bytes");
_Static_assert(sizeof(struct madt_lapic) == 8, "MADT LAPIC entry is 8 bytes");
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT IOAPIC entry is 12 bytes");
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT LAPIC NMI entry is 6 bytes");

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Every table's bytes, checksum included, add up to 0 (§5.2.6). */
static uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return (uint8_t)-sum;
}

static void acpi_header_init(struct acpi_header *h, const char *signature, size_t length,
			     uint8_t revision)
{
	memcpy(h->signature, signature, sizeof(h->signature));
	h->length = htole32((uint32_t)length);
	h->revision = revision;
	memcpy(h->oem_id, ACPI_TABLES_OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, ACPI_TABLES_OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = htole32(ACPI_OEM_REVISION);
	memcpy(h->creator_id, ACPI_CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = htole32(ACPI_CREATOR_REV);
}

/* Call last, when the table's bytes are final. */
static void acpi_header_seal(struct acpi_header *h, size_t length)
{
	h->checksum = 0;
	h->checksum = acpi_checksum(h, length);
}

static int acpi_check_config(const struct acpi_config *cfg, struct perr *err)
{
	if (cfg->ncpus < 1 || cfg->ncpus > ACPI_TABLES_MAX_CPUS)
		return perr_setx(err, -EINVAL, "ACPI: %u CPUs, the tables describe 1 to %u",
				 cfg->ncpus, ACPI_TABLES_MAX_CPUS);
	if (!cfg->pm_sleep_ctl_port || !cfg->pm_sleep_sts_port ||
	    cfg->pm_sleep_ctl_port == cfg->pm_sleep_sts_port)
		return perr_setx(err, -EINVAL,
				 "ACPI: sleep control and status ports must be two distinct "
				 "non-zero ports (have 0x%x, 0x%x)",
				 cfg->pm_sleep_ctl_port, cfg->pm_sleep_sts_port);
	if (cfg->n_virtio > ACPI_TABLES_MAX_VIRTIO)
		return perr_setx(err, -EINVAL, "ACPI: %u virtio-mmio devices, at most %u",
				 cfg->n_virtio, ACPI_TABLES_MAX_VIRTIO);
	if (cfg->n_virtio && !cfg->virtio)
		return perr_setx(err, -EINVAL, "ACPI: virtio-mmio device list missing");
	for (unsigned i = 0; i < cfg->n_virtio; i++) {
		const struct acpi_mmio_dev *d = &cfg->virtio[i];
		if (!d->size || d->base > UINT32_MAX || d->size > UINT32_MAX - d->base + 1)
			return perr_setx(err, -EINVAL,
					 "ACPI: virtio-mmio device %u at 0x%llx+0x%x is not a "
					 "window below 4 GiB",
					 i, (unsigned long long)d->base, d->size);
		if (d->gsi >= IOAPIC_PINS)
			return perr_setx(
			    err, -EINVAL,
			    "ACPI: virtio-mmio device %u: GSI %u, the IOAPIC has %u pins", i,
			    d->gsi, IOAPIC_PINS);
	}
	return 0;
}

static void dsdt_add_serial(struct aml *a)
{
	size_t dev = aml_device_begin(a, "COM1");
	aml_name_decl(a, "_HID");
	aml_eisa_id(a, "PNP0501");
	aml_name_decl(a, "_UID");
	aml_integer(a, 0);
	aml_name_decl(a, "_CRS");
	size_t crs = aml_resource_template_begin(a);
	aml_resource_io(a, 0x3f8, 8);
	aml_resource_irq(a, X86_IRQ_COM1);
	aml_resource_template_end(a, crs);
	aml_device_end(a, dev);
}

/* With ACPI, Linux's i8042 driver looks for the controller through PNP; when
 * it finds none it probes the ports only if the FADT has the 8042 flag. This
 * device gives it the ports and the keyboard IRQ directly. */
static void dsdt_add_i8042(struct aml *a)
{
	size_t dev = aml_device_begin(a, "PS2K");
	aml_name_decl(a, "_HID");
	aml_eisa_id(a, "PNP0303");
	aml_name_decl(a, "_CRS");
	size_t crs = aml_resource_template_begin(a);
	aml_resource_io(a, 0x60, 1);
	aml_resource_io(a, 0x64, 1);
	aml_resource_irq(a, X86_IRQ_KEYBOARD);
	aml_resource_template_end(a, crs);
	aml_device_end(a, dev);
}

/* Linux's virtio_mmio driver matches _HID "LNRO0005" and takes the window and
 * the interrupt from _CRS. The transport signals through a KVM irqfd, which
 * pulses the IOAPIC pin: edge-triggered is what the guest must program (a
 * level-triggered pin would drop a pulse that arrives before the EOI). */
static void dsdt_add_virtio(struct aml *a, unsigned index, const struct acpi_mmio_dev *d)
{
	/* index < ACPI_TABLES_MAX_VIRTIO: two hex digits. */
	char name[5];
	snprintf(name, sizeof(name), "VR%02X", (unsigned)(uint8_t)index);
	size_t dev = aml_device_begin(a, name);
	aml_name_decl(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_name_decl(a, "_UID");
	aml_integer(a, index);
	aml_name_decl(a, "_CRS");
	size_t crs = aml_resource_template_begin(a);
	aml_resource_memory32_fixed(a, true, (uint32_t)d->base, d->size);
	aml_resource_interrupt(a, AML_IRQ_EDGE, d->gsi);
	aml_resource_template_end(a, crs);
	aml_device_end(a, dev);
}

/* The DSDT: header (filled in by the caller) followed by the AML. */
static void dsdt_build(struct aml *a, const struct acpi_config *cfg)
{
	struct acpi_header header = {0};
	aml_bytes(a, &header, sizeof(header));

	/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved (§7.4.2). Only the
	 * first is used with the HW-reduced sleep control register. */
	aml_name_decl(a, "\\_S5");
	size_t pkg = aml_package_begin(a, 4);
	aml_integer(a, 5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_package_end(a, pkg);

	size_t sb = aml_scope_begin(a, "\\_SB");
	if (cfg->has_serial)
		dsdt_add_serial(a);
	if (cfg->has_i8042)
		dsdt_add_i8042(a);
	for (unsigned i = 0; i < cfg->n_virtio; i++)
		dsdt_add_virtio(a, i, &cfg->virtio[i]);
	aml_scope_end(a, sb);
}

static size_t madt_size(unsigned ncpus)
{
	return sizeof(struct acpi_madt) + ncpus * sizeof(struct madt_lapic) +
	       sizeof(struct madt_ioapic) + sizeof(struct madt_lapic_nmi);
}

static void madt_write(uint8_t *p, const struct acpi_config *cfg)
{
	size_t size = madt_size(cfg->ncpus);
	struct acpi_madt *madt = (struct acpi_madt *)p;
	acpi_header_init(&madt->header, "APIC", size, MADT_REVISION);
	madt->lapic_address = htole32((uint32_t)X86_LAPIC_GPA);
	/* PCAT_COMPAT clear: a HW-reduced guest does not use the 8259s. */
	madt->flags = 0;

	uint8_t *e = p + sizeof(*madt);
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		struct madt_lapic lapic = {
		    .type = MADT_TYPE_LAPIC,
		    .length = sizeof(lapic),
		    .processor_uid = (uint8_t)i,
		    .apic_id = (uint8_t)i,
		    .flags = htole32(MADT_LAPIC_ENABLED),
		};
		memcpy(e, &lapic, sizeof(lapic));
		e += sizeof(lapic);
	}
	struct madt_ioapic ioapic = {
	    .type = MADT_TYPE_IOAPIC,
	    .length = sizeof(ioapic),
	    /* The id the MP table gives it, so both descriptions agree. */
	    .ioapic_id = (uint8_t)x86_mptable_ioapic_id(cfg->ncpus),
	    .address = htole32((uint32_t)X86_IOAPIC_GPA),
	    .gsi_base = 0,
	};
	memcpy(e, &ioapic, sizeof(ioapic));
	e += sizeof(ioapic);
	/* LINT1 of every LAPIC is the NMI input, as on a PC. */
	struct madt_lapic_nmi nmi = {
	    .type = MADT_TYPE_LAPIC_NMI,
	    .length = sizeof(nmi),
	    .processor_uid = MADT_ALL_PROCESSORS,
	    .flags = htole16(MADT_NMI_CONFORMING),
	    .lint = 1,
	};
	memcpy(e, &nmi, sizeof(nmi));
	acpi_header_seal(&madt->header, size);
}

static struct acpi_gas gas_io_byte(uint16_t port)
{
	return (struct acpi_gas){
	    .space_id = GAS_SYSTEM_IO,
	    .bit_width = 8,
	    .bit_offset = 0,
	    .access_size = GAS_ACCESS_SIZE_BYTE,
	    .address = htole64(port),
	};
}

static void fadt_write(uint8_t *p, const struct acpi_config *cfg, uint64_t dsdt_gpa)
{
	struct acpi_fadt *fadt = (struct acpi_fadt *)p;
	acpi_header_init(&fadt->header, "FACP", sizeof(*fadt), FADT_REVISION);
	fadt->minor_version = FADT_MINOR;
	/* HW-reduced: every PM1/PM2/timer/GPE block, SCI_INT, SMI_CMD and the
	 * FACS stay zero (§4.1, §5.2.9); the sleep registers replace PM1_CNT. */
	fadt->flags = htole32(FADT_F_WBINVD | FADT_F_HW_REDUCED_ACPI);
	/* Only X_DSDT: the 32-bit DSDT field must be 0 when X_DSDT is used. */
	fadt->x_dsdt = htole64(dsdt_gpa);
	fadt->sleep_control_reg = gas_io_byte(cfg->pm_sleep_ctl_port);
	fadt->sleep_status_reg = gas_io_byte(cfg->pm_sleep_sts_port);

	/* Linux reads these even in HW-reduced mode: no 8042 flag means "no
	 * keyboard controller, do not probe", and without the no-RTC flag it
	 * registers a CMOS RTC at 0x70. */
	uint16_t boot = FADT_BOOT_VGA_NOT_PRESENT;
	if (cfg->has_serial || cfg->has_i8042)
		boot |= FADT_BOOT_LEGACY_DEVICES;
	if (cfg->has_i8042)
		boot |= FADT_BOOT_8042;
	if (!cfg->has_cmos_rtc)
		boot |= FADT_BOOT_CMOS_RTC_NOT_PRESENT;
	fadt->iapc_boot_arch = htole16(boot);
	acpi_header_seal(&fadt->header, sizeof(*fadt));
}

static void xsdt_write(uint8_t *p, const uint64_t *entries, unsigned n)
{
	size_t size = sizeof(struct acpi_header) + n * sizeof(uint64_t);
	struct acpi_header *h = (struct acpi_header *)p;
	acpi_header_init(h, "XSDT", size, XSDT_REVISION);
	for (unsigned i = 0; i < n; i++) {
		uint64_t le = htole64(entries[i]);
		memcpy(p + sizeof(*h) + i * sizeof(le), &le, sizeof(le));
	}
	acpi_header_seal(h, size);
}

static void rsdp_write(uint8_t *p, uint64_t xsdt_gpa)
{
	struct acpi_rsdp *rsdp = (struct acpi_rsdp *)p;
	memcpy(rsdp->signature, "RSD PTR ", sizeof(rsdp->signature));
	memcpy(rsdp->oem_id, ACPI_TABLES_OEM_ID, sizeof(rsdp->oem_id));
	rsdp->revision = RSDP_REVISION;
	/* No RSDT: every OS that reads revision 2 uses the XSDT. */
	rsdp->rsdt_address = 0;
	rsdp->length = htole32(sizeof(*rsdp));
	rsdp->xsdt_address = htole64(xsdt_gpa);
	rsdp->checksum = acpi_checksum(rsdp, RSDP_V1_LENGTH);
	rsdp->extended_checksum = acpi_checksum(rsdp, sizeof(*rsdp));
}

int acpi_build_tables(struct guest_mem *mem, uint64_t base, uint64_t len,
		      const struct acpi_config *cfg, uint64_t *rsdp_gpa, struct perr *err)
{
	if (base % ACPI_ALIGN)
		return perr_setx(err, -EINVAL, "ACPI tables at 0x%llx: not 16-byte aligned",
				 (unsigned long long)base);
	int ret = acpi_check_config(cfg, err);
	if (ret < 0)
		return ret;

	struct aml dsdt;
	aml_init(&dsdt);
	dsdt_build(&dsdt, cfg);
	ret = aml_error(&dsdt, err);
	if (ret < 0) {
		perr_wrap(err, "ACPI DSDT");
		goto out;
	}

	/* The RSDP first, so that the region's first bytes are what a scan of
	 * the BIOS area looks for; the XSDT lists FADT then MADT. */
	uint64_t rsdp_off = 0;
	uint64_t xsdt_off = align_up(rsdp_off + sizeof(struct acpi_rsdp), ACPI_ALIGN);
	uint64_t xsdt_size = sizeof(struct acpi_header) + 2 * sizeof(uint64_t);
	uint64_t fadt_off = align_up(xsdt_off + xsdt_size, ACPI_ALIGN);
	uint64_t madt_off = align_up(fadt_off + sizeof(struct acpi_fadt), ACPI_ALIGN);
	uint64_t dsdt_off = align_up(madt_off + madt_size(cfg->ncpus), ACPI_ALIGN);
	uint64_t total = dsdt_off + dsdt.len;
	if (total > len) {
		ret = perr_setx(err, -ENOSPC,
				"ACPI tables need %llu bytes, the region at 0x%llx has %llu "
				"(%u CPUs, %u virtio-mmio devices)",
				(unsigned long long)total, (unsigned long long)base,
				(unsigned long long)len, cfg->ncpus, cfg->n_virtio);
		goto out;
	}

	uint8_t *img = calloc(1, total);
	if (!img) {
		ret = perr_set(err, -ENOMEM, "ACPI tables");
		goto out;
	}
	memcpy(img + dsdt_off, dsdt.data, dsdt.len);
	struct acpi_header *dsdt_header = (struct acpi_header *)(img + dsdt_off);
	acpi_header_init(dsdt_header, "DSDT", dsdt.len, DSDT_REVISION);
	acpi_header_seal(dsdt_header, dsdt.len);
	madt_write(img + madt_off, cfg);
	fadt_write(img + fadt_off, cfg, base + dsdt_off);
	const uint64_t xsdt_entries[] = {base + fadt_off, base + madt_off};
	xsdt_write(img + xsdt_off, xsdt_entries, 2);
	rsdp_write(img + rsdp_off, base + xsdt_off);

	ret = guest_mem_write(mem, base, img, total);
	free(img);
	if (ret < 0) {
		perr_setx(err, ret, "ACPI tables at 0x%llx-0x%llx: not guest RAM",
			  (unsigned long long)base, (unsigned long long)(base + total - 1));
		goto out;
	}
	*rsdp_gpa = base + rsdp_off;
out:
	aml_free(&dsdt);
	return ret;
}
