#include "regs.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../../../common/log.h"
#include "../../core/guest_mem.h"
#include "layout.h"

#define CR0_PE	 (1ull << 0)
#define CR0_MP	 (1ull << 1)
#define CR0_ET	 (1ull << 4)
#define CR0_NE	 (1ull << 5)
#define CR0_PG	 (1ull << 31)
#define CR4_PAE	 (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define PTE_PRESENT (1ull << 0)
#define PTE_RW	    (1ull << 1)
#define PTE_PS	    (1ull << 7)

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR	      0xc0000081
#define MSR_LSTAR	      0xc0000082
#define MSR_CSTAR	      0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MISC_ENABLE_FAST_STRING 1ull
#define MTRR_ENABLE		(1ull << 11)
#define MTRR_TYPE_WB		6ull

#define APIC_LVT_LINT0	 0x350
#define APIC_LVT_LINT1	 0x360
#define APIC_MODE_NMI	 0x4
#define APIC_MODE_EXTINT 0x7

/* Flat segments: base 0, limit 4 GiB (G=1). Encoded as the CPU reads them. */
static const uint64_t gdt_entries[] = {
    [0] = 0,
    [X86_SEL_CODE32 / 8] = 0x00cf9b000000ffffull, /* 32-bit code, D=1 */
    [X86_SEL_CODE64 / 8] = 0x00af9b000000ffffull, /* 64-bit code, L=1 */
    [X86_SEL_DATA / 8] = 0x00cf93000000ffffull,	  /* data, read/write */
    [X86_SEL_TSS / 8] = 0x00008b0000000067ull,	  /* busy TSS, 104 bytes */
};

int x86_write_boot_tables(struct guest_mem *mem, struct perr *err)
{
	if (guest_mem_write(mem, X86_GDT_GPA, gdt_entries, sizeof(gdt_entries)) < 0)
		return perr_setx(err, -EFAULT, "GDT: not in guest RAM");

	uint64_t *pml4 = guest_mem_slice(mem, X86_PML4_GPA, 4096);
	uint64_t *pdpt = guest_mem_slice(mem, X86_PDPT_GPA, 4096);
	uint64_t *pd = guest_mem_slice(mem, X86_PD_GPA, 4ull * 4096);
	if (!pml4 || !pdpt || !pd)
		return perr_setx(err, -EFAULT, "page tables: not in guest RAM");
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = X86_PDPT_GPA | PTE_PRESENT | PTE_RW;
	/* 4 GiB identity map: the kernel, boot_params, the command line and an
	 * initrd below 3 GiB are all reachable from startup_64. */
	for (uint64_t i = 0; i < 4; i++) {
		pdpt[i] = (X86_PD_GPA + i * 4096) | PTE_PRESENT | PTE_RW;
		for (uint64_t j = 0; j < 512; j++)
			pd[i * 512 + j] = (i << 30 | j << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	}
	return 0;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code64, bool db)
{
	return (struct kvm_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = selector,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = db,
	    .s = 1,
	    .l = code64,
	    .g = 1,
	};
}

int x86_vcpu_set_boot_state(int vcpu_fd, const struct x86_boot_entry *entry, struct perr *err)
{
	struct kvm_sregs sregs;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return perr_set(err, -errno, "KVM_GET_SREGS");

	bool long_mode = entry->mode == X86_ENTRY_LONG64;
	/* Type 11: execute/read, accessed; type 3: read/write, accessed. */
	sregs.cs = long_mode ? flat_segment(X86_SEL_CODE64, 11, true, false)
			     : flat_segment(X86_SEL_CODE32, 11, false, true);
	sregs.ds = flat_segment(X86_SEL_DATA, 3, false, true);
	sregs.es = sregs.ds;
	sregs.fs = sregs.ds;
	sregs.gs = sregs.ds;
	sregs.ss = sregs.ds;
	sregs.tr =
	    (struct kvm_segment){.selector = X86_SEL_TSS, .limit = 0x67, .type = 11, .present = 1};
	sregs.gdt.base = X86_GDT_GPA;
	sregs.gdt.limit = sizeof(gdt_entries) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;

	/* Caches on (CD/NW clear), x87 error reporting native. */
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (long_mode) {
		sregs.cr0 |= CR0_PG;
		sregs.cr3 = X86_PML4_GPA;
		sregs.cr4 = CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return perr_set(err, -errno, "KVM_SET_SREGS");

	struct kvm_regs regs = {.rflags = 0x2, .rip = entry->rip};
	if (long_mode)
		regs.rsi = entry->boot_info_gpa; /* boot protocol: %rsi = boot_params */
	else
		regs.rbx = entry->boot_info_gpa; /* PVH: %ebx = hvm_start_info */
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return perr_set(err, -errno, "KVM_SET_REGS");

	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		return perr_set(err, -errno, "KVM_SET_FPU");
	return 0;
}

int x86_vcpu_set_msrs(int vcpu_fd, struct perr *err)
{
	static const struct kvm_msr_entry wanted[] = {
	    {.index = MSR_IA32_SYSENTER_CS},
	    {.index = MSR_IA32_SYSENTER_ESP},
	    {.index = MSR_IA32_SYSENTER_EIP},
	    {.index = MSR_STAR},
	    {.index = MSR_LSTAR},
	    {.index = MSR_CSTAR},
	    {.index = MSR_SYSCALL_MASK},
	    {.index = MSR_KERNEL_GS_BASE},
	    {.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING},
	    /* With MTRRs disabled a guest would map all of RAM uncached. */
	    {.index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE | MTRR_TYPE_WB},
	};
	enum { N = sizeof(wanted) / sizeof(wanted[0]) };
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + N * sizeof(wanted[0]));
	if (!msrs)
		return perr_setx(err, -ENOMEM, "out of memory");

	/* KVM_SET_MSRS stops at the first MSR it refuses and returns how many
	 * it set: skip the refused one and go on with the rest. */
	int rc = 0;
	unsigned i = 0;
	while (i < N) {
		msrs->nmsrs = N - i;
		memcpy(msrs->entries, &wanted[i], (N - i) * sizeof(wanted[0]));
		int n = ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
		if (n < 0) {
			rc = perr_set(err, -errno, "KVM_SET_MSRS");
			break;
		}
		i += (unsigned)n;
		if (i < N) {
			log_debug("MSR %#x not accepted by KVM; left at its reset value",
				  wanted[i].index);
			i++;
		}
	}
	free(msrs);
	return rc;
}

int x86_vcpu_set_lapic_lints(int vcpu_fd, struct perr *err)
{
	struct kvm_lapic_state lapic;
	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
		return perr_set(err, -errno, "KVM_GET_LAPIC");
	uint32_t lint0, lint1;
	memcpy(&lint0, lapic.regs + APIC_LVT_LINT0, 4);
	memcpy(&lint1, lapic.regs + APIC_LVT_LINT1, 4);
	/* Delivery mode is bits 10:8; clearing bit 16 unmasks. */
	lint0 = (lint0 & ~0x10700u) | APIC_MODE_EXTINT << 8;
	lint1 = (lint1 & ~0x10700u) | APIC_MODE_NMI << 8;
	memcpy(lapic.regs + APIC_LVT_LINT0, &lint0, 4);
	memcpy(lapic.regs + APIC_LVT_LINT1, &lint1, 4);
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0)
		return perr_set(err, -errno, "KVM_SET_LAPIC");
	return 0;
}
