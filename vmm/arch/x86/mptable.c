#include "mptable.h"

#include <errno.h>
#include <string.h>

/* MP spec 1.4, chapter 4: all structures are packed little-endian. */
struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;
	uint8_t length; /* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer is 16 bytes");
_Static_assert(sizeof(struct mpc_table) == 44, "MP config header is 44 bytes");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry is 20 bytes");
_Static_assert(sizeof(struct mpc_bus) == 8, "MP bus entry is 8 bytes");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "MP IOAPIC entry is 8 bytes");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "MP interrupt entry is 8 bytes");

enum {
	MP_PROCESSOR = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_INTSRC = 3,
	MP_LINTSRC = 4,
};
enum { MP_IRQ_INT = 0, MP_IRQ_NMI = 1, MP_IRQ_EXTINT = 3 };

#define MP_CPU_ENABLED	  0x01
#define MP_CPU_BOOT	  0x02
#define MP_IOAPIC_ENABLED 0x01
#define MP_ISA_BUS	  0
#define MP_ALL_LAPICS	  0xff
/* Family 6 signature and FPU + APIC feature bits: the values Linux looks at
 * are the APIC id and the flags, the rest is informational. */
#define MP_CPU_SIGNATURE 0x600
#define MP_CPU_FEATURES	 0x201

#define MP_LAPIC_ADDR  0xfee00000u
#define MP_IOAPIC_ADDR 0xfec00000u

static size_t mp_entries_size(unsigned ncpus)
{
	return ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +
	       X86_MP_ISA_IRQS * sizeof(struct mpc_intsrc) + 2 * sizeof(struct mpc_intsrc);
}

size_t x86_mptable_size(unsigned ncpus)
{
	return sizeof(struct mpf_intel) + sizeof(struct mpc_table) + mp_entries_size(ncpus);
}

unsigned x86_mptable_ioapic_id(unsigned ncpus)
{
	return ncpus;
}

static uint8_t mp_checksum(const void *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += ((const uint8_t *)p)[i];
	return (uint8_t)-sum;
}

int x86_mptable_build(void *buf, size_t size, uint64_t gpa, unsigned ncpus, struct perr *err)
{
	/* APIC id 255 is the broadcast id and the IOAPIC takes id ncpus. */
	if (ncpus < 1 || ncpus > 254)
		return perr_setx(err, -EINVAL, "MP table: %u CPUs; allowed: 1 to 254", ncpus);
	size_t total = x86_mptable_size(ncpus);
	if (size < total || gpa + total > 0x100000000ull || gpa % 16)
		return perr_setx(err, -EINVAL, "MP table: %zu bytes do not fit at %#llx", total,
				 (unsigned long long)gpa);
	memset(buf, 0, total);

	uint8_t *p = buf;
	struct mpf_intel *mpf = (struct mpf_intel *)p;
	struct mpc_table *mpc = (struct mpc_table *)(p + sizeof(*mpf));
	uint8_t *e = (uint8_t *)(mpc + 1);
	uint16_t count = 0;
	uint8_t ioapic_id = (uint8_t)x86_mptable_ioapic_id(ncpus);

	for (unsigned i = 0; i < ncpus; i++) {
		struct mpc_cpu cpu = {
		    .type = MP_PROCESSOR,
		    .apicid = (uint8_t)i,
		    .apicver = X86_MP_APIC_VERSION,
		    .cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BOOT : 0),
		    .cpufeature = MP_CPU_SIGNATURE,
		    .featureflag = MP_CPU_FEATURES,
		};
		memcpy(e, &cpu, sizeof(cpu));
		e += sizeof(cpu);
		count++;
	}

	struct mpc_bus bus = {.type = MP_BUS, .busid = MP_ISA_BUS};
	memcpy(bus.bustype, "ISA   ", 6);
	memcpy(e, &bus, sizeof(bus));
	e += sizeof(bus);
	count++;

	struct mpc_ioapic ioapic = {
	    .type = MP_IOAPIC,
	    .apicid = ioapic_id,
	    .apicver = X86_MP_IOAPIC_VERSION,
	    .flags = MP_IOAPIC_ENABLED,
	    .apicaddr = MP_IOAPIC_ADDR,
	};
	memcpy(e, &ioapic, sizeof(ioapic));
	e += sizeof(ioapic);
	count++;

	/* irqflag 0: polarity and trigger "conform to the bus", i.e. ISA
	 * active-high edge, which is also what irqfd-driven lines deliver. */
	for (unsigned irq = 0; irq < X86_MP_ISA_IRQS; irq++) {
		struct mpc_intsrc src = {
		    .type = MP_INTSRC,
		    .irqtype = MP_IRQ_INT,
		    .srcbus = MP_ISA_BUS,
		    .srcbusirq = (uint8_t)irq,
		    .dstapic = ioapic_id,
		    .dstirq = (uint8_t)irq,
		};
		memcpy(e, &src, sizeof(src));
		e += sizeof(src);
		count++;
	}

	/* Virtual wire mode: the PIC on LINT0, NMI on LINT1 of every LAPIC. */
	struct mpc_intsrc lint[2] = {
	    {.type = MP_LINTSRC, .irqtype = MP_IRQ_EXTINT, .dstapic = MP_ALL_LAPICS, .dstirq = 0},
	    {.type = MP_LINTSRC, .irqtype = MP_IRQ_NMI, .dstapic = MP_ALL_LAPICS, .dstirq = 1},
	};
	memcpy(e, lint, sizeof(lint));
	e += sizeof(lint);
	count += 2;

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)(e - (uint8_t *)mpc);
	mpc->spec = 4;
	memcpy(mpc->oem, "PETREL  ", 8);
	memcpy(mpc->product, "MICROVM     ", 12);
	mpc->oemcount = count;
	mpc->lapic = MP_LAPIC_ADDR;
	mpc->checksum = mp_checksum(mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(gpa + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = mp_checksum(mpf, sizeof(*mpf));
	return 0;
}
