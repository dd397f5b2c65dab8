/*
 * Per-vCPU CPUID: what KVM supports on this host, with each vCPU's APIC id
 * and a flat topology (one socket, N cores, one thread per core) written into
 * the leaves Linux reads it from (0x1, 0x4, 0xb/0x1f, and AMD's 0x80000008,
 * 0x8000001d, 0x8000001e), plus the KVM hypervisor leaves 0x40000000/1.
 */
#ifndef PETREL_X86_CPUID_H
#define PETREL_X86_CPUID_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "../../../common/error.h"

/* KVM_GET_SUPPORTED_CPUID; *out is malloc'ed. */
int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out, struct perr *err);
/* The table for the vCPU with this APIC id out of ncpus; *out is malloc'ed. */
int x86_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned apic_id, unsigned ncpus,
		       struct kvm_cpuid2 **out, struct perr *err);
/* The entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *x86_cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

#endif
