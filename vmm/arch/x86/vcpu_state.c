#include "vcpu_state.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../../../common/cleanup.h"

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_MCG_CAP      0x179
#define MSR_LASTBRANCH_FROM   0x1db
#define MSR_LASTINT_TO	      0x1de
#define MSR_MTRR_PHYS_BASE0   0x200
#define MSR_MTRR_FIX_64K      0x250
#define MSR_MTRR_FIX_16K_80K  0x258
#define MSR_MTRR_FIX_16K_A0K  0x259
#define MSR_MTRR_FIX_4K_C0K   0x268
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_IA32_TSC_DEADLINE 0x6e0

/* KVM emulates 8 variable-range MTRRs (MTRRcap.VCNT). */
#define MTRR_NR_VAR 8

/* "PVCP" and "PVVM" as they read in a hex dump. */
#define VCPU_BLOB_MAGIC 0x50435650u
#define VM_BLOB_MAGIC	0x4d565650u
#define BLOB_VERSION	1

/* Little-endian x86 only: headers and payloads are the host's raw bytes. */
struct blob_header {
	uint32_t magic;
	uint32_t version;
	uint32_t len; /* of the whole blob, header included */
};

struct rec_header {
	uint32_t tag;
	uint32_t len; /* of the payload that follows */
};

/* The MSR record: this, then count struct kvm_msr_entry. */
struct msr_rec_header {
	uint32_t count;
	uint32_t reserved;
};

/* Record tags are part of the file format: never renumber. */
enum {
	VCPU_REGS = 1,
	VCPU_SREGS = 2,
	VCPU_XSAVE = 3,
	VCPU_FPU = 4,
	VCPU_XCRS = 5,
	VCPU_MSRS = 6,
	VCPU_MP_STATE = 7,
	VCPU_LAPIC = 8,
	VCPU_EVENTS = 9,
	VCPU_DEBUGREGS = 10,
	VCPU_NTAGS
};

enum { VM_PIC_MASTER = 1, VM_PIC_SLAVE = 2, VM_IOAPIC = 3, VM_PIT2 = 4, VM_CLOCK = 5, VM_NTAGS };

#define MAX_TAGS 16

struct rec_kind {
	const char *name;
	uint32_t size; /* the payload's exact size; 0: variable, checked by its parser */
	bool required;
};

/* XSAVE or FPU, whichever the host had; XCRS and debug registers when the host has them. */
static const struct rec_kind vcpu_recs[VCPU_NTAGS] = {
    [VCPU_REGS] = {"regs", sizeof(struct kvm_regs), true},
    [VCPU_SREGS] = {"sregs", sizeof(struct kvm_sregs), true},
    [VCPU_XSAVE] = {"XSAVE", sizeof(struct kvm_xsave), false},
    [VCPU_FPU] = {"FPU", sizeof(struct kvm_fpu), false},
    [VCPU_XCRS] = {"XCRs", sizeof(struct kvm_xcrs), false},
    [VCPU_MSRS] = {"MSRs", 0, true},
    [VCPU_MP_STATE] = {"MP state", sizeof(struct kvm_mp_state), true},
    [VCPU_LAPIC] = {"LAPIC", sizeof(struct kvm_lapic_state), true},
    [VCPU_EVENTS] = {"vCPU events", sizeof(struct kvm_vcpu_events), true},
    [VCPU_DEBUGREGS] = {"debug registers", sizeof(struct kvm_debugregs), false},
};

static const struct rec_kind vm_recs[VM_NTAGS] = {
    [VM_PIC_MASTER] = {"PIC master", sizeof(struct kvm_irqchip), true},
    [VM_PIC_SLAVE] = {"PIC slave", sizeof(struct kvm_irqchip), true},
    [VM_IOAPIC] = {"IOAPIC", sizeof(struct kvm_irqchip), true},
    [VM_PIT2] = {"PIT", sizeof(struct kvm_pit_state2), false},
    [VM_CLOCK] = {"clock", sizeof(struct kvm_clock_data), true},
};

_Static_assert(VCPU_NTAGS <= MAX_TAGS && VM_NTAGS <= MAX_TAGS, "MAX_TAGS too small");
_Static_assert(sizeof(struct kvm_msr_entry) == 16, "struct kvm_msr_entry changed");

/* ------------------------------------------------------------------------ */
/* Writing and reading blobs                                                  */
/* ------------------------------------------------------------------------ */

struct blob_writer {
	uint8_t *buf;
	size_t len;
	size_t cap;
};

static int bw_put2(struct blob_writer *w, uint32_t tag, const void *head, size_t head_len,
		   const void *body, size_t body_len, struct perr *err)
{
	size_t need = sizeof(struct rec_header) + head_len + body_len;
	if (w->cap - w->len < need) {
		size_t cap = w->cap ? w->cap : 8192;
		while (cap - w->len < need)
			cap *= 2;
		uint8_t *p = realloc(w->buf, cap);
		if (!p)
			return perr_setx(err, -ENOMEM, "out of memory");
		w->buf = p;
		w->cap = cap;
	}
	struct rec_header r = {.tag = tag, .len = (uint32_t)(head_len + body_len)};
	memcpy(w->buf + w->len, &r, sizeof(r));
	w->len += sizeof(r);
	memcpy(w->buf + w->len, head, head_len);
	w->len += head_len;
	if (body_len) {
		memcpy(w->buf + w->len, body, body_len);
		w->len += body_len;
	}
	return 0;
}

static int bw_put(struct blob_writer *w, uint32_t tag, const void *payload, size_t len,
		  struct perr *err)
{
	return bw_put2(w, tag, payload, len, NULL, 0, err);
}

static int bw_begin(struct blob_writer *w, uint32_t magic, struct perr *err)
{
	w->buf = malloc(8192);
	if (!w->buf)
		return perr_setx(err, -ENOMEM, "out of memory");
	w->cap = 8192;
	struct blob_header h = {.magic = magic, .version = BLOB_VERSION};
	memcpy(w->buf, &h, sizeof(h));
	w->len = sizeof(h);
	return 0;
}

/* Fills in the total length and hands the buffer over. */
static void bw_finish(struct blob_writer *w, void **blob, size_t *len)
{
	uint32_t total = (uint32_t)w->len;
	memcpy(w->buf + offsetof(struct blob_header, len), &total, sizeof(total));
	*len = w->len;
	*blob = steal_ptr(w->buf);
}

/* Where each record of a parsed blob is; NULL for those it does not have. */
struct blob_view {
	const uint8_t *rec[MAX_TAGS];
	uint32_t len[MAX_TAGS];
};

/* Checks the header and every record's tag and length against kinds[], so that
 * the callers read each payload with a length already known to be right. */
static int blob_parse(const void *blob, size_t len, uint32_t magic, const char *what,
		      const struct rec_kind *kinds, uint32_t n_kinds, struct blob_view *v,
		      struct perr *err)
{
	memset(v, 0, sizeof(*v));
	struct blob_header h;
	if (!blob || len < sizeof(h))
		return perr_setx(err, -EINVAL, "%s: %zu bytes, shorter than its header", what, len);
	memcpy(&h, blob, sizeof(h));
	if (h.magic != magic)
		return perr_setx(err, -EINVAL, "%s: bad magic %#x", what, h.magic);
	if (h.version != BLOB_VERSION)
		return perr_setx(err, -EINVAL, "%s: version %u; only %u is known", what, h.version,
				 BLOB_VERSION);
	if (h.len != len)
		return perr_setx(err, -EINVAL, "%s: header says %u bytes, the blob has %zu", what,
				 h.len, len);

	const uint8_t *p = blob;
	size_t off = sizeof(h);
	while (off < len) {
		struct rec_header r;
		if (len - off < sizeof(r))
			return perr_setx(err, -EINVAL, "%s: truncated record header at offset %zu",
					 what, off);
		memcpy(&r, p + off, sizeof(r));
		if (r.tag == 0 || r.tag >= n_kinds || !kinds[r.tag].name)
			return perr_setx(err, -EINVAL, "%s: unknown record tag %u at offset %zu",
					 what, r.tag, off);
		const struct rec_kind *k = &kinds[r.tag];
		off += sizeof(r);
		if (r.len > len - off)
			return perr_setx(err, -EINVAL, "%s: %s record: %u bytes, only %zu left",
					 what, k->name, r.len, len - off);
		if (k->size && r.len != k->size)
			return perr_setx(err, -EINVAL, "%s: %s record: %u bytes, expected %u", what,
					 k->name, r.len, k->size);
		if (v->rec[r.tag])
			return perr_setx(err, -EINVAL, "%s: two %s records", what, k->name);
		v->rec[r.tag] = p + off;
		v->len[r.tag] = r.len;
		off += r.len;
	}
	for (uint32_t t = 1; t < n_kinds; t++)
		if (kinds[t].required && !v->rec[t])
			return perr_setx(err, -EINVAL, "%s: no %s record", what, kinds[t].name);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* MSRs                                                                       */
/* ------------------------------------------------------------------------ */

static bool msr_listed(const uint32_t *list, size_t n, uint32_t index)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == index)
			return true;
	return false;
}

int x86_msr_index_list(int kvm_fd, uint32_t **out, size_t *n, struct perr *err)
{
	/* The MTRRs are per-vCPU state in KVM (a guest that reprograms them expects
	 * them kept) but KVM_GET_MSR_INDEX_LIST does not name them. */
	uint32_t mtrrs[1 + 2 * MTRR_NR_VAR + 11];
	size_t n_mtrrs = 0;
	mtrrs[n_mtrrs++] = MSR_MTRR_DEF_TYPE;
	for (uint32_t i = 0; i < 2 * MTRR_NR_VAR; i++)
		mtrrs[n_mtrrs++] = MSR_MTRR_PHYS_BASE0 + i;
	mtrrs[n_mtrrs++] = MSR_MTRR_FIX_64K;
	mtrrs[n_mtrrs++] = MSR_MTRR_FIX_16K_80K;
	mtrrs[n_mtrrs++] = MSR_MTRR_FIX_16K_A0K;
	for (uint32_t i = 0; i < 8; i++)
		mtrrs[n_mtrrs++] = MSR_MTRR_FIX_4K_C0K + i;

	/* With nmsrs 0 KVM fails with E2BIG and says how many there are. */
	struct kvm_msr_list probe = {.nmsrs = 0};
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return perr_set(err, -errno, "KVM_GET_MSR_INDEX_LIST");
	if (probe.nmsrs + n_mtrrs > X86_VCPU_STATE_MAX_MSRS)
		return perr_setx(err, -E2BIG,
				 "KVM_GET_MSR_INDEX_LIST: %u MSRs, more than a snapshot carries",
				 probe.nmsrs);

	struct kvm_msr_list *list =
	    calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	uint32_t *all = calloc(probe.nmsrs + n_mtrrs, sizeof(*all));
	int rc = 0;
	if (!list || !all) {
		rc = perr_setx(err, -ENOMEM, "out of memory");
		goto out;
	}
	list->nmsrs = probe.nmsrs;
	if (probe.nmsrs && ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		rc = perr_set(err, -errno, "KVM_GET_MSR_INDEX_LIST");
		goto out;
	}

	size_t count = 0;
	for (uint32_t i = 0; i < list->nmsrs && i < probe.nmsrs; i++)
		all[count++] = list->indices[i];
	for (size_t i = 0; i < n_mtrrs; i++)
		if (!msr_listed(all, count, mtrrs[i]))
			all[count++] = mtrrs[i];
	*out = steal_ptr(all);
	*n = count;
out:
	free(all);
	free(list);
	return rc;
}

static int msrs_save(struct blob_writer *w, int fd, const uint32_t *idx, size_t n, struct perr *err)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	struct kvm_msr_entry *kept = calloc(n ? n : 1, sizeof(*kept));
	int rc = 0;
	if (!m || !kept) {
		rc = perr_setx(err, -ENOMEM, "out of memory");
		goto out;
	}

	struct msr_rec_header h = {0};
	size_t i = 0;
	while (i < n) {
		size_t batch = n - i;
		m->nmsrs = (uint32_t)batch;
		for (size_t j = 0; j < batch; j++)
			m->entries[j] = (struct kvm_msr_entry){.index = idx[i + j]};
		int r = ioctl(fd, KVM_GET_MSRS, m);
		if (r < 0) {
			rc = perr_set(err, -errno, "KVM_GET_MSRS");
			goto out;
		}
		if ((size_t)r > batch)
			r = (int)batch;
		memcpy(kept + h.count, m->entries, (size_t)r * sizeof(*kept));
		h.count += (uint32_t)r;
		i += (size_t)r;
		/* KVM_GET_MSRS stops at the first MSR it cannot read (one this
		 * vCPU's CPUID does not have): leave that one out. */
		if (i < n)
			i++;
	}
	rc = bw_put2(w, VCPU_MSRS, &h, sizeof(h), kept, h.count * sizeof(*kept), err);
out:
	free(kept);
	free(m);
	return rc;
}

/* SDM/APM read-only MSRs that KVM lists or has listed: the AMD last-branch and
 * last-exception IPs (0x1db-0x1de), which the CPU records, and MCG_CAP, which
 * KVM sets from KVM_X86_SETUP_MCE. A new vCPU's value is not the saved one, and
 * nothing a restore could write would change it. */
static bool msr_read_only(uint32_t index)
{
	return (index >= MSR_LASTBRANCH_FROM && index <= MSR_LASTINT_TO) ||
	       index == MSR_IA32_MCG_CAP;
}

static int msr_refused(int fd, const struct kvm_msr_entry *e, struct perr *err)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + sizeof(m->entries[0]));
	if (!m)
		return perr_setx(err, -ENOMEM, "out of memory");
	m->nmsrs = 1;
	m->entries[0].index = e->index;
	/* KVM refuses some writes of the value an MSR already has (a read-only
	 * one written with its own value is not a loss). */
	bool same = ioctl(fd, KVM_GET_MSRS, m) == 1 && m->entries[0].data == e->data;
	free(m);
	if (same || msr_read_only(e->index))
		return 0;
	return perr_setx(err, -EINVAL, "MSR 0x%x: KVM_SET_MSRS refused", e->index);
}

static int msrs_put(int fd, const struct kvm_msr_entry *e, size_t n, struct perr *err)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(*e));
	if (!m)
		return perr_setx(err, -ENOMEM, "out of memory");
	int rc = 0;
	size_t i = 0;
	while (i < n) {
		m->nmsrs = (uint32_t)(n - i);
		memcpy(m->entries, e + i, (n - i) * sizeof(*e));
		/* Returns how many it set: it stops at the first it refuses. */
		int r = ioctl(fd, KVM_SET_MSRS, m);
		if (r < 0) {
			rc = perr_set(err, -errno, "KVM_SET_MSRS");
			break;
		}
		i += (size_t)r < n - i ? (size_t)r : n - i;
		if (i < n) {
			rc = msr_refused(fd, &e[i], err);
			if (rc < 0)
				break;
			i++;
		}
	}
	free(m);
	return rc;
}

/* The MSR record, checked and split into the order restore writes them: the
 * TSC first (others, such as TSC_ADJUST, are relative to it), then the rest
 * but the TSC deadline, which only counts once the LAPIC is in deadline mode. */
struct msr_sets {
	struct kvm_msr_entry *early;
	size_t n_early;
	struct kvm_msr_entry late;
	bool has_late;
};

static int msrs_parse(const uint8_t *p, uint32_t len, struct msr_sets *s, struct perr *err)
{
	struct msr_rec_header h;
	if (len < sizeof(h))
		return perr_setx(err, -EINVAL, "vCPU state: MSR record: %u bytes, no count", len);
	memcpy(&h, p, sizeof(h));
	if (h.count > X86_VCPU_STATE_MAX_MSRS)
		return perr_setx(err, -EINVAL, "vCPU state: MSR record: %u MSRs, more than %d",
				 h.count, X86_VCPU_STATE_MAX_MSRS);
	size_t want = sizeof(h) + (size_t)h.count * sizeof(struct kvm_msr_entry);
	if (h.reserved != 0 || len != want)
		return perr_setx(err, -EINVAL,
				 "vCPU state: MSR record: %u bytes for %u MSRs, expected %zu", len,
				 h.count, want);

	s->early = calloc(h.count ? h.count : 1, sizeof(*s->early));
	if (!s->early)
		return perr_setx(err, -ENOMEM, "out of memory");
	s->n_early = 0;
	s->has_late = false;
	bool has_tsc = false;
	for (uint32_t i = 0; i < h.count; i++) {
		struct kvm_msr_entry e;
		memcpy(&e, p + sizeof(h) + i * sizeof(e), sizeof(e));
		if (e.reserved != 0)
			return perr_setx(err, -EINVAL, "vCPU state: MSR 0x%x: reserved bits set",
					 e.index);
		if (e.index == MSR_IA32_TSC_DEADLINE) {
			s->late = e;
			s->has_late = true;
		} else if (e.index == MSR_IA32_TSC && !has_tsc) {
			memmove(s->early + 1, s->early, s->n_early * sizeof(e));
			s->early[0] = e;
			s->n_early++;
			has_tsc = true;
		} else {
			s->early[s->n_early++] = e;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* vCPU state                                                                 */
/* ------------------------------------------------------------------------ */

/* How x86 KVM answers a vCPU ioctl it does not have: EINVAL from the arch
 * handler's default, ENOTTY or EOPNOTSUPP elsewhere. */
static bool ioctl_absent(int e)
{
	return e == EINVAL || e == ENOTTY || e == EOPNOTSUPP || e == ENOSYS;
}

static int save_rec(struct blob_writer *w, int fd, unsigned long req, const char *req_name,
		    uint32_t tag, void *buf, size_t size, struct perr *err)
{
	if (ioctl(fd, req, buf) < 0)
		return perr_set(err, -errno, "%s", req_name);
	return bw_put(w, tag, buf, size, err);
}

/* XSAVE carries the AVX and later state; the legacy FPU ioctl is only for
 * hosts without it. KVM_GET_XSAVE fails with EINVAL when the state does not
 * fit struct kvm_xsave (dynamic features such as AMX, KVM_CAP_XSAVE2 > 4096):
 * falling back to the FPU then would silently lose state. */
static int save_fpu(struct blob_writer *w, int fd, struct perr *err)
{
	struct kvm_xsave xsave;
	memset(&xsave, 0, sizeof(xsave));
	if (ioctl(fd, KVM_GET_XSAVE, &xsave) == 0)
		return bw_put(w, VCPU_XSAVE, &xsave, sizeof(xsave), err);
	int e = errno;
	if (e == EINVAL)
		return perr_set(err, -e, "KVM_GET_XSAVE (state larger than %zu bytes, e.g. AMX?)",
				sizeof(xsave));
	if (!ioctl_absent(e))
		return perr_set(err, -e, "KVM_GET_XSAVE");
	struct kvm_fpu fpu;
	memset(&fpu, 0, sizeof(fpu));
	return save_rec(w, fd, KVM_GET_FPU, "KVM_GET_FPU", VCPU_FPU, &fpu, sizeof(fpu), err);
}

static int vcpu_save_records(struct blob_writer *w, int vcpu_fd, const uint32_t *msrs,
			     size_t n_msrs, struct perr *err)
{
	struct kvm_regs regs = {0};
	int rc =
	    save_rec(w, vcpu_fd, KVM_GET_REGS, "KVM_GET_REGS", VCPU_REGS, &regs, sizeof(regs), err);
	if (rc < 0)
		return rc;
	struct kvm_sregs sregs = {0};
	rc = save_rec(w, vcpu_fd, KVM_GET_SREGS, "KVM_GET_SREGS", VCPU_SREGS, &sregs, sizeof(sregs),
		      err);
	if (rc < 0)
		return rc;
	rc = save_fpu(w, vcpu_fd, err);
	if (rc < 0)
		return rc;

	/* Left out where the host lacks KVM_CAP_XCRS, or has no XCRs (no XSAVE):
	 * KVM_SET_XCRS then fails even with nr_xcrs 0. */
	struct kvm_xcrs xcrs = {0};
	if (ioctl(vcpu_fd, KVM_GET_XCRS, &xcrs) == 0) {
		if (xcrs.nr_xcrs > 0) {
			rc = bw_put(w, VCPU_XCRS, &xcrs, sizeof(xcrs), err);
			if (rc < 0)
				return rc;
		}
	} else if (!ioctl_absent(errno)) {
		return perr_set(err, -errno, "KVM_GET_XCRS");
	}

	rc = msrs_save(w, vcpu_fd, msrs, n_msrs, err);
	if (rc < 0)
		return rc;

	struct kvm_mp_state mp = {0};
	rc = save_rec(w, vcpu_fd, KVM_GET_MP_STATE, "KVM_GET_MP_STATE", VCPU_MP_STATE, &mp,
		      sizeof(mp), err);
	if (rc < 0)
		return rc;
	struct kvm_lapic_state lapic;
	memset(&lapic, 0, sizeof(lapic));
	rc = save_rec(w, vcpu_fd, KVM_GET_LAPIC, "KVM_GET_LAPIC", VCPU_LAPIC, &lapic, sizeof(lapic),
		      err);
	if (rc < 0)
		return rc;
	struct kvm_vcpu_events events = {0};
	rc = save_rec(w, vcpu_fd, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", VCPU_EVENTS, &events,
		      sizeof(events), err);
	if (rc < 0)
		return rc;

	struct kvm_debugregs dbg = {0};
	if (ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &dbg) == 0) {
		rc = bw_put(w, VCPU_DEBUGREGS, &dbg, sizeof(dbg), err);
		if (rc < 0)
			return rc;
	} else if (!ioctl_absent(errno)) {
		return perr_set(err, -errno, "KVM_GET_DEBUGREGS");
	}

	return 0;
}

int x86_vcpu_state_save(int vcpu_fd, const uint32_t *msrs, size_t n_msrs, void **blob, size_t *len,
			struct perr *err)
{
	if (n_msrs > X86_VCPU_STATE_MAX_MSRS)
		return perr_setx(err, -EINVAL, "%zu MSRs, more than the %d a snapshot carries",
				 n_msrs, X86_VCPU_STATE_MAX_MSRS);
	struct blob_writer w = {0};
	int rc = bw_begin(&w, VCPU_BLOB_MAGIC, err);
	if (rc == 0)
		rc = vcpu_save_records(&w, vcpu_fd, msrs, n_msrs, err);
	if (rc < 0) {
		free(w.buf);
		return rc;
	}
	bw_finish(&w, blob, len);
	return 0;
}

/* Everything in a vCPU blob, checked and copied out of it (aligned), before
 * anything is written to the vCPU. */
struct vcpu_saved {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_mp_state mp;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dbg;
	struct msr_sets msrs;
	bool has_xsave, has_xcrs, has_dbg;
};

/* Copies a record checked by blob_parse (so of exactly this size) out of the
 * blob; false when the blob does not have it. */
static bool rec_copy(const struct blob_view *v, uint32_t tag, void *dst, size_t size)
{
	if (!v->rec[tag])
		return false;
	memcpy(dst, v->rec[tag], size);
	return true;
}

static int vcpu_saved_parse(const void *blob, size_t len, struct vcpu_saved *s, struct perr *err)
{
	struct blob_view v;
	int rc =
	    blob_parse(blob, len, VCPU_BLOB_MAGIC, "vCPU state", vcpu_recs, VCPU_NTAGS, &v, err);
	if (rc < 0)
		return rc;
	if (!v.rec[VCPU_XSAVE] == !v.rec[VCPU_FPU])
		return perr_setx(err, -EINVAL, "vCPU state: needs exactly one of XSAVE and FPU");

	/* blob_parse has made sure that the required ones are there. */
	rec_copy(&v, VCPU_REGS, &s->regs, sizeof(s->regs));
	rec_copy(&v, VCPU_SREGS, &s->sregs, sizeof(s->sregs));
	s->has_xsave = rec_copy(&v, VCPU_XSAVE, &s->xsave, sizeof(s->xsave));
	rec_copy(&v, VCPU_FPU, &s->fpu, sizeof(s->fpu));
	s->has_xcrs = rec_copy(&v, VCPU_XCRS, &s->xcrs, sizeof(s->xcrs));
	if (s->has_xcrs && (s->xcrs.nr_xcrs > KVM_MAX_XCRS || s->xcrs.flags != 0))
		return perr_setx(err, -EINVAL, "vCPU state: %u XCRs (flags %#x), at most %d",
				 s->xcrs.nr_xcrs, s->xcrs.flags, KVM_MAX_XCRS);
	rec_copy(&v, VCPU_MP_STATE, &s->mp, sizeof(s->mp));
	rec_copy(&v, VCPU_LAPIC, &s->lapic, sizeof(s->lapic));
	rec_copy(&v, VCPU_EVENTS, &s->events, sizeof(s->events));
	s->has_dbg = rec_copy(&v, VCPU_DEBUGREGS, &s->dbg, sizeof(s->dbg));
	if (s->has_dbg && s->dbg.flags != 0)
		return perr_setx(err, -EINVAL, "vCPU state: debug register flags %#llx",
				 (unsigned long long)s->dbg.flags);
	return msrs_parse(v.rec[VCPU_MSRS], v.len[VCPU_MSRS], &s->msrs, err);
}

static int vcpu_set(int fd, unsigned long req, const char *req_name, const void *arg,
		    struct perr *err)
{
	if (ioctl(fd, req, arg) < 0)
		return perr_set(err, -errno, "%s", req_name);
	return 0;
}

/* The order follows what each setter depends on: sregs first (CR0/CR4/EFER
 * decide which regs and XCRs are valid, APIC_BASE the LAPIC's mode). */
static int vcpu_saved_apply(int fd, struct vcpu_saved *s, struct perr *err)
{
	int rc = vcpu_set(fd, KVM_SET_SREGS, "KVM_SET_SREGS", &s->sregs, err);
	if (rc == 0)
		rc = vcpu_set(fd, KVM_SET_REGS, "KVM_SET_REGS", &s->regs, err);
	if (rc == 0 && s->has_xsave)
		rc = vcpu_set(fd, KVM_SET_XSAVE, "KVM_SET_XSAVE", &s->xsave, err);
	if (rc == 0 && !s->has_xsave)
		rc = vcpu_set(fd, KVM_SET_FPU, "KVM_SET_FPU", &s->fpu, err);
	if (rc == 0 && s->has_xcrs)
		rc = vcpu_set(fd, KVM_SET_XCRS, "KVM_SET_XCRS", &s->xcrs, err);
	if (rc == 0)
		rc = msrs_put(fd, s->msrs.early, s->msrs.n_early, err);
	if (rc < 0)
		return rc;

	/* nmi.pending and sipi_vector are only written when flagged; the interrupt
	 * shadow, SMM, payload and triple-fault state only when KVM said on save
	 * that they were valid (the last two need the same KVM_ENABLE_CAPs). */
	s->events.flags &= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
			   KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	s->events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	rc = vcpu_set(fd, KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &s->events, err);
	if (rc == 0)
		rc = vcpu_set(fd, KVM_SET_MP_STATE, "KVM_SET_MP_STATE", &s->mp, err);
	if (rc == 0)
		rc = vcpu_set(fd, KVM_SET_LAPIC, "KVM_SET_LAPIC", &s->lapic, err);
	/* KVM drops a deadline written while the LAPIC timer is not in
	 * TSC-deadline mode, so it goes after the LAPIC. */
	if (rc == 0 && s->msrs.has_late)
		rc = msrs_put(fd, &s->msrs.late, 1, err);
	if (rc == 0 && s->has_dbg)
		rc = vcpu_set(fd, KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", &s->dbg, err);
	return rc;
}

int x86_vcpu_state_restore(int vcpu_fd, const void *blob, size_t len, struct perr *err)
{
	struct vcpu_saved *s = calloc(1, sizeof(*s));
	if (!s)
		return perr_setx(err, -ENOMEM, "out of memory");
	int rc = vcpu_saved_parse(blob, len, s, err);
	if (rc == 0)
		rc = vcpu_saved_apply(vcpu_fd, s, err);
	free(s->msrs.early);
	free(s);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* VM state                                                                   */
/* ------------------------------------------------------------------------ */

static const struct {
	uint32_t tag;
	uint32_t chip_id;
} irqchips[] = {
    {VM_PIC_MASTER, KVM_IRQCHIP_PIC_MASTER},
    {VM_PIC_SLAVE, KVM_IRQCHIP_PIC_SLAVE},
    {VM_IOAPIC, KVM_IRQCHIP_IOAPIC},
};

static int vm_save_records(struct blob_writer *w, int vm_fd, struct perr *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(irqchips); i++) {
		struct kvm_irqchip chip;
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = irqchips[i].chip_id;
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return perr_set(err, -errno, "KVM_GET_IRQCHIP %u", chip.chip_id);
		int rc = bw_put(w, irqchips[i].tag, &chip, sizeof(chip), err);
		if (rc < 0)
			return rc;
	}

	/* ENXIO: the VM has no in-kernel PIT, so there is nothing to carry. */
	struct kvm_pit_state2 pit;
	memset(&pit, 0, sizeof(pit));
	if (ioctl(vm_fd, KVM_GET_PIT2, &pit) == 0) {
		int rc = bw_put(w, VM_PIT2, &pit, sizeof(pit), err);
		if (rc < 0)
			return rc;
	} else if (errno != ENXIO) {
		return perr_set(err, -errno, "KVM_GET_PIT2");
	}

	struct kvm_clock_data clock;
	memset(&clock, 0, sizeof(clock));
	if (ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return perr_set(err, -errno, "KVM_GET_CLOCK");
	return bw_put(w, VM_CLOCK, &clock, sizeof(clock), err);
}

int x86_vm_state_save(int vm_fd, void **blob, size_t *len, struct perr *err)
{
	struct blob_writer w = {0};
	int rc = bw_begin(&w, VM_BLOB_MAGIC, err);
	if (rc == 0)
		rc = vm_save_records(&w, vm_fd, err);
	if (rc < 0) {
		free(w.buf);
		return rc;
	}
	bw_finish(&w, blob, len);
	return 0;
}

int x86_vm_state_restore(int vm_fd, const void *blob, size_t len, struct perr *err)
{
	struct blob_view v;
	int rc = blob_parse(blob, len, VM_BLOB_MAGIC, "VM state", vm_recs, VM_NTAGS, &v, err);
	if (rc < 0)
		return rc;

	/* blob_parse has made sure that all but the PIT are there. */
	struct kvm_irqchip chips[ARRAY_SIZE(irqchips)];
	memset(chips, 0, sizeof(chips));
	for (size_t i = 0; i < ARRAY_SIZE(irqchips); i++) {
		rec_copy(&v, irqchips[i].tag, &chips[i], sizeof(chips[i]));
		if (chips[i].chip_id != irqchips[i].chip_id)
			return perr_setx(err, -EINVAL, "VM state: %s record: chip id %u",
					 vm_recs[irqchips[i].tag].name, chips[i].chip_id);
	}
	struct kvm_pit_state2 pit;
	bool has_pit = rec_copy(&v, VM_PIT2, &pit, sizeof(pit));
	if (has_pit &&
	    (pit.flags & ~(uint32_t)(KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)))
		return perr_setx(err, -EINVAL, "VM state: PIT flags %#x", pit.flags);
	struct kvm_clock_data saved_clock = {0};
	rec_copy(&v, VM_CLOCK, &saved_clock, sizeof(saved_clock));

	for (size_t i = 0; i < ARRAY_SIZE(irqchips); i++)
		if (ioctl(vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
			return perr_set(err, -errno, "KVM_SET_IRQCHIP %u", chips[i].chip_id);
	if (has_pit && ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0)
		return perr_set(err, -errno, "KVM_SET_PIT2");
	/* Only the value: the saved flags (TSC_STABLE, REALTIME, HOST_TSC) describe
	 * the old host's clocks, and KVM_CLOCK_REALTIME would make KVM advance the
	 * clock by the time the snapshot sat on disk. */
	struct kvm_clock_data clock = {.clock = saved_clock.clock, .flags = 0};
	if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return perr_set(err, -errno, "KVM_SET_CLOCK");
	return 0;
}
