/*
 * x86 snapshot state on real KVM, with raw ioctls and no guest code: a vCPU
 * and a VM given distinctive state, saved, restored into a second VM and read
 * back; and blobs cut short or with corrupted headers, which restore must
 * refuse with a message. Skipped where /dev/kvm cannot make the VMs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../../vmm/arch/x86/cpuid.h"
#include "../../vmm/arch/x86/regs.h"
#include "../../vmm/arch/x86/vcpu_state.h"
#include "unit.h"

#define MSR_IA32_TSC	      0x10
#define MSR_MTRR_PHYS_BASE0   0x200
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_STAR	      0xc0000081
#define MSR_LSTAR	      0xc0000082
#define MSR_KERNEL_GS_BASE    0xc0000102

#define APIC_TASKPRI 0x80
#define APIC_SPIV    0xf0
#define APIC_LVTT    0x320

#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)

/* Offsets in the XSAVE area (SDM vol. 1, 13.4). */
#define XSAVE_FCW	0
#define XSAVE_XMM0	160
#define XSAVE_XSTATE_BV 512

#define TEST_TSC	    1000000000000ull
#define TEST_TSC_SLACK	    100000000000ull /* tens of seconds at any TSC rate */
#define TEST_DEADLINE_AHEAD 1000000000000ull
#define TEST_CLOCK_NS	    5000000000ull

/* The record tags the blob format gives the MSR and XCR records. */
#define REC_XCRS 5
#define REC_MSRS 6

/* A VM with the in-kernel irqchip and PIT and one vCPU with petrel's CPUID,
 * as vm_build makes them. */
struct kvm_fixture {
	int kvm;
	int vm;
	int vcpu;
};

static void fixture_close(struct kvm_fixture *f)
{
	if (f->vcpu >= 0)
		close(f->vcpu);
	if (f->vm >= 0)
		close(f->vm);
	if (f->kvm >= 0)
		close(f->kvm);
	f->kvm = f->vm = f->vcpu = -1;
}

/* False, with why set, when this host's KVM cannot make the VM. */
static bool fixture_open(struct kvm_fixture *f, char *why, size_t size)
{
	f->kvm = f->vm = f->vcpu = -1;
	f->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (f->kvm < 0) {
		snprintf(why, size, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	const char *step = "KVM_CREATE_VM";
	f->vm = ioctl(f->kvm, KVM_CREATE_VM, 0);
	if (f->vm < 0)
		goto fail;
	step = "KVM_CREATE_IRQCHIP";
	if (ioctl(f->vm, KVM_CREATE_IRQCHIP, 0) < 0)
		goto fail;
	step = "KVM_CREATE_PIT2";
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(f->vm, KVM_CREATE_PIT2, &pit) < 0)
		goto fail;
	step = "KVM_CREATE_VCPU";
	f->vcpu = ioctl(f->vm, KVM_CREATE_VCPU, 0);
	if (f->vcpu < 0)
		goto fail;

	struct perr err = {0};
	struct kvm_cpuid2 *supported = NULL, *cpuid = NULL;
	if (x86_cpuid_get_supported(f->kvm, &supported, &err) < 0 ||
	    x86_cpuid_for_vcpu(supported, 0, 1, &cpuid, &err) < 0) {
		free(supported);
		snprintf(why, size, "%.200s", err.msg);
		fixture_close(f);
		return false;
	}
	int rc = ioctl(f->vcpu, KVM_SET_CPUID2, cpuid);
	free(supported);
	free(cpuid);
	step = "KVM_SET_CPUID2";
	if (rc < 0)
		goto fail;
	return true;
fail:
	snprintf(why, size, "%s: %s", step, strerror(errno));
	fixture_close(f);
	return false;
}

#define OPEN_FIXTURE(f)                                      \
	do {                                                 \
		char why_[256];                              \
		if (!fixture_open(&(f), why_, sizeof(why_))) \
			UNIT_SKIP("%s", why_);               \
	} while (0)

/* Runs fn with two fresh VMs (saved from a, restored into b); skips when the
 * host cannot make them. */
static void with_two_vms(void (*fn)(struct kvm_fixture *a, struct kvm_fixture *b))
{
	struct kvm_fixture a, b;
	OPEN_FIXTURE(a);
	char why[256];
	if (!fixture_open(&b, why, sizeof(why))) {
		fixture_close(&a);
		UNIT_SKIP("second VM: %s", why);
	}
	fn(&a, &b);
	fixture_close(&a);
	fixture_close(&b);
}

/* KVM_GET_MSRS or KVM_SET_MSRS of one MSR; 0 when KVM took it. */
static int msr_rw(int fd, unsigned long req, uint32_t index, uint64_t *data)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + sizeof(m->entries[0]));
	if (!m)
		return -1;
	m->nmsrs = 1;
	m->entries[0].index = index;
	m->entries[0].data = *data;
	int rc = ioctl(fd, req, m) == 1 ? 0 : -1;
	*data = m->entries[0].data;
	free(m);
	return rc;
}

static int msr_get(int fd, uint32_t index, uint64_t *data)
{
	*data = 0;
	return msr_rw(fd, KVM_GET_MSRS, index, data);
}

static int msr_set(int fd, uint32_t index, uint64_t data)
{
	return msr_rw(fd, KVM_SET_MSRS, index, &data);
}

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned off)
{
	uint32_t v;
	memcpy(&v, l->regs + off, sizeof(v));
	return v;
}

static void lapic_set_reg(struct kvm_lapic_state *l, unsigned off, uint32_t v)
{
	memcpy(l->regs + off, &v, sizeof(v));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Copies of blobs to cut and corrupt: far more than a blob needs. */
static uint8_t good[1 << 16];
static uint8_t bad[1 << 16];

/* The offset of the record with this tag in a blob (12-byte header, then
 * {u32 tag, u32 len, payload} records), or 0. */
static size_t find_record(const uint8_t *blob, size_t len, uint32_t tag)
{
	for (size_t off = 12; off + 8 <= len; off += 8 + get_u32(blob + off + 4))
		if (get_u32(blob + off) == tag)
			return off;
	return 0;
}

/* What the first vCPU was given, for comparing with the second. */
struct vcpu_expect {
	bool has_xsave, has_xcr0, has_tsc, has_deadline, has_mtrr, has_halted;
	uint64_t xcr0;
	uint64_t deadline;
};

/* Distinctive state in every part of the blob. */
static void vcpu_dirty(int fd, struct vcpu_expect *x)
{
	struct perr err = {0};
	struct x86_boot_entry entry = {
	    .mode = X86_ENTRY_LONG64, .rip = 0x1000000, .boot_info_gpa = 0x7000};
	UNIT_ASSERT_EQ(x86_vcpu_set_boot_state(fd, &entry, &err), 0);

	struct kvm_sregs sregs;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_SREGS, &sregs), 0);
	sregs.cr2 = 0xdead0000;
	sregs.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_SREGS, &sregs), 0);

	struct kvm_regs regs;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_REGS, &regs), 0);
	regs.rax = 0x1122334455667788ull;
	regs.r15 = 0xfeedfacecafebeefull;
	regs.rip = 0x1234567;
	regs.rflags = 0x246; /* bit 1 (always 1), ZF, PF, IF */
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_REGS, &regs), 0);

	/* fcw and xmm0 in whichever form the host saves: XSAVE (legacy area
	 * at 0, XSTATE_BV at 512, marking x87 and SSE state as not in reset) or FPU. */
	struct kvm_xsave xsave;
	x->has_xsave = ioctl(fd, KVM_GET_XSAVE, &xsave) == 0;
	if (x->has_xsave) {
		uint8_t *area = (uint8_t *)xsave.region;
		uint16_t fcw = 0x27f;
		uint64_t bv;
		memcpy(area + XSAVE_FCW, &fcw, sizeof(fcw));
		memset(area + XSAVE_XMM0, 0xa5, 16);
		memcpy(&bv, area + XSAVE_XSTATE_BV, sizeof(bv));
		bv |= 0x3;
		memcpy(area + XSAVE_XSTATE_BV, &bv, sizeof(bv));
		UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_XSAVE, &xsave), 0);
	} else {
		struct kvm_fpu fpu;
		UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_FPU, &fpu), 0);
		fpu.fcw = 0x27f;
		memset(fpu.xmm[0], 0xa5, sizeof(fpu.xmm[0]));
		UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_FPU, &fpu), 0);
	}

	struct kvm_xcrs xcrs = {0};
	x->has_xcr0 = false;
	if (ioctl(fd, KVM_GET_XCRS, &xcrs) == 0 && xcrs.nr_xcrs > 0) {
		xcrs.xcrs[0].value = 0x3; /* x87 | SSE */
		x->has_xcr0 = ioctl(fd, KVM_SET_XCRS, &xcrs) == 0;
		x->xcr0 = 0x3;
	}

	UNIT_ASSERT_EQ(msr_set(fd, MSR_STAR, 0x0023001000000000ull), 0);
	UNIT_ASSERT_EQ(msr_set(fd, MSR_LSTAR, 0xffffffff81a00000ull), 0);
	UNIT_ASSERT_EQ(msr_set(fd, MSR_KERNEL_GS_BASE, 0xffff888012345000ull), 0);
	/* Some hosts (kvm_pvm) accept a TSC write and keep the host's TSC. */
	uint64_t tsc = 0;
	UNIT_ASSERT_EQ(msr_set(fd, MSR_IA32_TSC, TEST_TSC), 0);
	UNIT_ASSERT_EQ(msr_get(fd, MSR_IA32_TSC, &tsc), 0);
	x->has_tsc = tsc >= TEST_TSC && tsc < TEST_TSC + TEST_TSC_SLACK;
	/* Base 2 GiB, write-back: an MTRR, which KVM does not list. */
	x->has_mtrr = msr_set(fd, MSR_MTRR_PHYS_BASE0, 0x80000006ull) == 0;

	struct kvm_lapic_state lapic;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_LAPIC, &lapic), 0);
	lapic_set_reg(&lapic, APIC_TASKPRI, 0x20);
	lapic_set_reg(&lapic, APIC_SPIV, 0x1ff);	   /* enabled, vector 0xff */
	lapic_set_reg(&lapic, APIC_LVTT, 2u << 17 | 0xec); /* TSC-deadline mode */
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_LAPIC, &lapic), 0);
	/* Far enough ahead not to expire before the check. */
	x->deadline = tsc + TEST_DEADLINE_AHEAD;
	uint64_t deadline = 0;
	x->has_deadline = msr_set(fd, MSR_IA32_TSC_DEADLINE, x->deadline) == 0 &&
			  msr_get(fd, MSR_IA32_TSC_DEADLINE, &deadline) == 0 &&
			  deadline == x->deadline;

	struct kvm_vcpu_events events;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_VCPU_EVENTS, &events), 0);
	events.nmi.masked = 1;
	events.flags = 0;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_VCPU_EVENTS, &events), 0);

	struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_HALTED};
	x->has_halted = ioctl(fd, KVM_SET_MP_STATE, &mp) == 0;

	struct kvm_debugregs dbg;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_DEBUGREGS, &dbg), 0);
	dbg.db[0] = 0x401000;
	dbg.dr7 = 0x401; /* L0, and bit 10, which reads as 1 */
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_DEBUGREGS, &dbg), 0);
}

static void vcpu_check(int fd, const struct vcpu_expect *x)
{
	struct kvm_regs regs;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_REGS, &regs), 0);
	UNIT_ASSERT(regs.rax == 0x1122334455667788ull);
	UNIT_ASSERT(regs.r15 == 0xfeedfacecafebeefull);
	UNIT_ASSERT_EQ(regs.rip, 0x1234567);
	UNIT_ASSERT_EQ(regs.rflags, 0x246);
	UNIT_ASSERT_EQ(regs.rsi, 0x7000);

	struct kvm_sregs sregs;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_SREGS, &sregs), 0);
	UNIT_ASSERT_EQ(sregs.cr2, 0xdead0000);
	UNIT_ASSERT(sregs.cr0 & (1ull << 31));
	UNIT_ASSERT(sregs.cr4 & CR4_OSFXSR);
	UNIT_ASSERT(sregs.efer & (1ull << 10));
	UNIT_ASSERT_EQ(sregs.cs.l, 1);

	if (x->has_xsave) {
		struct kvm_xsave xsave;
		UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_XSAVE, &xsave), 0);
		const uint8_t *area = (const uint8_t *)xsave.region;
		uint16_t fcw;
		memcpy(&fcw, area + XSAVE_FCW, sizeof(fcw));
		UNIT_ASSERT_EQ(fcw, 0x27f);
		for (unsigned i = 0; i < 16; i++)
			UNIT_ASSERT_EQ(area[XSAVE_XMM0 + i], 0xa5);
	} else {
		struct kvm_fpu fpu;
		UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_FPU, &fpu), 0);
		UNIT_ASSERT_EQ(fpu.fcw, 0x27f);
		for (unsigned i = 0; i < sizeof(fpu.xmm[0]); i++)
			UNIT_ASSERT_EQ(fpu.xmm[0][i], 0xa5);
	}

	if (x->has_xcr0) {
		struct kvm_xcrs xcrs;
		UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_XCRS, &xcrs), 0);
		UNIT_ASSERT(xcrs.nr_xcrs > 0);
		UNIT_ASSERT_EQ(xcrs.xcrs[0].value, x->xcr0);
	}

	uint64_t v;
	UNIT_ASSERT_EQ(msr_get(fd, MSR_STAR, &v), 0);
	UNIT_ASSERT(v == 0x0023001000000000ull);
	UNIT_ASSERT_EQ(msr_get(fd, MSR_LSTAR, &v), 0);
	UNIT_ASSERT(v == 0xffffffff81a00000ull);
	UNIT_ASSERT_EQ(msr_get(fd, MSR_KERNEL_GS_BASE, &v), 0);
	UNIT_ASSERT(v == 0xffff888012345000ull);
	/* The TSC went on from the saved value (a fresh vCPU's starts near 0). */
	if (x->has_tsc) {
		UNIT_ASSERT_EQ(msr_get(fd, MSR_IA32_TSC, &v), 0);
		UNIT_ASSERT(v >= TEST_TSC && v < TEST_TSC + TEST_TSC_SLACK);
	}
	if (x->has_mtrr) {
		UNIT_ASSERT_EQ(msr_get(fd, MSR_MTRR_PHYS_BASE0, &v), 0);
		UNIT_ASSERT_EQ(v, 0x80000006ull);
	}
	if (x->has_deadline) {
		UNIT_ASSERT_EQ(msr_get(fd, MSR_IA32_TSC_DEADLINE, &v), 0);
		UNIT_ASSERT(v == x->deadline);
	}

	struct kvm_lapic_state lapic;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_LAPIC, &lapic), 0);
	UNIT_ASSERT_EQ(lapic_reg(&lapic, APIC_TASKPRI), 0x20);
	UNIT_ASSERT_EQ(lapic_reg(&lapic, APIC_SPIV), 0x1ff);
	UNIT_ASSERT_EQ(lapic_reg(&lapic, APIC_LVTT) & 0x600ff, 2u << 17 | 0xec);

	struct kvm_vcpu_events events;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_VCPU_EVENTS, &events), 0);
	UNIT_ASSERT_EQ(events.nmi.masked, 1);

	if (x->has_halted) {
		struct kvm_mp_state mp;
		UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_MP_STATE, &mp), 0);
		UNIT_ASSERT_EQ(mp.mp_state, KVM_MP_STATE_HALTED);
	}

	struct kvm_debugregs dbg;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_DEBUGREGS, &dbg), 0);
	UNIT_ASSERT_EQ(dbg.db[0], 0x401000);
	UNIT_ASSERT_EQ(dbg.dr7 & 0xffffffff, 0x401);
}

/* A saved vCPU blob of a dirtied vCPU in f. */
static int vcpu_blob(struct kvm_fixture *f, struct vcpu_expect *x, void **blob, size_t *len,
		     struct perr *err)
{
	vcpu_dirty(f->vcpu, x);
	if (unit_current.failed)
		return -1;
	uint32_t *msrs = NULL;
	size_t n = 0;
	int rc = x86_msr_index_list(f->kvm, &msrs, &n, err);
	if (rc == 0)
		rc = x86_vcpu_state_save(f->vcpu, msrs, n, blob, len, err);
	free(msrs);
	return rc;
}

static void run_vcpu_round_trip(struct kvm_fixture *a, struct kvm_fixture *b)
{
	struct vcpu_expect x = {0};
	struct perr err = {0};
	void *blob = NULL;
	size_t len = 0;
	int rc = vcpu_blob(a, &x, &blob, &len, &err);
	if (unit_current.failed)
		return;
	if (rc < 0)
		UNIT_FAIL("save: %s", err.msg);
	rc = x86_vcpu_state_restore(b->vcpu, blob, len, &err);
	free(blob);
	if (rc < 0)
		UNIT_FAIL("restore: %s", err.msg);
	vcpu_check(b->vcpu, &x);
}

UNIT_TEST(test_vcpu_state_survives_save_and_restore_into_a_new_vm)
{
	with_two_vms(run_vcpu_round_trip);
}

UNIT_TEST(test_msr_index_list_has_kvm_msrs_and_mtrrs)
{
	struct kvm_fixture a;
	OPEN_FIXTURE(a);
	uint32_t *msrs = NULL;
	size_t n = 0;
	struct perr err = {0};
	int rc = x86_msr_index_list(a.kvm, &msrs, &n, &err);
	fixture_close(&a);
	bool star = false, mtrr_def = false;
	for (size_t i = 0; i < n; i++) {
		star |= msrs[i] == MSR_STAR;
		mtrr_def |= msrs[i] == 0x2ff;
	}
	free(msrs);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT(n > 0 && n <= X86_VCPU_STATE_MAX_MSRS);
	UNIT_ASSERT(star);
	UNIT_ASSERT(mtrr_def);
}

/* Every length short of the whole, and every header byte flipped, is refused
 * before anything reaches the vCPU; the intact blob still restores after. */
static void run_vcpu_bad_blobs(struct kvm_fixture *a, struct kvm_fixture *b)
{
	struct vcpu_expect x = {0};
	struct perr err = {0};
	void *blob = NULL;
	size_t len = 0;
	int rc = vcpu_blob(a, &x, &blob, &len, &err);
	if (unit_current.failed)
		return;
	if (rc < 0)
		UNIT_FAIL("save: %s", err.msg);
	UNIT_ASSERT(blob && len > 12 && len <= sizeof(good));
	memcpy(good, blob, len);
	free(blob);

	struct perr e = {0};
	UNIT_ASSERT_EQ(x86_vcpu_state_restore(b->vcpu, NULL, 0, &e), -EINVAL);
	for (size_t l = 0; l < len; l++) {
		memcpy(bad, good, l);
		rc = x86_vcpu_state_restore(b->vcpu, bad, l, &e);
		if (rc != -EINVAL || !strstr(e.msg, "vCPU state"))
			UNIT_FAIL("%zu of %zu bytes: rc %d, \"%s\"", l, len, rc, e.msg);
	}

	/* The blob header, and each record's tag and length. */
	size_t offs[128];
	size_t n_offs = 0;
	for (size_t i = 0; i < 12; i++)
		offs[n_offs++] = i;
	for (size_t off = 12; off + 8 <= len && n_offs + 8 <= 128;
	     off += 8 + get_u32(good + off + 4))
		for (size_t i = 0; i < 8; i++)
			offs[n_offs++] = off + i;
	static const uint8_t flips[] = {0x01, 0x02, 0x10, 0x80, 0xff};
	for (size_t i = 0; i < n_offs; i++) {
		for (size_t j = 0; j < sizeof(flips); j++) {
			memcpy(bad, good, len);
			bad[offs[i]] ^= flips[j];
			rc = x86_vcpu_state_restore(b->vcpu, bad, len, &e);
			if (rc != -EINVAL)
				UNIT_FAIL("byte %zu ^ %#x: rc %d, \"%s\"", offs[i], flips[j], rc,
					  e.msg);
		}
	}

	/* Counts inside records. */
	size_t msr_off = find_record(good, len, REC_MSRS);
	UNIT_ASSERT(msr_off > 0);
	memcpy(bad, good, len);
	put_u32(bad + msr_off + 8, 0xffffffff);
	UNIT_ASSERT_EQ(x86_vcpu_state_restore(b->vcpu, bad, len, &e), -EINVAL);
	UNIT_ASSERT_CONTAINS(e.msg, "MSR record");
	memcpy(bad, good, len);
	put_u32(bad + msr_off + 8, get_u32(bad + msr_off + 8) - 1);
	UNIT_ASSERT_EQ(x86_vcpu_state_restore(b->vcpu, bad, len, &e), -EINVAL);
	UNIT_ASSERT_CONTAINS(e.msg, "MSR record");
	size_t xcr_off = find_record(good, len, REC_XCRS);
	if (xcr_off) {
		memcpy(bad, good, len);
		put_u32(bad + xcr_off + 8, KVM_MAX_XCRS + 1);
		UNIT_ASSERT_EQ(x86_vcpu_state_restore(b->vcpu, bad, len, &e), -EINVAL);
		UNIT_ASSERT_CONTAINS(e.msg, "XCRs");
	}

	/* An MSR this vCPU has no such thing as: named, not skipped. */
	memcpy(bad, good, len);
	uint32_t count = get_u32(bad + msr_off + 8);
	bool patched = false;
	for (uint32_t i = 0; i < count; i++) {
		uint8_t *entry = bad + msr_off + 16 + i * 16;
		if (get_u32(entry) == MSR_STAR) {
			put_u32(entry, 0x4fff0000);
			patched = true;
		}
	}
	UNIT_ASSERT(patched);
	/* Unless KVM is told to ignore unknown MSRs (kvm.ignore_msrs=1). */
	rc = x86_vcpu_state_restore(b->vcpu, bad, len, &e);
	if (rc != 0) {
		UNIT_ASSERT_EQ(rc, -EINVAL);
		UNIT_ASSERT_STREQ(e.msg, "MSR 0x4fff0000: KVM_SET_MSRS refused");
	}

	rc = x86_vcpu_state_restore(b->vcpu, good, len, &err);
	if (rc < 0)
		UNIT_FAIL("restore: %s", err.msg);
	vcpu_check(b->vcpu, &x);
}

UNIT_TEST(test_vcpu_state_refuses_truncated_and_corrupt_blobs)
{
	with_two_vms(run_vcpu_bad_blobs);
}

/* What the first VM was given, as KVM reads it back there. */
struct vm_expect {
	uint64_t ioapic_pin5;
	uint8_t pic_imr;
	struct kvm_pit_channel_state pit0;
};

static void vm_dirty(int fd, struct vm_expect *x)
{
	struct kvm_irqchip chip = {.chip_id = KVM_IRQCHIP_IOAPIC};
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_IRQCHIP, &chip), 0);
	/* Vector 0x35, masked, to APIC 1. */
	chip.chip.ioapic.redirtbl[5].bits = 0x35 | 1ull << 16 | 1ull << 56;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_IRQCHIP, &chip), 0);
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_IRQCHIP, &chip), 0);
	x->ioapic_pin5 = chip.chip.ioapic.redirtbl[5].bits;
	UNIT_ASSERT(x->ioapic_pin5 == (0x35 | 1ull << 16 | 1ull << 56));

	chip = (struct kvm_irqchip){.chip_id = KVM_IRQCHIP_PIC_MASTER};
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_IRQCHIP, &chip), 0);
	chip.chip.pic.imr = 0xfa;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_IRQCHIP, &chip), 0);
	x->pic_imr = 0xfa;

	struct kvm_pit_state2 pit;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_PIT2, &pit), 0);
	pit.channels[0].count = 0x1234;
	pit.channels[0].mode = 2;
	pit.channels[0].rw_mode = 3;
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_PIT2, &pit), 0);
	UNIT_ASSERT_EQ(ioctl(fd, KVM_GET_PIT2, &pit), 0);
	x->pit0 = pit.channels[0];
	UNIT_ASSERT_EQ(x->pit0.count, 0x1234);

	struct kvm_clock_data clock = {.clock = TEST_CLOCK_NS};
	UNIT_ASSERT_EQ(ioctl(fd, KVM_SET_CLOCK, &clock), 0);
}

static void run_vm_round_trip(struct kvm_fixture *a, struct kvm_fixture *b)
{
	struct vm_expect x = {0};
	vm_dirty(a->vm, &x);
	if (unit_current.failed)
		return;
	struct perr err = {0};
	void *blob = NULL;
	size_t len = 0;
	if (x86_vm_state_save(a->vm, &blob, &len, &err) < 0)
		UNIT_FAIL("save: %s", err.msg);
	UNIT_ASSERT(blob && len > 12 && len <= sizeof(good));
	memcpy(good, blob, len);
	free(blob);

	struct perr e = {0};
	for (size_t l = 0; l < len; l++) {
		memcpy(bad, good, l);
		int rc = x86_vm_state_restore(b->vm, bad, l, &e);
		if (rc != -EINVAL || !strstr(e.msg, "VM state"))
			UNIT_FAIL("%zu of %zu bytes: rc %d, \"%s\"", l, len, rc, e.msg);
	}
	for (size_t i = 0; i < 12; i++) {
		memcpy(bad, good, len);
		bad[i] ^= 0x01;
		UNIT_ASSERT_EQ(x86_vm_state_restore(b->vm, bad, len, &e), -EINVAL);
	}
	/* The IOAPIC record (tag 3) claiming to be chip 0. */
	size_t off = find_record(good, len, 3);
	UNIT_ASSERT(off > 0);
	memcpy(bad, good, len);
	put_u32(bad + off + 8, 0);
	UNIT_ASSERT_EQ(x86_vm_state_restore(b->vm, bad, len, &e), -EINVAL);
	UNIT_ASSERT_CONTAINS(e.msg, "chip id");

	int rc = x86_vm_state_restore(b->vm, good, len, &err);
	if (rc < 0)
		UNIT_FAIL("restore: %s", err.msg);

	struct kvm_irqchip chip = {.chip_id = KVM_IRQCHIP_IOAPIC};
	UNIT_ASSERT_EQ(ioctl(b->vm, KVM_GET_IRQCHIP, &chip), 0);
	UNIT_ASSERT(chip.chip.ioapic.redirtbl[5].bits == x.ioapic_pin5);
	chip = (struct kvm_irqchip){.chip_id = KVM_IRQCHIP_PIC_MASTER};
	UNIT_ASSERT_EQ(ioctl(b->vm, KVM_GET_IRQCHIP, &chip), 0);
	UNIT_ASSERT_EQ(chip.chip.pic.imr, x.pic_imr);
	struct kvm_pit_state2 pit;
	UNIT_ASSERT_EQ(ioctl(b->vm, KVM_GET_PIT2, &pit), 0);
	UNIT_ASSERT_EQ(pit.channels[0].count, x.pit0.count);
	UNIT_ASSERT_EQ(pit.channels[0].mode, x.pit0.mode);
	UNIT_ASSERT_EQ(pit.channels[0].rw_mode, x.pit0.rw_mode);
	/* The clock goes on from the saved value. */
	struct kvm_clock_data clock = {0};
	UNIT_ASSERT_EQ(ioctl(b->vm, KVM_GET_CLOCK, &clock), 0);
	UNIT_ASSERT(clock.clock >= TEST_CLOCK_NS && clock.clock < TEST_CLOCK_NS + 10000000000ull);
}

UNIT_TEST(test_vm_state_survives_save_and_restore_into_a_new_vm)
{
	with_two_vms(run_vm_round_trip);
}

UNIT_MAIN("x86_vcpu_state")
