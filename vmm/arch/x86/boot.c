#include "boot.h"

#include <errno.h>
#include <string.h>

#include "../../core/guest_mem.h"
#include "boot_protocol.h"
#include "layout.h"
#include "loader.h"
#include "mptable.h"

/* Linux's COMMAND_LINE_SIZE on x86, NUL included, when no header says more. */
#define X86_DEFAULT_CMDLINE_MAX 2047

static int boot_write_cmdline(struct guest_mem *mem, const char *cmdline, uint32_t *len_out,
			      struct perr *err)
{
	size_t len = strlen(cmdline);
	if (len >= X86_CMDLINE_AREA)
		return perr_setx(err, -EINVAL, "kernel command line is %zu bytes; at most %llu",
				 len, X86_CMDLINE_AREA - 1);
	if (guest_mem_write(mem, X86_CMDLINE_GPA, cmdline, len + 1) < 0)
		return perr_setx(err, -EFAULT, "kernel command line: not in guest RAM");
	*len_out = (uint32_t)len;
	return 0;
}

int x86_boot_setup(struct guest_mem *mem, const struct x86_boot_config *bc,
		   struct x86_boot_result *out, struct perr *err)
{
	memset(out, 0, sizeof(*out));
	uint64_t ram_end = bc->ram.low_size;
	struct x86_kernel k;
	int rc = x86_kernel_load(mem, ram_end, bc->kernel, &k, err);
	if (rc < 0)
		return perr_wrap(err, "-kernel %s", bc->kernel);
	out->format = k.format;

	struct x86_boot_args args = {
	    .kernel_load_gpa = k.load_gpa,
	    .cmdline_gpa = X86_CMDLINE_GPA,
	    .rsdp_gpa = bc->rsdp_gpa,
	};
	if (bc->initrd && bc->initrd[0]) {
		rc = x86_initrd_load(mem, ram_end, &k, bc->initrd, &args.initrd_gpa,
				     &args.initrd_size, err);
		if (rc < 0)
			return perr_wrap(err, "-initrd %s", bc->initrd);
		out->initrd_gpa = args.initrd_gpa;
		out->initrd_size = args.initrd_size;
	}

	rc = boot_write_cmdline(mem, bc->cmdline, &args.cmdline_len, err);
	if (rc < 0)
		return rc;

	struct x86_e820_entry e820[X86_E820_MAX];
	args.e820 = e820;
	args.n_e820 = x86_e820_build(&bc->ram, e820, X86_E820_MAX);

	void *mp = guest_mem_slice(mem, X86_MPTABLE_GPA, X86_MPTABLE_AREA);
	if (!mp)
		return perr_setx(err, -EFAULT, "MP table: not in guest RAM");
	rc = x86_mptable_build(mp, X86_MPTABLE_AREA, X86_MPTABLE_GPA, bc->ncpus, err);
	if (rc < 0)
		return rc;

	if (k.mode == X86_ENTRY_PVH32) {
		if (args.cmdline_len > X86_DEFAULT_CMDLINE_MAX)
			return perr_setx(err, -EINVAL,
					 "kernel command line is %u bytes; the kernel accepts at "
					 "most %d",
					 args.cmdline_len, X86_DEFAULT_CMDLINE_MAX);
		size_t size = x86_pvh_info_size(args.n_e820);
		void *info = guest_mem_slice(mem, X86_PVH_INFO_GPA, size);
		if (!info)
			return perr_setx(err, -EFAULT, "PVH start info: not in guest RAM");
		rc = x86_pvh_info_build(info, size, X86_PVH_INFO_GPA, &args, err);
		if (rc < 0)
			return rc;
		out->entry.boot_info_gpa = X86_PVH_INFO_GPA;
	} else {
		struct boot_params *bp = guest_mem_slice(mem, X86_ZERO_PAGE_GPA, sizeof(*bp));
		if (!bp)
			return perr_setx(err, -EFAULT, "boot_params: not in guest RAM");
		rc = x86_boot_params_build(bp, k.format == X86_KERNEL_BZIMAGE ? &k.bz : NULL, &args,
					   err);
		if (rc < 0)
			return rc;
		out->entry.boot_info_gpa = X86_ZERO_PAGE_GPA;
	}

	rc = x86_write_boot_tables(mem, err);
	if (rc < 0)
		return rc;
	out->entry.mode = k.mode;
	out->entry.rip = k.entry;
	return 0;
}
