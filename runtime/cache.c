/* The runtime's caches (cache.h). */
#include "runtime/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

bool cache_dir(const char *env, const char *sub, char *out, size_t size)
{
	const char *set = getenv(env);
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;
	if (set) {
		if (!*set || !strcmp(set, "off"))
			return false;
		n = snprintf(out, size, "%s", set);
	} else if (geteuid() == 0) {
		n = snprintf(out, size, "/var/cache/petrel/%s", sub);
	} else if (xdg && *xdg) {
		n = snprintf(out, size, "%s/petrel/%s", xdg, sub);
	} else if (home && *home) {
		n = snprintf(out, size, "%s/.cache/petrel/%s", home, sub);
	} else {
		return false;
	}
	if (n < 0 || (size_t)n >= size)
		return false;
	/* mkdir -p, private: entries hold the containers' files and guest memory. */
	for (char *p = out + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int r = mkdir(out, 0700);
		*p = '/';
		if (r < 0 && errno != EEXIST)
			return false;
	}
	return mkdir(out, 0700) == 0 || errno == EEXIST;
}

uint64_t cache_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

char *cache_read_file(const char *path, size_t *len)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < 0 || st.st_size > (64 << 20))
		return NULL;
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return NULL;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return NULL;
		}
		got += (size_t)n;
	}
	buf[got] = 0;
	*len = got;
	return buf;
}

bool cache_file_matches(const char *path, const char *text, size_t len, bool whole)
{
	size_t stored_len = 0;
	char *stored = cache_read_file(path, &stored_len);
	bool same = stored && (whole ? stored_len == len : stored_len >= len) &&
		    memcmp(stored, text, len) == 0;
	free(stored);
	return same;
}

void cache_evict_lru(const char *dir, unsigned keep,
		     bool (*stamp)(const char *name, char *out, size_t size),
		     void (*drop)(const char *dir, const char *name))
{
	for (;;) {
		DIR *d = opendir(dir);
		if (!d)
			return;
		char oldest[NAME_MAX + 1] = "";
		struct timespec oldest_t = {0, 0};
		unsigned count = 0;
		struct dirent *de;
		while ((de = readdir(d))) {
			char path[NAME_MAX + 32];
			struct stat st;
			if (!stamp(de->d_name, path, sizeof(path)) ||
			    fstatat(dirfd(d), path, &st, 0) < 0)
				continue;
			count++;
			bool older = st.st_mtim.tv_sec < oldest_t.tv_sec ||
				     (st.st_mtim.tv_sec == oldest_t.tv_sec &&
				      st.st_mtim.tv_nsec < oldest_t.tv_nsec);
			if (!oldest[0] || older) {
				snprintf(oldest, sizeof(oldest), "%s", de->d_name);
				oldest_t = st.st_mtim;
			}
		}
		closedir(d);
		if (count <= keep || !oldest[0])
			return;
		drop(dir, oldest);
	}
}
