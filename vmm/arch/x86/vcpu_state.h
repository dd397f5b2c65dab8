/*
 * x86 KVM architectural state for snapshot/restore, as opaque blobs that the
 * snapshot file stores: one per vCPU (registers, FPU/XSAVE, MSRs, LAPIC,
 * pending events) and one per VM (PIC, IOAPIC, PIT, kvmclock). A blob is a
 * header (magic, version, total length) and tagged records; it is only
 * meaningful to the same host type with the same CPUID. Restore validates
 * every length and count before any ioctl, since the blob comes from a file.
 */
#ifndef PETREL_X86_VCPU_STATE_H
#define PETREL_X86_VCPU_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "../../../common/error.h"

/* More than KVM lists on any host today; bounds the MSR record of a blob. */
#define X86_VCPU_STATE_MAX_MSRS 1024

/* MSRs to carry: KVM_GET_MSR_INDEX_LIST on the /dev/kvm fd, once per VM at build time
 * (the main thread's seccomp filter may not allow it later), plus the MTRRs, which KVM
 * keeps per vCPU but does not list. *out is malloc'd. */
int x86_msr_index_list(int kvm_fd, uint32_t **out, size_t *n, struct perr *err);

/* One vCPU's architectural state as a blob (malloc'd, *blob). The vCPU must not be in
 * KVM_RUN (the caller has paused it). msrs: the list from x86_msr_index_list; MSRs the
 * vCPU refuses to read are left out of the blob. */
int x86_vcpu_state_save(int vcpu_fd, const uint32_t *msrs, size_t n_msrs, void **blob, size_t *len,
			struct perr *err);
/* Puts a blob back into a freshly created vCPU that has had KVM_SET_CPUID2 done (same
 * CPUID as the saved one). Validates the blob completely (it comes from a file: every
 * length and count is checked; a bad blob gives -EINVAL with a message naming what is
 * wrong, never a crash or an out-of-bounds read). */
int x86_vcpu_state_restore(int vcpu_fd, const void *blob, size_t len, struct perr *err);

/* The VM-wide in-kernel state: PIC master, PIC slave and IOAPIC (KVM_GET_IRQCHIP chip ids
 * 0,1,2), the PIT (KVM_GET_PIT2; left out when the VM has none), and kvmclock
 * (KVM_GET_CLOCK). Restore sets the clock to the saved value with flags 0, so the
 * guest's monotonic time continues from the snapshot. */
int x86_vm_state_save(int vm_fd, void **blob, size_t *len, struct perr *err);
int x86_vm_state_restore(int vm_fd, const void *blob, size_t len, struct perr *err);

#endif
