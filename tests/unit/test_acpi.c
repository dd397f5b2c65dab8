/*
 * ACPI tables of the MicroVm machine (vmm/arch/x86/acpi_tables.c), the AML
 * encoder under them (aml.c) and the HW-reduced sleep registers (acpi_pm.c).
 * Tables are read back by the byte offsets of the ACPI 6.3 spec, not through
 * the builder's structs, so a wrong struct layout shows up here. When iasl
 * (Debian's acpica-tools) is installed, it disassembles the tables too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/cleanup.h"
#include "../../vmm/arch/x86/acpi_tables.h"
#include "../../vmm/arch/x86/aml.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/hw/acpi_pm.h"
#include "unit.h"

#define RAM_SIZE    (1u << 20)
#define TABLES_GPA  0xe0000ull
#define TABLES_SIZE 0x10000ull
#define CTL_PORT    ACPI_PM_SLEEP_CTL_PORT
#define STS_PORT    ACPI_PM_SLEEP_STS_PORT

struct machine {
	uint8_t *ram;
	struct guest_mem mem;
	uint64_t rsdp;
};

static const struct acpi_mmio_dev two_virtio[] = {
    {.base = 0xd0000000, .size = 0x200, .gsi = 5},
    {.base = 0xd0000200, .size = 0x200, .gsi = 6},
};

static struct acpi_config config(unsigned ncpus)
{
	return (struct acpi_config){
	    .ncpus = ncpus,
	    .virtio = two_virtio,
	    .n_virtio = 2,
	    .pm_sleep_ctl_port = CTL_PORT,
	    .pm_sleep_sts_port = STS_PORT,
	    .has_serial = true,
	    .has_i8042 = true,
	};
}

static int machine_build(struct machine *m, const struct acpi_config *cfg, uint64_t len,
			 struct perr *err)
{
	memset(m, 0, sizeof(*m));
	m->ram = calloc(1, RAM_SIZE);
	if (!m->ram || guest_mem_add_region(&m->mem, 0, RAM_SIZE, m->ram) < 0)
		return -ENOMEM;
	return acpi_build_tables(&m->mem, TABLES_GPA, len, cfg, &m->rsdp, err);
}

static void machine_free(struct machine *m)
{
	free(m->ram);
	m->ram = NULL;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint8_t byte_sum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return sum;
}

/* A table by guest address, or NULL when it is not a plausible table. */
static const uint8_t *table_at(const struct machine *m, uint64_t gpa)
{
	if (gpa < TABLES_GPA || gpa + 36 > RAM_SIZE)
		return NULL;
	const uint8_t *t = m->ram + gpa;
	if (gpa + le32(t + 4) > RAM_SIZE)
		return NULL;
	return t;
}

/* Follows RSDP → XSDT → sig (or XSDT → FADT → DSDT for "DSDT"). */
static const uint8_t *find_table(const struct machine *m, const char *sig)
{
	const uint8_t *rsdp = m->ram + m->rsdp;
	const uint8_t *xsdt = table_at(m, le64(rsdp + 24));
	if (!xsdt)
		return NULL;
	if (!memcmp(sig, "XSDT", 4))
		return xsdt;
	if (!memcmp(sig, "DSDT", 4)) {
		const uint8_t *fadt = find_table(m, "FACP");
		return fadt ? table_at(m, le64(fadt + 140)) : NULL;
	}
	for (uint32_t off = 36; off + 8 <= le32(xsdt + 4); off += 8) {
		const uint8_t *t = table_at(m, le64(xsdt + off));
		if (t && !memcmp(t, sig, 4))
			return t;
	}
	return NULL;
}

static const uint8_t *memmem_bytes(const uint8_t *hay, size_t hay_len, const uint8_t *needle,
				   size_t len)
{
	return memmem(hay, hay_len, needle, len);
}

/* ---- AML encoder ---- */

static bool aml_equals(const struct aml *a, const uint8_t *expect, size_t len)
{
	return !a->error && a->len == len && !memcmp(a->data, expect, len);
}

UNIT_TEST(test_pkg_length_one_two_three_and_four_bytes)
{
	uint8_t b[4];
	/* The length counts the PkgLength bytes themselves. */
	UNIT_ASSERT_EQ(aml_pkg_length_encode(0, b), 1);
	UNIT_ASSERT_EQ(b[0], 0x01);
	UNIT_ASSERT_EQ(aml_pkg_length_encode(62, b), 1);
	UNIT_ASSERT_EQ(b[0], 0x3f);
	/* 63 + 2 = 65 = 0x041: lead 0x40 | 0x1, then 0x04. */
	UNIT_ASSERT_EQ(aml_pkg_length_encode(63, b), 2);
	UNIT_ASSERT_EQ(b[0], 0x41);
	UNIT_ASSERT_EQ(b[1], 0x04);
	/* 4093 + 2 = 0xfff, the largest two-byte length. */
	UNIT_ASSERT_EQ(aml_pkg_length_encode(4093, b), 2);
	UNIT_ASSERT_EQ(b[0], 0x4f);
	UNIT_ASSERT_EQ(b[1], 0xff);
	/* 4094 + 3 = 0x1001: lead 0x80 | 0x1, then 0x00, 0x01. */
	UNIT_ASSERT_EQ(aml_pkg_length_encode(4094, b), 3);
	UNIT_ASSERT_EQ(b[0], 0x81);
	UNIT_ASSERT_EQ(b[1], 0x00);
	UNIT_ASSERT_EQ(b[2], 0x01);
	UNIT_ASSERT_EQ(aml_pkg_length_encode((1u << 20) - 4, b), 3);
	UNIT_ASSERT_EQ(aml_pkg_length_encode((1u << 20) - 3, b), 4);
	UNIT_ASSERT_EQ(b[0], 0xc1);
	UNIT_ASSERT_EQ(aml_pkg_length_encode((1u << 28) - 5, b), 4);
	UNIT_ASSERT_EQ(aml_pkg_length_encode((1u << 28) - 4, b), 0);
}

UNIT_TEST(test_aml_package_gets_three_byte_pkg_length)
{
	/* A package of 2100 two-byte elements: 4201 bytes of content. */
	struct aml a;
	aml_init(&a);
	size_t pkg = aml_package_begin(&a, 255);
	for (int i = 0; i < 2100; i++)
		aml_integer(&a, 0x80);
	aml_package_end(&a, pkg);
	UNIT_ASSERT_EQ(a.error, 0);
	/* 0x12, PkgLength(4201 + 3 = 0x106c) = 0x8c 0x06 0x01, NumElements. */
	UNIT_ASSERT_EQ(a.len, 1 + 3 + 4201);
	UNIT_ASSERT_EQ(a.data[0], 0x12);
	UNIT_ASSERT_EQ(a.data[1], 0x8c);
	UNIT_ASSERT_EQ(a.data[2], 0x06);
	UNIT_ASSERT_EQ(a.data[3], 0x01);
	UNIT_ASSERT_EQ(a.data[4], 0xff);
	UNIT_ASSERT_EQ(a.data[5], 0x0a);
	aml_free(&a);
}

UNIT_TEST(test_aml_name_strings)
{
	struct aml a;
	aml_init(&a);
	aml_name_string(&a, "\\_SB.COM1");
	static const uint8_t dual[] = {0x5c, 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'};
	UNIT_ASSERT(aml_equals(&a, dual, sizeof(dual)));
	aml_free(&a);

	aml_name_string(&a, "A.B2.C");
	static const uint8_t multi[] = {0x2f, 3,   'A', '_', '_', '_', 'B',
					'2',  '_', '_', 'C', '_', '_', '_'};
	UNIT_ASSERT(aml_equals(&a, multi, sizeof(multi)));
	aml_free(&a);

	aml_name_string(&a, "^^_HID");
	static const uint8_t parent[] = {0x5e, 0x5e, '_', 'H', 'I', 'D'};
	UNIT_ASSERT(aml_equals(&a, parent, sizeof(parent)));
	aml_free(&a);

	aml_name_string(&a, "\\");
	static const uint8_t root[] = {0x5c, 0x00};
	UNIT_ASSERT(aml_equals(&a, root, sizeof(root)));
	aml_free(&a);

	const char *bad[] = {"", "com1", "TOOLONG", "1ABC", "A..B", "AB.", "A-B"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		aml_name_string(&a, bad[i]);
		if (a.error != -EINVAL)
			UNIT_FAIL("name \"%s\" accepted", bad[i]);
		aml_free(&a);
	}
}

UNIT_TEST(test_aml_integers_use_shortest_encoding)
{
	struct aml a;
	aml_init(&a);
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 2);
	aml_integer(&a, 0x1234);
	aml_integer(&a, 0xd0000000);
	aml_integer(&a, 0x100000000ull);
	static const uint8_t expect[] = {
	    0x00, 0x01, 0x0a, 0x02, 0x0b, 0x34, 0x12, 0x0c, 0x00, 0x00, 0x00,
	    0xd0, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	};
	UNIT_ASSERT(aml_equals(&a, expect, sizeof(expect)));
	aml_free(&a);
}

UNIT_TEST(test_aml_eisa_ids_compress_to_dwords)
{
	struct aml a;
	aml_init(&a);
	aml_eisa_id(&a, "PNP0501");
	aml_eisa_id(&a, "PNP0303");
	static const uint8_t expect[] = {0x0c, 0x41, 0xd0, 0x05, 0x01,
					 0x0c, 0x41, 0xd0, 0x03, 0x03};
	UNIT_ASSERT(aml_equals(&a, expect, sizeof(expect)));
	aml_free(&a);

	const char *bad[] = {"PNP050", "pnp0501", "PNP05G1", "PN00501"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		aml_eisa_id(&a, bad[i]);
		if (a.error != -EINVAL)
			UNIT_FAIL("EISA id \"%s\" accepted", bad[i]);
		aml_free(&a);
	}
}

UNIT_TEST(test_aml_errors_are_sticky_and_reported_once)
{
	struct aml a;
	aml_init(&a);
	size_t dev = aml_device_begin(&a, "bad");
	aml_name_decl(&a, "_HID");
	aml_string(&a, "LNRO0005");
	aml_device_end(&a, dev);
	struct perr err = {0};
	UNIT_ASSERT_EQ(aml_error(&a, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "AML name \"bad\"");
	aml_free(&a);
	UNIT_ASSERT_EQ(aml_error(&a, &err), 0);
}

/* ---- Tables ---- */

UNIT_TEST(test_rsdp_revision_2_points_to_xsdt)
{
	struct machine m;
	struct acpi_config cfg = config(2);
	struct perr err = {0};
	int ret = machine_build(&m, &cfg, TABLES_SIZE, &err);
	if (ret < 0) {
		machine_free(&m);
		UNIT_FAIL("build: %s", err.msg);
	}
	/* The region's first bytes, 16-byte aligned: a BIOS-area scan finds it. */
	UNIT_ASSERT_EQ(m.rsdp, TABLES_GPA);
	const uint8_t *rsdp = m.ram + m.rsdp;
	UNIT_ASSERT(!memcmp(rsdp, "RSD PTR ", 8));
	UNIT_ASSERT(!memcmp(rsdp + 9, "PETREL", 6));
	UNIT_ASSERT_EQ(rsdp[15], 2);
	UNIT_ASSERT_EQ(byte_sum(rsdp, 20), 0);
	UNIT_ASSERT_EQ(le32(rsdp + 20), 36);
	UNIT_ASSERT_EQ(byte_sum(rsdp, 36), 0);
	const uint8_t *xsdt = table_at(&m, le64(rsdp + 24));
	UNIT_ASSERT(xsdt);
	UNIT_ASSERT(!memcmp(xsdt, "XSDT", 4));
	machine_free(&m);
}

UNIT_TEST(test_every_table_has_a_valid_header_and_checksum)
{
	struct machine m;
	struct acpi_config cfg = config(4);
	struct perr err = {0};
	int ret = machine_build(&m, &cfg, TABLES_SIZE, &err);
	if (ret < 0) {
		machine_free(&m);
		UNIT_FAIL("build: %s", err.msg);
	}
	static const struct {
		const char *sig;
		uint8_t revision;
	} tables[] = {{"XSDT", 1}, {"FACP", 6}, {"APIC", 5}, {"DSDT", 2}};
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		const uint8_t *t = find_table(&m, tables[i].sig);
		if (!t)
			UNIT_FAIL("%s not found", tables[i].sig);
		if (byte_sum(t, le32(t + 4)) != 0)
			UNIT_FAIL("%s checksum is wrong", tables[i].sig);
		if (t[8] != tables[i].revision)
			UNIT_FAIL("%s revision %u", tables[i].sig, t[8]);
		if (memcmp(t + 10, "PETREL", 6) != 0 || memcmp(t + 16, "PETRELVM", 8) != 0)
			UNIT_FAIL("%s OEM ids", tables[i].sig);
		if ((uintptr_t)(t - m.ram) % 16)
			UNIT_FAIL("%s not 16-byte aligned", tables[i].sig);
	}
	machine_free(&m);
}

UNIT_TEST(test_xsdt_lists_fadt_then_madt)
{
	struct machine m;
	struct acpi_config cfg = config(1);
	struct perr err = {0};
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), 0);
	const uint8_t *xsdt = find_table(&m, "XSDT");
	UNIT_ASSERT(xsdt);
	UNIT_ASSERT_EQ(le32(xsdt + 4), 36 + 2 * 8);
	const uint8_t *first = table_at(&m, le64(xsdt + 36));
	const uint8_t *second = table_at(&m, le64(xsdt + 44));
	UNIT_ASSERT(first && !memcmp(first, "FACP", 4));
	UNIT_ASSERT(second && !memcmp(second, "APIC", 4));
	machine_free(&m);
}

UNIT_TEST(test_fadt_is_hw_reduced_with_sleep_registers_in_io_space)
{
	struct machine m;
	struct acpi_config cfg = config(2);
	struct perr err = {0};
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), 0);
	const uint8_t *fadt = find_table(&m, "FACP");
	UNIT_ASSERT(fadt);
	UNIT_ASSERT_EQ(le32(fadt + 4), 276);
	UNIT_ASSERT_EQ(fadt[131], 3); /* FADT minor version: ACPI 6.3 */
	uint32_t flags = le32(fadt + 112);
	UNIT_ASSERT(flags & (1u << 20));    /* HW_REDUCED_ACPI */
	UNIT_ASSERT(!(flags & (1u << 21))); /* not LOW_POWER_S0_IDLE_CAPABLE */
	UNIT_ASSERT(!(flags & (1u << 10))); /* no RESET_REG */
	/* FACS, 32-bit DSDT, SCI, SMI_CMD and every PM/GPE block: zero. */
	for (unsigned off = 36; off < 108; off++) {
		if (fadt[off])
			UNIT_FAIL("FADT byte %u is 0x%x, expected 0", off, fadt[off]);
	}
	UNIT_ASSERT_EQ(le64(fadt + 132), 0); /* X_FIRMWARE_CTRL */
	for (unsigned off = 148; off < 244; off++) {
		if (fadt[off])
			UNIT_FAIL("FADT X_ block byte %u is 0x%x", off, fadt[off]);
	}
	const uint8_t *dsdt = table_at(&m, le64(fadt + 140));
	UNIT_ASSERT(dsdt && !memcmp(dsdt, "DSDT", 4));
	/* SLEEP_CONTROL_REG and SLEEP_STATUS_REG: SystemIO, 8 bits, byte access. */
	static const uint8_t gas_head[4] = {1, 8, 0, 1};
	UNIT_ASSERT(!memcmp(fadt + 244, gas_head, 4));
	UNIT_ASSERT_EQ(le64(fadt + 248), CTL_PORT);
	UNIT_ASSERT(!memcmp(fadt + 256, gas_head, 4));
	UNIT_ASSERT_EQ(le64(fadt + 260), STS_PORT);
	/* IAPC_BOOT_ARCH: legacy devices, 8042, no VGA, no CMOS RTC. */
	UNIT_ASSERT_EQ(le16(fadt + 109), 0x1 | 0x2 | 0x4 | 0x20);
	machine_free(&m);
}

UNIT_TEST(test_fadt_without_i8042_says_no_keyboard_controller)
{
	struct machine m;
	struct acpi_config cfg = config(1);
	cfg.has_i8042 = false;
	cfg.has_serial = false;
	cfg.has_cmos_rtc = true;
	struct perr err = {0};
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), 0);
	const uint8_t *fadt = find_table(&m, "FACP");
	UNIT_ASSERT(fadt);
	UNIT_ASSERT_EQ(le16(fadt + 109), 0x4);
	const uint8_t *dsdt = find_table(&m, "DSDT");
	UNIT_ASSERT(dsdt);
	static const uint8_t pnp0303[] = {0x0c, 0x41, 0xd0, 0x03, 0x03};
	static const uint8_t pnp0501[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
	UNIT_ASSERT(!memmem_bytes(dsdt, le32(dsdt + 4), pnp0303, sizeof(pnp0303)));
	UNIT_ASSERT(!memmem_bytes(dsdt, le32(dsdt + 4), pnp0501, sizeof(pnp0501)));
	machine_free(&m);
}

/* Walks the MADT: counts entries by type and checks what they say. */
static void check_madt(unsigned ncpus)
{
	struct machine m;
	struct acpi_config cfg = config(ncpus);
	struct perr err = {0};
	int ret = machine_build(&m, &cfg, TABLES_SIZE, &err);
	if (ret < 0) {
		machine_free(&m);
		UNIT_FAIL("build with %u CPUs: %s", ncpus, err.msg);
	}
	const uint8_t *madt = find_table(&m, "APIC");
	UNIT_ASSERT(madt);
	uint32_t len = le32(madt + 4);
	UNIT_ASSERT_EQ(len, 44 + 8 * ncpus + 12 + 6);
	UNIT_ASSERT_EQ(le32(madt + 36), 0xfee00000);
	UNIT_ASSERT_EQ(le32(madt + 40), 0); /* no PCAT_COMPAT */
	unsigned n_lapic = 0, n_ioapic = 0, n_nmi = 0, n_other = 0;
	uint32_t off = 44;
	while (off + 2 <= len) {
		const uint8_t *e = madt + off;
		UNIT_ASSERT(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			UNIT_ASSERT_EQ(e[1], 8);
			UNIT_ASSERT_EQ(e[2], n_lapic);	/* ACPI processor UID */
			UNIT_ASSERT_EQ(e[3], n_lapic);	/* APIC id */
			UNIT_ASSERT_EQ(le32(e + 4), 1); /* enabled */
			n_lapic++;
			break;
		case 1:
			UNIT_ASSERT_EQ(e[1], 12);
			UNIT_ASSERT_EQ(e[2], ncpus); /* the MP table's IOAPIC id */
			UNIT_ASSERT_EQ(le32(e + 4), 0xfec00000);
			UNIT_ASSERT_EQ(le32(e + 8), 0);
			n_ioapic++;
			break;
		case 4:
			UNIT_ASSERT_EQ(e[1], 6);
			UNIT_ASSERT_EQ(e[2], 0xff);
			UNIT_ASSERT_EQ(e[5], 1); /* LINT1 */
			n_nmi++;
			break;
		default:
			n_other++; /* e.g. an interrupt source override: ISA is 1:1 */
			break;
		}
		off += e[1];
	}
	UNIT_ASSERT_EQ(off, len);
	UNIT_ASSERT_EQ(n_lapic, ncpus);
	UNIT_ASSERT_EQ(n_ioapic, 1);
	UNIT_ASSERT_EQ(n_nmi, 1);
	UNIT_ASSERT_EQ(n_other, 0);
	machine_free(&m);
}

UNIT_TEST(test_madt_for_1_cpu)
{
	check_madt(1);
}

UNIT_TEST(test_madt_for_254_cpus)
{
	check_madt(254);
}

UNIT_TEST(test_rejects_0_and_255_cpus)
{
	for (unsigned ncpus = 0; ncpus <= 255; ncpus += 255) {
		struct machine m;
		struct acpi_config cfg = config(ncpus);
		struct perr err = {0};
		int ret = machine_build(&m, &cfg, TABLES_SIZE, &err);
		machine_free(&m);
		UNIT_ASSERT_EQ(ret, -EINVAL);
		UNIT_ASSERT_CONTAINS(err.msg, "CPUs");
	}
}

/* The DSDT of one virtio-mmio device and nothing else, by hand from ACPI
 * 6.3 §20 (AML) and §6.4 (resource descriptors). */
UNIT_TEST(test_dsdt_virtio_device_matches_hand_encoded_aml)
{
	static const struct acpi_mmio_dev dev = {.base = 0xd0000000, .size = 0x200, .gsi = 5};
	struct acpi_config cfg = config(1);
	cfg.virtio = &dev;
	cfg.n_virtio = 1;
	cfg.has_serial = false;
	cfg.has_i8042 = false;
	struct machine m;
	struct perr err = {0};
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), 0);
	const uint8_t *dsdt = find_table(&m, "DSDT");
	UNIT_ASSERT(dsdt);
	/* clang-format off */
	static const uint8_t expect[] = {
		/* Name (\_S5, Package (4) {5, 0, 0, 0}) */
		0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00,
		/* Scope (\_SB) { — 67 bytes: a two-byte PkgLength, 0x43 0x04 */
		0x10, 0x43, 0x04, 0x5c, '_', 'S', 'B', '_',
		/* Device (VR00) { — 60 bytes */
		0x5b, 0x82, 0x3a, 'V', 'R', '0', '0',
		/* Name (_HID, "LNRO0005") */
		0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00,
		/* Name (_UID, Zero) */
		0x08, '_', 'U', 'I', 'D', 0x00,
		/* Name (_CRS, ResourceTemplate () { — Buffer (23) */
		0x08, '_', 'C', 'R', 'S', 0x11, 0x1a, 0x0a, 0x17,
		/* Memory32Fixed (ReadWrite, 0xd0000000, 0x200) */
		0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x02, 0x00, 0x00,
		/* Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {5} */
		0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00,
		/* End Tag */
		0x79, 0x00,
	};
	/* clang-format on */
	UNIT_ASSERT_EQ(le32(dsdt + 4), 36 + sizeof(expect));
	for (size_t i = 0; i < sizeof(expect); i++) {
		if (dsdt[36 + i] != expect[i])
			UNIT_FAIL("DSDT AML byte %zu is 0x%02x, expected 0x%02x", i, dsdt[36 + i],
				  expect[i]);
	}
	machine_free(&m);
}

UNIT_TEST(test_dsdt_describes_com1_and_keyboard_controller)
{
	struct machine m;
	struct acpi_config cfg = config(1);
	struct perr err = {0};
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), 0);
	const uint8_t *dsdt = find_table(&m, "DSDT");
	UNIT_ASSERT(dsdt);
	size_t len = le32(dsdt + 4);
	/* clang-format off */
	static const uint8_t com1[] = {
		/* Name (_HID, EisaId ("PNP0501")) */
		0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01,
		/* Name (_UID, Zero) */
		0x08, '_', 'U', 'I', 'D', 0x00,
		/* Name (_CRS, ResourceTemplate () { — Buffer (13) */
		0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d,
		/* IO (Decode16, 0x3f8, 0x3f8, 1, 8), IRQNoFlags () {4}, End Tag */
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00,
	};
	/* clang-format on */
	UNIT_ASSERT(memmem_bytes(dsdt, len, com1, sizeof(com1)));
	/* clang-format off */
	static const uint8_t kbd[] = {
		/* Name (_HID, EisaId ("PNP0303")), Name (_CRS, ... Buffer (21) */
		0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x03, 0x03,
		0x08, '_', 'C', 'R', 'S', 0x11, 0x18, 0x0a, 0x15,
		/* IO (0x60, length 1), IO (0x64, length 1), IRQNoFlags () {1}, End Tag */
		0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01,
		0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01,
		0x22, 0x02, 0x00, 0x79, 0x00,
	};
	/* clang-format on */
	UNIT_ASSERT(memmem_bytes(dsdt, len, kbd, sizeof(kbd)));
	/* Second virtio device: VR01, _UID 1, its window and GSI 6. */
	static const uint8_t vr01[] = {0x5b, 0x82, 0x3a, 'V', 'R', '0', '1'};
	UNIT_ASSERT(memmem_bytes(dsdt, len, vr01, sizeof(vr01)));
	static const uint8_t vr01_crs[] = {0x86, 0x09, 0x00, 0x01, 0x00, 0x02, 0x00, 0xd0, 0x00,
					   0x02, 0x00, 0x00, 0x89, 0x06, 0x00, 0x03, 0x01, 0x06};
	UNIT_ASSERT(memmem_bytes(dsdt, len, vr01_crs, sizeof(vr01_crs)));
	machine_free(&m);
}

UNIT_TEST(test_tables_too_big_for_region_fail_with_enospc)
{
	struct machine m;
	struct acpi_config cfg = config(254);
	struct perr err = {0};
	int ret = machine_build(&m, &cfg, 1024, &err);
	UNIT_ASSERT_EQ(ret, -ENOSPC);
	UNIT_ASSERT_CONTAINS(err.msg, "ACPI tables need");
	UNIT_ASSERT_CONTAINS(err.msg, "has 1024");
	/* Nothing written. */
	UNIT_ASSERT_EQ(byte_sum(m.ram + TABLES_GPA, TABLES_SIZE), 0);
	UNIT_ASSERT(memcmp(m.ram + TABLES_GPA, "RSD PTR ", 8));
	machine_free(&m);
}

UNIT_TEST(test_256_virtio_devices_fit_257_do_not)
{
	static struct acpi_mmio_dev many[257];
	for (unsigned i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = (struct acpi_mmio_dev){0xd0000000 + i * 0x200, 0x200, 5 + i % 19};
	struct acpi_config cfg = config(1);
	cfg.virtio = many;
	cfg.n_virtio = 256;
	struct machine m;
	struct perr err = {0};
	int ret = machine_build(&m, &cfg, TABLES_SIZE, &err);
	machine_free(&m);
	if (ret < 0)
		UNIT_FAIL("256 devices: %s", err.msg);
	cfg.n_virtio = 257;
	ret = machine_build(&m, &cfg, TABLES_SIZE, &err);
	machine_free(&m);
	UNIT_ASSERT_EQ(ret, -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "at most 256");
}

UNIT_TEST(test_rejects_bad_virtio_windows_ports_and_alignment)
{
	struct perr err = {0};
	struct machine m;
	struct acpi_mmio_dev dev = {.base = 0xd0000000, .size = 0x200, .gsi = 24};
	struct acpi_config cfg = config(1);
	cfg.virtio = &dev;
	cfg.n_virtio = 1;
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), -EINVAL);
	machine_free(&m);
	UNIT_ASSERT_CONTAINS(err.msg, "GSI 24");

	dev = (struct acpi_mmio_dev){.base = 0xfffffe00, .size = 0x400, .gsi = 5};
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), -EINVAL);
	machine_free(&m);
	UNIT_ASSERT_CONTAINS(err.msg, "below 4 GiB");
	dev = (struct acpi_mmio_dev){.base = 0xfffffe00, .size = 0x200, .gsi = 5};
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), 0);
	machine_free(&m);

	cfg = config(1);
	cfg.pm_sleep_sts_port = cfg.pm_sleep_ctl_port;
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), -EINVAL);
	machine_free(&m);
	cfg.pm_sleep_ctl_port = cfg.pm_sleep_sts_port = 0;
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), -EINVAL);
	machine_free(&m);

	cfg = config(1);
	uint64_t rsdp = 0;
	UNIT_ASSERT_EQ(acpi_build_tables(&m.mem, TABLES_GPA + 8, TABLES_SIZE, &cfg, &rsdp, &err),
		       -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "aligned");
}

UNIT_TEST(test_tables_outside_guest_ram_fail_with_efault)
{
	struct machine m;
	struct acpi_config cfg = config(1);
	struct perr err = {0};
	memset(&m, 0, sizeof(m));
	m.ram = calloc(1, 0x10000);
	UNIT_ASSERT(m.ram);
	UNIT_ASSERT_EQ(guest_mem_add_region(&m.mem, 0, 0x10000, m.ram), 0);
	int ret = acpi_build_tables(&m.mem, TABLES_GPA, TABLES_SIZE, &cfg, &m.rsdp, &err);
	machine_free(&m);
	UNIT_ASSERT_EQ(ret, -EFAULT);
	UNIT_ASSERT_CONTAINS(err.msg, "not guest RAM");
}

/* ---- iasl (acpica-tools), when installed ---- */

static bool have_iasl(void)
{
	return system("command -v iasl >/dev/null 2>&1") == 0;
}

static int write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	size_t n = fwrite(p, 1, len, f);
	return fclose(f) == 0 && n == len ? 0 : -EIO;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	if (buf && fread(buf, 1, (1 << 20) - 1, f) == 0 && ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static int run_in(const char *dir, const char *cmd)
{
	char line[1024];
	snprintf(line, sizeof(line), "cd '%s' && %s >iasl.log 2>&1", dir, cmd);
	int st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void remove_dir(const char *dir)
{
	char line[600];
	snprintf(line, sizeof(line), "rm -rf '%s'", dir);
	if (system(line) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

UNIT_TEST(test_iasl_disassembles_the_tables_and_recompiles_the_dsdt_unchanged)
{
	if (!have_iasl())
		UNIT_SKIP("iasl not installed (apt-get install acpica-tools)");
	struct machine m;
	struct acpi_config cfg = config(2);
	struct perr err = {0};
	UNIT_ASSERT_EQ(machine_build(&m, &cfg, TABLES_SIZE, &err), 0);
	char dir[] = "/tmp/petrel-acpi-XXXXXX";
	if (!mkdtemp(dir)) {
		machine_free(&m);
		UNIT_FAIL("mkdtemp: %s", strerror(errno));
	}
	static const char *const sigs[] = {"DSDT", "FACP", "APIC"};
	static const char *const names[] = {"dsdt", "facp", "apic"};
	char path[600];
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		const uint8_t *t = find_table(&m, sigs[i]);
		snprintf(path, sizeof(path), "%s/%s.dat", dir, names[i]);
		if (!t || write_file(path, t, le32(t + 4)) < 0) {
			remove_dir(dir);
			machine_free(&m);
			UNIT_FAIL("write %s", path);
		}
	}
	int rc = run_in(dir, "iasl -d dsdt.dat facp.dat apic.dat");
	snprintf(path, sizeof(path), "%s/iasl.log", dir);
	char *log = read_file(path);
	snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
	char *dsl = read_file(path);
	snprintf(path, sizeof(path), "%s/facp.dsl", dir);
	char *facp = read_file(path);
	snprintf(path, sizeof(path), "%s/apic.dsl", dir);
	char *apic = read_file(path);
	/* Recompiling the disassembly gives back the same AML: iasl and the
	 * encoder agree on every opcode and length. (-on: keep "\_S5" and
	 * "\_SB" as written instead of shortening them at the root.) */
	int rc2 = run_in(dir, "iasl -on -p recompiled dsdt.dsl");
	snprintf(path, sizeof(path), "%s/recompiled.aml", dir);
	FILE *f = fopen(path, "re");
	uint8_t *aml = calloc(1, TABLES_SIZE);
	size_t aml_len = f && aml ? fread(aml, 1, TABLES_SIZE, f) : 0;
	if (f)
		fclose(f);
	const uint8_t *dsdt = find_table(&m, "DSDT");
	bool same_aml = aml && dsdt && aml_len > 36 && aml_len == le32(dsdt + 4) &&
			!memcmp(aml + 36, dsdt + 36, aml_len - 36);
	remove_dir(dir);
	machine_free(&m);

	bool ok = rc == 0 && log && dsl && facp && apic;
	if (ok) {
		ok =
		    strstr(dsl, "\"LNRO0005\"") && strstr(dsl, "EisaId (\"PNP0501\")") &&
		    strstr(dsl, "EisaId (\"PNP0303\")") && strstr(dsl, "Name (\\_S5, Package") &&
		    strstr(dsl, "Memory32Fixed (ReadWrite,") &&
		    strstr(dsl, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )") &&
		    strstr(facp, "Hardware Reduced (V5) : 1") &&
		    strstr(facp, "Sleep Control Register") && strstr(apic, "[Local APIC NMI]");
	}
	char why[300];
	snprintf(why, sizeof(why), "rc=%d, log: %.200s", rc, log ? log : "(none)");
	free(log);
	free(dsl);
	free(facp);
	free(apic);
	free(aml);
	if (!ok)
		UNIT_FAIL("iasl -d: %s", why);
	if (rc2 != 0 || !same_aml)
		UNIT_FAIL("iasl recompile: rc=%d, %zu bytes, same AML: %d", rc2, aml_len, same_aml);
}

/* ---- Sleep registers ---- */

struct poweroff_count {
	int calls;
};

static void count_poweroff(void *opaque)
{
	((struct poweroff_count *)opaque)->calls++;
}

static uint8_t pio_read(struct bus *bus, uint16_t port)
{
	uint8_t v = 0;
	bus_read(bus, port, &v, 1);
	return v;
}

static void pio_write(struct bus *bus, uint16_t port, uint8_t v)
{
	bus_write(bus, port, &v, 1);
}

UNIT_TEST(test_sleep_control_s5_with_slp_en_powers_off)
{
	struct bus bus;
	bus_init(&bus);
	struct poweroff_count count = {0};
	struct acpi_pm *pm = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(acpi_pm_create(&bus, CTL_PORT, STS_PORT, count_poweroff, &count, &pm, &err),
		       0);
	/* What Linux's acpi_hw_extended_sleep(5) writes: clear WAK_STS, then
	 * SLP_TYP 5 << 2 | SLP_EN. */
	pio_write(&bus, STS_PORT, 0x80);
	pio_write(&bus, CTL_PORT, 5 << 2);
	UNIT_ASSERT_EQ(count.calls, 0); /* no SLP_EN, no transition */
	pio_write(&bus, CTL_PORT, 5 << 2 | 0x20);
	UNIT_ASSERT_EQ(count.calls, 1);
	UNIT_ASSERT_EQ(pio_read(&bus, CTL_PORT), 0);
	acpi_pm_destroy(pm);
	bus_destroy(&bus);
}

UNIT_TEST(test_sleep_control_other_states_wake_at_once)
{
	struct bus bus;
	bus_init(&bus);
	struct poweroff_count count = {0};
	struct acpi_pm *pm = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(acpi_pm_create(&bus, CTL_PORT, STS_PORT, count_poweroff, &count, &pm, &err),
		       0);
	UNIT_ASSERT_EQ(pio_read(&bus, STS_PORT), 0);
	pio_write(&bus, CTL_PORT, 3 << 2 | 0x20); /* S3 */
	UNIT_ASSERT_EQ(count.calls, 0);
	UNIT_ASSERT_EQ(pio_read(&bus, STS_PORT), 0x80);
	pio_write(&bus, STS_PORT, 0x7f); /* only a 1 in bit 7 clears it */
	UNIT_ASSERT_EQ(pio_read(&bus, STS_PORT), 0x80);
	pio_write(&bus, STS_PORT, 0x80);
	UNIT_ASSERT_EQ(pio_read(&bus, STS_PORT), 0);
	acpi_pm_destroy(pm);
	bus_destroy(&bus);
}

UNIT_TEST(test_sleep_registers_refuse_taken_or_shared_ports)
{
	struct bus bus;
	bus_init(&bus);
	struct poweroff_count count = {0};
	struct acpi_pm *pm = NULL, *pm2 = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(acpi_pm_create(&bus, CTL_PORT, CTL_PORT, count_poweroff, &count, &pm, &err),
		       -EINVAL);
	UNIT_ASSERT_EQ(acpi_pm_create(&bus, CTL_PORT, STS_PORT, count_poweroff, &count, &pm, &err),
		       0);
	/* The status port is taken: the control port must be released again. */
	UNIT_ASSERT_EQ(acpi_pm_create(&bus, 0x700, STS_PORT, count_poweroff, &count, &pm2, &err),
		       -EBUSY);
	UNIT_ASSERT_CONTAINS(err.msg, "port 0x601");
	UNIT_ASSERT_EQ(bus.n_ranges, 2);
	acpi_pm_destroy(pm);
	UNIT_ASSERT_EQ(bus.n_ranges, 0);
	uint8_t v;
	UNIT_ASSERT(!bus_read(&bus, CTL_PORT, &v, 1));
	acpi_pm_destroy(NULL);
	bus_destroy(&bus);
}

UNIT_MAIN("acpi")
