/* Huge pages for the guest's RAM (hugepages.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/hugepages.h"

int hugepages_parse(const char *text, uint64_t *page_size)
{
	if (!strcmp(text, "2M") || !strcmp(text, "2MB"))
		*page_size = 2ull << 20;
	else if (!strcmp(text, "1G") || !strcmp(text, "1GB"))
		*page_size = 1ull << 30;
	else
		return -EINVAL;
	return 0;
}

long hugepages_free(uint64_t page_size)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/free_hugepages",
		 (unsigned long long)(page_size >> 10));
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[32];
	long n = -EIO;
	if (fgets(line, sizeof(line), f)) {
		char *end;
		errno = 0;
		long v = strtol(line, &end, 10);
		if (!errno && end != line && v >= 0)
			n = v;
	}
	fclose(f);
	return n;
}

int hugepages_mount(const char *state_dir, uint64_t page_size, uint64_t memory, char *dir,
		    size_t size, struct perr *err)
{
	const char *name = page_size == (1ull << 30) ? "1G" : "2M";
	long avail = hugepages_free(page_size);
	unsigned long long need = (memory + page_size - 1) / page_size;
	if (avail < 0)
		return perr_set(err, (int)avail,
				"annotations[\"io.petrel.vm.hugepages\"]: no %s huge page pool on "
				"this host",
				name);
	if ((unsigned long long)avail < need)
		return perr_setx(
		    err, -ENOSPC,
		    "annotations[\"io.petrel.vm.hugepages\"]: the VM's %llu MiB need %llu "
		    "huge pages of %s, %ld are free",
		    (unsigned long long)(memory >> 20), need, name, avail);
	if (snprintf(dir, size, "%s/hugepages", state_dir) >= (int)size)
		return perr_setx(err, -ENAMETOOLONG, "%s/hugepages: path too long", state_dir);
	if (mkdir(dir, 0700) < 0)
		return perr_set(err, -errno, "%s", dir);
	char opts[32];
	snprintf(opts, sizeof(opts), "pagesize=%s", name);
	if (mount("hugetlbfs", dir, "hugetlbfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
		int e = -errno;
		rmdir(dir);
		return perr_set(err, e, "mount hugetlbfs (%s) on %s", opts, dir);
	}
	return 0;
}

void hugepages_release(const char *state_dir)
{
	char dir[4096];
	if (snprintf(dir, sizeof(dir), "%s/hugepages", state_dir) >= (int)sizeof(dir))
		return;
	/* Detached: the VMM may still be exiting with its file open. */
	if (umount2(dir, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return;
	rmdir(dir);
}
