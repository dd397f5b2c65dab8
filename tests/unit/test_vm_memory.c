/* How vm_build maps guest RAM: -mem-path checks (hugetlbfs only, nothing left
 * behind), mem-share=on (a memfd), dump-guest-core=off (MADV_DONTDUMP), the
 * default (private anonymous). Needs /dev/kvm for vm_build; no guest runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../vmm/cli/config.h"
#include "../../vmm/core/vm.h"
#include "unit.h"

#define RAM_KB "262144 kB" /* -m 256 */

struct fixture {
	char dir[64];
	char kernel[96];
	struct vmm_config cfg;
};

static bool kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* A one-instruction raw kernel (hlt) and a command line with extra args. */
static int fixture_parse(struct fixture *f, const char *const *extra, struct perr *err)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/petrel-mem-XXXXXX");
	if (!mkdtemp(f->dir))
		return perr_set(err, -errno, "mkdtemp");
	snprintf(f->kernel, sizeof(f->kernel), "%s/guest.bin", f->dir);
	FILE *k = fopen(f->kernel, "w");
	if (!k || fputc(0xf4, k) == EOF)
		return perr_set(err, -EIO, "write %s", f->kernel);
	fclose(k);
	const char *argv[16] = {"petrel-vmm", "-kernel", f->kernel, "-m", "256"};
	int argc = 5;
	for (; extra && *extra && argc < 15; extra++)
		argv[argc++] = *extra;
	return vmm_config_parse(argc, (char *const *)argv, &f->cfg, err);
}

static void fixture_cleanup(struct fixture *f)
{
	unlink(f->kernel);
	rmdir(f->dir);
}

/* The maps line and VmFlags of this process's 256 MiB mapping, "" if none. */
static void ram_mapping(char *out, size_t size)
{
	out[0] = '\0';
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return;
	char line[512], head[512] = "";
	bool found = false;
	while (fgets(line, sizeof(line), f)) {
		char *dash;
		strtoul(line, &dash, 16);
		if (dash != line && *dash == '-') { /* "start-end perms ..." */
			snprintf(head, sizeof(head), "%s", line);
			found = false;
		} else if (strncmp(line, "Size:", 5) == 0 && strstr(line, RAM_KB)) {
			found = true;
		} else if (found && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(out, size, "%s%s", head, line);
			break;
		}
	}
	fclose(f);
}

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return false;
	struct dirent *e;
	bool empty = true;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

UNIT_TEST(test_mem_path_on_a_directory_that_is_not_hugetlbfs_is_refused)
{
	if (!kvm_usable())
		UNIT_SKIP("no usable /dev/kvm");
	struct fixture f = {0};
	struct perr err = {0};
	char memdir[96];
	UNIT_ASSERT_EQ(fixture_parse(&f, NULL, &err), 0);
	snprintf(memdir, sizeof(memdir), "%s/ram", f.dir);
	mkdir(memdir, 0700);
	snprintf(f.cfg.mem_path, sizeof(f.cfg.mem_path), "%s", memdir);
	struct vm *vm = NULL;
	int rc = vm_build(&f.cfg, &vm, &err);
	bool empty = dir_is_empty(memdir);
	rmdir(memdir);
	fixture_cleanup(&f);
	UNIT_ASSERT(rc < 0);
	UNIT_ASSERT(vm == NULL);
	char want[160];
	snprintf(want, sizeof(want), "-mem-path %s: not a hugetlbfs mount", memdir);
	UNIT_ASSERT_CONTAINS(err.msg, want);
	UNIT_ASSERT(empty);
}

UNIT_TEST(test_mem_share_maps_guest_ram_from_a_memfd_left_out_of_core_dumps)
{
	if (!kvm_usable())
		UNIT_SKIP("no usable /dev/kvm");
	static const char *const extra[] = {"-machine", "microvm,mem-share=on,dump-guest-core=off",
					    NULL};
	struct fixture f = {0};
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_parse(&f, extra, &err), 0);
	struct vm *vm = NULL;
	int rc = vm_build(&f.cfg, &vm, &err);
	char map[1024];
	ram_mapping(map, sizeof(map));
	vm_destroy(vm);
	char after[1024];
	ram_mapping(after, sizeof(after));
	fixture_cleanup(&f);
	if (rc < 0)
		UNIT_FAIL("vm_build: %s", err.msg);
	UNIT_ASSERT_CONTAINS(map, "/memfd:petrel-guest-ram");
	UNIT_ASSERT_CONTAINS(map, " sh");
	UNIT_ASSERT_CONTAINS(map, " dd");
	UNIT_ASSERT_STREQ(after, "");
}

UNIT_TEST(test_default_guest_ram_is_private_anonymous_and_dumped)
{
	if (!kvm_usable())
		UNIT_SKIP("no usable /dev/kvm");
	struct fixture f = {0};
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_parse(&f, NULL, &err), 0);
	struct vm *vm = NULL;
	int rc = vm_build(&f.cfg, &vm, &err);
	char map[1024];
	ram_mapping(map, sizeof(map));
	vm_destroy(vm);
	fixture_cleanup(&f);
	if (rc < 0)
		UNIT_FAIL("vm_build: %s", err.msg);
	UNIT_ASSERT_CONTAINS(map, "VmFlags:");
	UNIT_ASSERT(!strstr(map, "memfd"));
	UNIT_ASSERT(!strstr(map, " sh"));
	UNIT_ASSERT(!strstr(map, " dd"));
	UNIT_ASSERT_CONTAINS(map, " nr"); /* MAP_NORESERVE */
}

UNIT_MAIN("vm_memory")
