/* The root disk image and its cache (runtime/rootfs.c): a second create of an
 * unchanged tree seen twice gets a copy of the cached image; a changed tree, or one that
 * changed a moment ago, gets a fresh mke2fs; each container's image is its own
 * file. Needs mke2fs and debugfs (e2fsprogs); no VM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cache.h"
#include "runtime/rootfs.h"
#include "tests/unit/unit.h"

/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive in unit.h */
UNIT_MAIN("runtime_rootfs")

static bool have_e2fsprogs(void)
{
	return system("command -v mke2fs >/dev/null 2>&1 && command -v debugfs >/dev/null 2>&1") ==
	       0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* The image's /hello as debugfs reads it ("" when absent). */
static void image_cat(const char *img, const char *file, char *out, size_t size)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "debugfs -R 'cat %s' %s 2>/dev/null", file, img);
	out[0] = 0;
	FILE *p = popen(cmd, "r");
	if (!p)
		return;
	size_t n = fread(out, 1, size - 1, p);
	out[n] = 0;
	pclose(p);
}

static unsigned count_entries(const char *dir, const char *suffix)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null | grep -c '%s$'", dir, suffix);
	FILE *p = popen(cmd, "r");
	unsigned n = 0;
	if (p) {
		char line[32];
		if (fgets(line, sizeof(line), p))
			n = (unsigned)strtoul(line, NULL, 10);
		pclose(p);
	}
	return n;
}

/* Files made just now are racy (not cached): wait until they are not. */
static void wait_not_racy(void)
{
	struct timespec ts = {2, 200 * 1000000L};
	nanosleep(&ts, NULL);
}

UNIT_TEST(test_rootfs_cache_reuses_image_of_unchanged_tree_and_rebuilds_changed)
{
	if (!have_e2fsprogs())
		UNIT_SKIP("mke2fs or debugfs not installed");
	char top[] = "/tmp/petrel-rootfs.XXXXXX";
	UNIT_ASSERT(mkdtemp(top));
	char tree[128], cache[128], a[160], b[160], c[160], d[160], hello[160], out[256];
	snprintf(tree, sizeof(tree), "%s/tree", top);
	snprintf(cache, sizeof(cache), "%s/cache", top);
	snprintf(hello, sizeof(hello), "%s/hello", tree);
	snprintf(a, sizeof(a), "%s/a.img", top);
	snprintf(b, sizeof(b), "%s/b.img", top);
	snprintf(c, sizeof(c), "%s/c.img", top);
	snprintf(d, sizeof(d), "%s/d.img", top);
	UNIT_ASSERT_EQ(mkdir(tree, 0755), 0);
	write_file(hello, "one\n");
	setenv("PETREL_ROOTFS_CACHE", cache, 1);
	struct perr err = {0};

	/* Just made: built, not cached. */
	UNIT_ASSERT_EQ(rootfs_build_image(tree, a, 0, NULL, 0, &err), 0);
	UNIT_ASSERT_EQ(count_entries(cache, ".manifest"), 0);
	wait_not_racy();
	/* Seen once: only the manifest is kept; seen again: the image too. */
	UNIT_ASSERT_EQ(rootfs_build_image(tree, b, 0, NULL, 0, &err), 0);
	UNIT_ASSERT_EQ(count_entries(cache, ".manifest"), 1);
	UNIT_ASSERT_EQ(count_entries(cache, ".img"), 0);
	unlink(b);
	UNIT_ASSERT_EQ(rootfs_build_image(tree, b, 0, NULL, 0, &err), 0);
	UNIT_ASSERT_EQ(count_entries(cache, ".img"), 1);
	/* A hit: the same content, in a file of its own. */
	UNIT_ASSERT_EQ(rootfs_build_image(tree, c, 0, NULL, 0, &err), 0);
	UNIT_ASSERT_EQ(count_entries(cache, ".manifest"), 1);
	image_cat(c, "/hello", out, sizeof(out));
	UNIT_ASSERT_STREQ(out, "one\n");
	struct stat sb, sc;
	UNIT_ASSERT_EQ(stat(b, &sb), 0);
	UNIT_ASSERT_EQ(stat(c, &sc), 0);
	UNIT_ASSERT(sb.st_ino != sc.st_ino);
	UNIT_ASSERT_EQ(sb.st_size, sc.st_size);
	/* A container writing its disk changes neither the cache nor its siblings. */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "debugfs -w -R 'rm /hello' %s >/dev/null 2>&1", c);
	UNIT_ASSERT_EQ(system(cmd), 0);
	image_cat(c, "/hello", out, sizeof(out));
	UNIT_ASSERT_STREQ(out, "");
	UNIT_ASSERT_EQ(rootfs_build_image(tree, d, 0, NULL, 0, &err), 0);
	image_cat(d, "/hello", out, sizeof(out));
	UNIT_ASSERT_STREQ(out, "one\n");

	/* Same size, new content: the manifest differs, the image is rebuilt. */
	write_file(hello, "two\n");
	unlink(d);
	UNIT_ASSERT_EQ(rootfs_build_image(tree, d, 0, NULL, 0, &err), 0);
	image_cat(d, "/hello", out, sizeof(out));
	UNIT_ASSERT_STREQ(out, "two\n");

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	UNIT_ASSERT_EQ(system(cmd), 0);
	unsetenv("PETREL_ROOTFS_CACHE");
}

UNIT_TEST(test_rootfs_cache_off_builds_every_time)
{
	if (!have_e2fsprogs())
		UNIT_SKIP("mke2fs or debugfs not installed");
	char top[] = "/tmp/petrel-rootfs.XXXXXX";
	UNIT_ASSERT(mkdtemp(top));
	char tree[128], img[160], cmd[256];
	snprintf(tree, sizeof(tree), "%s/tree", top);
	snprintf(img, sizeof(img), "%s/a.img", top);
	UNIT_ASSERT_EQ(mkdir(tree, 0755), 0);
	setenv("PETREL_ROOTFS_CACHE", "off", 1);
	struct perr err = {0};
	UNIT_ASSERT_EQ(rootfs_build_image(tree, img, 0, NULL, 0, &err), 0);
	struct stat st;
	UNIT_ASSERT_EQ(stat(img, &st), 0);
	UNIT_ASSERT_EQ((uint64_t)st.st_size, ROOTFS_MIN_BYTES);
	unsetenv("PETREL_ROOTFS_CACHE");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	UNIT_ASSERT_EQ(system(cmd), 0);
}

static bool evict_stamp(const char *name, char *out, size_t size)
{
	if (strncmp(name, "entry", 5) != 0)
		return false;
	snprintf(out, size, "%s", name);
	return true;
}

static void evict_drop(const char *dir, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

/* The runtime's caches (root images, VM templates) keep the most recently used. */
UNIT_TEST(test_cache_evict_lru_drops_the_least_recently_used)
{
	char dir[] = "/tmp/petrel-evict-XXXXXX";
	UNIT_ASSERT(mkdtemp(dir) != NULL);
	char path[256];
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/entry%d", dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		UNIT_ASSERT(fd >= 0);
		close(fd);
		/* entry3 was used last, then entry4, entry2, entry1, entry0. */
		struct timespec t[2] = {{1000 + (i == 3 ? 100 : i), 0},
					{1000 + (i == 3 ? 100 : i), 0}};
		UNIT_ASSERT_EQ(utimensat(AT_FDCWD, path, t, 0), 0);
	}
	snprintf(path, sizeof(path), "%s/other", dir);
	close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	cache_evict_lru(dir, 3, evict_stamp, evict_drop);
	const char *gone[] = {"entry0", "entry1"},
		   *kept[] = {"entry2", "entry3", "entry4", "other"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, gone[i]);
		UNIT_ASSERT(access(path, F_OK) != 0);
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, kept[i]);
		UNIT_ASSERT_EQ(access(path, F_OK), 0);
		unlink(path);
	}
	rmdir(dir);
}
