/* The root disk image (rootfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/cache.h"
#include "runtime/rootfs.h"

/* What a walk of the tree collects. nftw has no opaque pointer: the walk's
 * state lives here for its duration. */
struct rootfs_walk {
	const char *dir;
	uint64_t bytes, inodes;
	struct timespec racy_after; /* changes newer than this make the tree racy */
	bool racy;
	char *manifest; /* NULL: not wanted, or out of memory */
	size_t len, cap;
};
static __thread struct rootfs_walk *cur_walk;

static void manifest_add(struct rootfs_walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void manifest_add(struct rootfs_walk *w, const char *fmt, ...)
{
	if (!w->manifest)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(w->manifest + w->len, w->cap - w->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			free(w->manifest);
			w->manifest = NULL;
			return;
		}
		if ((size_t)n < w->cap - w->len) {
			w->len += (size_t)n;
			return;
		}
		size_t cap = w->cap * 2 + (size_t)n;
		char *m = realloc(w->manifest, cap);
		if (!m) {
			free(w->manifest);
			w->manifest = NULL;
			return;
		}
		w->manifest = m;
		w->cap = cap;
	}
}

static bool ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec >= b->tv_nsec);
}

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct rootfs_walk *w = cur_walk;
	(void)flag;
	(void)ftw;
	uint64_t size = (uint64_t)st->st_blocks * 512;
	uint64_t rounded = ((uint64_t)st->st_size + 4095) & ~4095ull;
	if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))
		w->bytes += size > rounded ? size : rounded;
	w->inodes++;
	if (!w->manifest)
		return 0;
	/* Everything mke2fs -d copies changes one of these: content changes
	 * mtime and ctime, metadata changes ctime, a replaced file its inode.
	 * The path is length-prefixed so that no name can forge an entry. */
	const char *rel = path + strlen(w->dir);
	manifest_add(w, "%zu:%s %o %u %u %llu %lld.%09ld %lld.%09ld %llu %llu %llu\n", strlen(rel),
		     rel, (unsigned)st->st_mode, (unsigned)st->st_uid, (unsigned)st->st_gid,
		     (unsigned long long)st->st_size, (long long)st->st_mtim.tv_sec,
		     st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
		     (unsigned long long)st->st_ino, (unsigned long long)st->st_dev,
		     (unsigned long long)st->st_rdev);
	if (ts_after(&st->st_ctim, &w->racy_after) || ts_after(&st->st_mtim, &w->racy_after))
		w->racy = true;
	return 0;
}

static int rootfs_walk(struct rootfs_walk *w, struct perr *err)
{
	cur_walk = w;
	int rc = nftw(w->dir, walk_one, 64, FTW_PHYS);
	cur_walk = NULL;
	if (rc < 0)
		return perr_set(err, -errno, "root.path: %s", w->dir);
	return 0;
}

int rootfs_measure(const char *dir, uint64_t *bytes, uint64_t *inodes, struct perr *err)
{
	struct rootfs_walk w = {.dir = dir};
	int rc = rootfs_walk(&w, err);
	if (rc < 0)
		return rc;
	*bytes = w.bytes;
	*inodes = w.inodes;
	return 0;
}

uint64_t rootfs_image_size(uint64_t used, uint64_t margin)
{
	uint64_t size = used + used / 4 + margin;
	if (size < ROOTFS_MIN_BYTES)
		size = ROOTFS_MIN_BYTES;
	return (size + (1ull << 20) - 1) & ~((1ull << 20) - 1);
}

/* Runs argv with stdout and stderr captured into out (the last bytes of it). */
static int run_tool(char *const argv[], char *out, size_t size)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		execvp(argv[0], argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	out[0] = 0;
	for (;;) {
		char buf[4096];
		ssize_t n = read(p[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (len + 1 >= size) { /* keep the tail */
				memmove(out, out + size / 2, len - size / 2);
				len -= size / 2;
			}
			out[len++] = buf[i];
		}
	}
	out[len] = 0;
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
}

/* debugfs commands that put each copy at its destination (parents made as needed). */
static int write_copies(const char *img, const struct spec_file_copy *copies, size_t n,
			struct perr *err)
{
	char script[PATH_MAX];
	snprintf(script, sizeof(script), "%s.debugfs", img);
	FILE *f = fopen(script, "we");
	if (!f)
		return perr_set(err, -errno, "%s", script);
	for (size_t i = 0; i < n; i++) {
		const char *dest = copies[i].destination;
		if (strchr(dest, '"') || strchr(copies[i].source, '"') || strchr(dest, '\n') ||
		    strchr(copies[i].source, '\n')) {
			fclose(f);
			unlink(script);
			return perr_setx(err, -EINVAL,
					 "bind mount %s: unsupported characters in path", dest);
		}
		for (const char *s = strchr(dest + 1, '/'); s; s = strchr(s + 1, '/'))
			fprintf(f, "mkdir \"%.*s\"\n", (int)(s - dest), dest);
		fprintf(f, "rm \"%s\"\nwrite \"%s\" \"%s\"\n", dest, copies[i].source, dest);
	}
	fclose(f);
	char out[2048] = "";
	char *argv[] = {"debugfs", "-w", "-f", script, (char *)img, NULL};
	int rc = run_tool(argv, out, sizeof(out));
	unlink(script);
	if (rc != 0) {
		chomp(out);
		return perr_setx(err, -EIO, "debugfs (copying bind-mounted files): %s",
				 rc < 0 ? strerror(-rc) : out);
	}
	return 0;
}

/*
 * The image cache. mke2fs -d is most of create's own time (0.3-0.5 s in the
 * testbed for a 2 MB busybox root), and the same bundle is often created
 * again. A built image is kept in the cache directory under a key made from a
 * manifest of the tree (every entry's path, mode, owner, size, mtime, ctime,
 * inode and device) and mke2fs's parameters; a later create of an unchanged
 * tree gets its own copy of that image (a reflink where the file system has
 * them, else a copy of the data extents: the image is sparse). A tree is
 * cached the second time it is seen (the first time only its manifest is
 * kept), so that one-off trees (podman's per-container overlay mounts) cost
 * no copy into the cache. The copy is the container's alone, as a fresh image
 * would be; it shares the file system UUID with its siblings, which the guest
 * does not use.
 *
 * The manifest is stored beside the image and compared in full on lookup, so
 * a hash collision cannot hand out another tree's image. A tree with a change
 * in the last seconds is not cached: a later change within the same timestamp
 * tick would not show in the manifest.
 */
#define ROOTFS_CACHE_ENTRIES 8
#define ROOTFS_CACHE_VERSION 1
#define ROOTFS_RACY_SECONDS  2

#define COPY_CHUNK (1u << 20)

/* [*in, end) of src to *out in dst, through a buffer. */
static int copy_by_hand(int src, int dst, off_t *in, off_t *out, off_t end)
{
	uint8_t *buf = malloc(COPY_CHUNK);
	if (!buf)
		return -ENOMEM;
	int rc = 0;
	while (rc == 0 && *in < end) {
		size_t want = (size_t)(end - *in) < COPY_CHUNK ? (size_t)(end - *in) : COPY_CHUNK;
		ssize_t r = pread(src, buf, want, *in);
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
		} else if (pwrite(dst, buf, (size_t)r, *out) != r) {
			rc = -errno;
		} else {
			*in += r;
			*out += r;
		}
	}
	free(buf);
	return rc;
}

/* Copies src's data into dst (both open; dst empty): a reflink when the file
 * system can, else only the data extents, leaving the holes as holes. */
static int image_clone(int src, int dst)
{
	if (ioctl(dst, FICLONE, src) == 0)
		return 0;
	struct stat st;
	if (fstat(src, &st) < 0 || ftruncate(dst, st.st_size) < 0)
		return -errno;
	off_t pos = 0;
	while (pos < st.st_size) {
		off_t data = lseek(src, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0)
			return -errno;
		off_t hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		off_t in = data, out = data;
		while (in < hole) {
			ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(hole - in), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (n < 0 && errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
				    errno != EOPNOTSUPP)
					return -errno;
				/* No in-kernel copy between these files (another
				 * file system): read and write, in few calls. */
				int rc = copy_by_hand(src, dst, &in, &out, hole);
				if (rc < 0)
					return rc;
			}
		}
		pos = hole;
	}
	return 0;
}

/* The cached image whose manifest equals this one, copied to img: 0, or
 * negative when there is none (img is then absent); *seen tells whether the
 * manifest was there. */
static int cache_lookup(const char *base, const char *manifest, size_t len, const char *img,
			bool *seen)
{
	char path[PATH_MAX];
	*seen = false;
	if (snprintf(path, sizeof(path), "%s.manifest", base) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (!cache_file_matches(path, manifest, len, true))
		return -ENOENT;
	*seen = true;
	char image[PATH_MAX];
	snprintf(image, sizeof(image), "%s.img", base);
	autoclose int src = open(image, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return -errno;
	autoclose int dst = open(img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (dst < 0)
		return -errno;
	int rc = image_clone(src, dst);
	if (rc < 0) {
		unlink(img);
		return rc;
	}
	utimensat(AT_FDCWD, path, NULL, 0); /* recently used */
	return 0;
}

/* An entry: BASE.manifest, used when touched (cache_lookup), with BASE.img. */
static bool rootfs_entry_stamp(const char *name, char *out, size_t size)
{
	size_t n = strlen(name);
	if (n < 9 || strcmp(name + n - 9, ".manifest") != 0)
		return false;
	return snprintf(out, size, "%s", name) < (int)size;
}

static void rootfs_entry_drop(const char *dir, const char *name)
{
	char path[PATH_MAX];
	/* The manifest first: an image without one is never used. */
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return;
	unlink(path);
	snprintf(path + strlen(path) - 9, 5, ".img");
	unlink(path);
}

/* Keeps a copy of the freshly built img under base when the tree was seen
 * before, else only the manifest. Best effort: a failure only means that the
 * next create builds again. */
static void cache_store(const char *dir, const char *base, const char *manifest, size_t len,
			const char *img, bool seen)
{
	char tmp[PATH_MAX], final[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.img.%d.tmp", base, (int)getpid()) >= (int)sizeof(tmp))
		return;
	if (seen) {
		/* The image appears whole (rename); its manifest is there already. */
		snprintf(final, sizeof(final), "%s.img", base);
		autoclose int src = open(img, O_RDONLY | O_CLOEXEC);
		autoclose int dst = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (src < 0 || dst < 0 || image_clone(src, dst) < 0 || rename(tmp, final) < 0)
			unlink(tmp);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.manifest.%d.tmp", base, (int)getpid());
	snprintf(final, sizeof(final), "%s.manifest", base);
	autoclose int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, manifest + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			unlink(tmp);
			return;
		}
		off += (size_t)n;
	}
	if (rename(tmp, final) < 0) {
		unlink(tmp);
		return;
	}
	cache_evict_lru(dir, ROOTFS_CACHE_ENTRIES, rootfs_entry_stamp, rootfs_entry_drop);
}

static int mke2fs_image(const char *dir, const char *img, uint64_t size, uint64_t inodes,
			struct perr *err)
{
	char size_arg[32], inodes_arg[32];
	snprintf(size_arg, sizeof(size_arg), "%lluk", (unsigned long long)(size >> 10));
	snprintf(inodes_arg, sizeof(inodes_arg), "%llu", (unsigned long long)inodes);
	char out[2048] = "";
	char *argv[] = {"mke2fs", "-q",	      "-t", "ext4",	 "-d",	   (char *)dir,
			"-N",	  inodes_arg, "-F", (char *)img, size_arg, NULL};
	int rc = run_tool(argv, out, sizeof(out));
	if (rc != 0) {
		unlink(img);
		chomp(out);
		return perr_setx(err, -EIO, "mke2fs -d %s: %s", dir,
				 rc < 0	  ? strerror(-rc)
				 : out[0] ? out
					  : "failed");
	}
	return 0;
}

int rootfs_build_image(const char *dir, const char *img, uint64_t margin,
		       const struct spec_file_copy *copies, size_t n_copies, struct perr *err)
{
	char cache[PATH_MAX];
	bool use_cache = cache_dir("PETREL_ROOTFS_CACHE", "rootfs", cache, sizeof(cache));
	struct rootfs_walk w = {.dir = dir};
	clock_gettime(CLOCK_REALTIME, &w.racy_after);
	w.racy_after.tv_sec -= ROOTFS_RACY_SECONDS;
	if (use_cache) {
		w.cap = 64 << 10;
		w.manifest = malloc(w.cap);
	}
	int rc = rootfs_walk(&w, err);
	autofree char *manifest = w.manifest;
	if (rc < 0)
		return rc;
	uint64_t size = rootfs_image_size(w.bytes, margin);
	/* Room for the container to create files too. */
	uint64_t inodes = w.inodes * 2 + 16384;
	manifest_add(&w, "petrel rootfs cache %d: mke2fs -t ext4 -N %llu, %llu bytes\n",
		     ROOTFS_CACHE_VERSION, (unsigned long long)inodes, (unsigned long long)size);
	manifest = w.manifest; /* manifest_add may have moved or dropped it */
	char base[PATH_MAX] = "";
	if (manifest &&
	    snprintf(base, sizeof(base), "%s/%016llx", cache,
		     (unsigned long long)cache_hash(manifest, w.len)) >= (int)sizeof(base))
		base[0] = 0;

	bool seen = false;
	if (!base[0] || cache_lookup(base, manifest, w.len, img, &seen) < 0) {
		rc = mke2fs_image(dir, img, size, inodes, err);
		if (rc < 0)
			return rc;
		if (base[0] && !w.racy)
			cache_store(cache, base, manifest, w.len, img, seen);
	}
	if (n_copies) {
		rc = write_copies(img, copies, n_copies, err);
		if (rc < 0) {
			unlink(img);
			return rc;
		}
	}
	return 0;
}
