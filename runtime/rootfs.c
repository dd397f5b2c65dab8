/* The root disk image (rootfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/rootfs.h"

/* nftw has no opaque pointer: the walk's totals live here for its duration. */
static __thread uint64_t measure_bytes, measure_inodes;

static int measure_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	uint64_t size = (uint64_t)st->st_blocks * 512;
	uint64_t rounded = ((uint64_t)st->st_size + 4095) & ~4095ull;
	if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))
		measure_bytes += size > rounded ? size : rounded;
	measure_inodes++;
	return 0;
}

int rootfs_measure(const char *dir, uint64_t *bytes, uint64_t *inodes, struct perr *err)
{
	measure_bytes = measure_inodes = 0;
	if (nftw(dir, measure_one, 64, FTW_PHYS) < 0)
		return perr_set(err, -errno, "root.path: %s", dir);
	*bytes = measure_bytes;
	*inodes = measure_inodes;
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

int rootfs_build_image(const char *dir, const char *img, uint64_t margin,
		       const struct spec_file_copy *copies, size_t n_copies, struct perr *err)
{
	uint64_t used = 0, inodes = 0;
	int rc = rootfs_measure(dir, &used, &inodes, err);
	if (rc < 0)
		return rc;
	uint64_t size = rootfs_image_size(used, margin);
	char size_arg[32], inodes_arg[32];
	snprintf(size_arg, sizeof(size_arg), "%lluk", (unsigned long long)(size >> 10));
	/* Room for the container to create files too. */
	uint64_t want_inodes = inodes * 2 + 16384;
	snprintf(inodes_arg, sizeof(inodes_arg), "%llu", (unsigned long long)want_inodes);
	char out[2048] = "";
	char *argv[] = {"mke2fs", "-q",	      "-t", "ext4",	 "-d",	   (char *)dir,
			"-N",	  inodes_arg, "-F", (char *)img, size_arg, NULL};
	rc = run_tool(argv, out, sizeof(out));
	if (rc != 0) {
		unlink(img);
		chomp(out);
		return perr_setx(err, -EIO, "mke2fs -d %s: %s", dir,
				 rc < 0	  ? strerror(-rc)
				 : out[0] ? out
					  : "failed");
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
