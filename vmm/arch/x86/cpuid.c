#include "cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 1024
/* Room for the topology and hypervisor leaves added per vCPU. */
#define CPUID_EXTRA_ENTRIES 16

#define CPUID_1_EBX_APIC_ID_SHIFT 24
#define CPUID_1_EBX_LOGICAL_SHIFT 16
#define CPUID_1_ECX_TSC_DEADLINE  (1u << 24)
#define CPUID_1_ECX_HYPERVISOR	  (1u << 31)
#define CPUID_1_EDX_HTT		  (1u << 28)

/* Leaf 0xb / 0x1f level types. */
#define TOPO_LEVEL_SMT	1
#define TOPO_LEVEL_CORE 2

#define KVM_CPUID_SIGNATURE_LEAF 0x40000000u
#define KVM_CPUID_FEATURES_LEAF	 0x40000001u

static size_t cpuid_bytes(unsigned nent)
{
	return sizeof(struct kvm_cpuid2) + nent * sizeof(struct kvm_cpuid_entry2);
}

int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out, struct perr *err)
{
	for (unsigned nent = 128; nent <= CPUID_MAX_ENTRIES; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, cpuid_bytes(nent));
		if (!c)
			return perr_setx(err, -ENOMEM, "out of memory");
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			/* KVM emulates the TSC-deadline LAPIC timer but leaves the bit
			 * to userspace; without it Linux calibrates the LAPIC timer
			 * against the PIT at boot, slowly and, nested, unreliably. */
			struct kvm_cpuid_entry2 *leaf1 = x86_cpuid_find(c, 1, 0);
			if (leaf1 &&
			    ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
				leaf1->ecx |= CPUID_1_ECX_TSC_DEADLINE;
			*out = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return perr_set(err, -e, "KVM_GET_SUPPORTED_CPUID");
	}
	return perr_setx(err, -E2BIG, "KVM_GET_SUPPORTED_CPUID: more than %d entries",
			 CPUID_MAX_ENTRIES);
}

struct kvm_cpuid_entry2 *x86_cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == function &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

static void cpuid_remove_function(struct kvm_cpuid2 *c, uint32_t function)
{
	unsigned j = 0;
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function != function)
			c->entries[j++] = c->entries[i];
	c->nent = j;
}

/* Bits needed to number n items: ceil(log2(n)). */
static unsigned order_base_2(unsigned n)
{
	unsigned bits = 0;
	while ((1u << bits) < n)
		bits++;
	return bits;
}

/* Extended topology (leaf 0xb, and 0x1f when the host has it): an SMT level
 * of one thread and a core level of ncpus, x2APIC id in EDX. */
static void cpuid_set_ext_topology(struct kvm_cpuid2 *c, uint32_t leaf, unsigned apic_id,
				   unsigned ncpus)
{
	cpuid_remove_function(c, leaf);
	struct kvm_cpuid_entry2 levels[3] = {
	    {.function = leaf, .index = 0, .eax = 0, .ebx = 1, .ecx = TOPO_LEVEL_SMT << 8 | 0},
	    {.function = leaf,
	     .index = 1,
	     .eax = order_base_2(ncpus),
	     .ebx = ncpus,
	     .ecx = TOPO_LEVEL_CORE << 8 | 1},
	    {.function = leaf, .index = 2, .ecx = 2}, /* level type 0: the end */
	};
	for (unsigned i = 0; i < 3; i++) {
		levels[i].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		levels[i].edx = apic_id;
		c->entries[c->nent++] = levels[i];
	}
}

static bool cpuid_vendor_is(struct kvm_cpuid2 *c, const char *vendor)
{
	struct kvm_cpuid_entry2 *e = x86_cpuid_find(c, 0, 0);
	if (!e)
		return false;
	char v[12];
	memcpy(v, &e->ebx, 4);
	memcpy(v + 4, &e->edx, 4);
	memcpy(v + 8, &e->ecx, 4);
	return memcmp(v, vendor, 12) == 0;
}

static void cpuid_set_hypervisor_leaves(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *sig = x86_cpuid_find(c, KVM_CPUID_SIGNATURE_LEAF, 0);
	if (!sig) {
		sig = &c->entries[c->nent++];
		*sig = (struct kvm_cpuid_entry2){.function = KVM_CPUID_SIGNATURE_LEAF};
	}
	sig->eax = KVM_CPUID_FEATURES_LEAF;
	memcpy(&sig->ebx, "KVMK", 4);
	memcpy(&sig->ecx, "VMKV", 4);
	memcpy(&sig->edx, "M\0\0\0", 4);
	/* The features themselves (kvmclock, PV EOI, ...) are what KVM reports;
	 * without its entry the guest gets none. */
	if (!x86_cpuid_find(c, KVM_CPUID_FEATURES_LEAF, 0))
		c->entries[c->nent++] =
		    (struct kvm_cpuid_entry2){.function = KVM_CPUID_FEATURES_LEAF};
}

int x86_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned apic_id, unsigned ncpus,
		       struct kvm_cpuid2 **out, struct perr *err)
{
	if (ncpus == 0 || ncpus > 255 || apic_id >= ncpus)
		return perr_setx(err, -EINVAL, "CPUID: APIC id %u of %u CPUs", apic_id, ncpus);
	struct kvm_cpuid2 *c = calloc(1, cpuid_bytes(supported->nent + CPUID_EXTRA_ENTRIES));
	if (!c)
		return perr_setx(err, -ENOMEM, "out of memory");
	memcpy(c, supported, cpuid_bytes(supported->nent));
	bool amd = cpuid_vendor_is(c, "AuthenticAMD") || cpuid_vendor_is(c, "HygonGenuine");

	struct kvm_cpuid_entry2 *e = x86_cpuid_find(c, 1, 0);
	if (e) {
		e->ebx &= 0x0000ffffu;
		e->ebx |= apic_id << CPUID_1_EBX_APIC_ID_SHIFT;
		e->ebx |= ncpus << CPUID_1_EBX_LOGICAL_SHIFT;
		e->ecx |= CPUID_1_ECX_HYPERVISOR;
		if (ncpus > 1)
			e->edx |= CPUID_1_EDX_HTT;
		else
			e->edx &= ~CPUID_1_EDX_HTT;
	}

	/* Intel deterministic cache parameters: cores per package in 31:26,
	 * threads sharing the cache in 25:14 (all cores share the last level). */
	unsigned max_cores = ncpus > 64 ? 64 : ncpus;
	for (unsigned i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		if (e->function != 4 || (e->eax & 0x1f) == 0)
			continue;
		unsigned level = (e->eax >> 5) & 0x7;
		unsigned sharing = level >= 3 ? ncpus - 1 : 0;
		e->eax &= 0x3fffu;
		e->eax |= (max_cores - 1) << 26 | (sharing & 0xfff) << 14;
	}

	cpuid_set_ext_topology(c, 0xb, apic_id, ncpus);
	if (x86_cpuid_find(c, 0x1f, 0))
		cpuid_set_ext_topology(c, 0x1f, apic_id, ncpus);

	if (amd) {
		e = x86_cpuid_find(c, 0x80000008, 0);
		if (e) {
			e->ecx &= ~0xf0ffu;
			e->ecx |= (ncpus - 1) | order_base_2(ncpus) << 12;
		}
		for (unsigned i = 0; i < c->nent; i++) {
			e = &c->entries[i];
			if (e->function != 0x8000001d || (e->eax & 0x1f) == 0)
				continue;
			unsigned level = (e->eax >> 5) & 0x7;
			e->eax &= ~(0xfffu << 14);
			e->eax |= (level >= 3 ? ncpus - 1 : 0) << 14;
		}
		e = x86_cpuid_find(c, 0x8000001e, 0);
		if (e) {
			e->eax = apic_id;
			e->ebx = apic_id & 0xff; /* core id; one thread per core */
			e->ecx = 0;		 /* node 0, one node */
		}
	}

	cpuid_set_hypervisor_leaves(c);
	*out = c;
	return 0;
}
