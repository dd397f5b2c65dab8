/* Snapshot files (snapshot.h). */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/cleanup.h"

#define SNAPSHOT_MAGIC	 "PETRELSN"
#define SNAPSHOT_VERSION 1u
#define SNAPSHOT_ALIGN	 8u
#define MEMORY_BLOCK	 (64u << 10)

struct snapshot_header {
	char magic[8];
	uint32_t version;
	uint32_t count;
	uint64_t total_len; /* the whole file, header included */
};

struct snapshot_section {
	char name[SNAPSHOT_SECTION_NAME_MAX];
	uint64_t len; /* payload bytes; the payload is padded to SNAPSHOT_ALIGN */
};

const char *snapshot_uri_dir(const char *uri)
{
	static const char scheme[] = "file:";
	const char *dir = uri + sizeof(scheme) - 1;
	return strncmp(uri, scheme, sizeof(scheme) - 1) == 0 && *dir ? dir : NULL;
}

static size_t snapshot_padded(size_t len)
{
	return (len + SNAPSHOT_ALIGN - 1) & ~(size_t)(SNAPSHOT_ALIGN - 1);
}

static int snapshot_reserve(struct snapshot_writer *w, size_t more)
{
	if (w->len + more > SNAPSHOT_STATE_MAX)
		return -E2BIG;
	if (w->len + more <= w->cap)
		return 0;
	size_t cap = w->cap ? w->cap : 4096;
	while (cap < w->len + more)
		cap *= 2;
	uint8_t *nb = realloc(w->buf, cap);
	if (!nb)
		return -ENOMEM;
	w->buf = nb;
	w->cap = cap;
	return 0;
}

void snapshot_writer_add(struct snapshot_writer *w, const char *name, const void *data, size_t len)
{
	if (w->error)
		return;
	if (w->len == 0) {
		if ((w->error = snapshot_reserve(w, sizeof(struct snapshot_header))) < 0)
			return;
		memset(w->buf, 0, sizeof(struct snapshot_header));
		w->len = sizeof(struct snapshot_header);
	}
	struct snapshot_section s = {.len = len};
	if (strlen(name) >= sizeof(s.name)) {
		w->error = -ENAMETOOLONG;
		return;
	}
	memcpy(s.name, name, strlen(name));
	size_t padded = snapshot_padded(len);
	if (len > SNAPSHOT_STATE_MAX || (w->error = snapshot_reserve(w, sizeof(s) + padded)) < 0) {
		if (!w->error)
			w->error = -E2BIG;
		return;
	}
	memcpy(w->buf + w->len, &s, sizeof(s));
	w->len += sizeof(s);
	if (len)
		memcpy(w->buf + w->len, data, len);
	memset(w->buf + w->len + len, 0, padded - len);
	w->len += padded;
	w->count++;
}

void snapshot_writer_free(struct snapshot_writer *w)
{
	free(w->buf);
	*w = (struct snapshot_writer){0};
}

/* All of [data, +len) written to or read from fd at off; 0 or -errno. */
static int io_all_at(int fd, void *data, size_t len, off_t off, bool write)
{
	uint8_t *p = data;
	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, off) : pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int write_all_at(int fd, const void *data, size_t len, off_t off)
{
	/* io_all_at only reads from data when it writes. */
	return io_all_at(fd, (void *)(uintptr_t)data, len, off, true);
}

static int read_all_at(int fd, void *data, size_t len, off_t off)
{
	return io_all_at(fd, data, len, off, false);
}

int snapshot_writer_finish(struct snapshot_writer *w, int dirfd, struct perr *err)
{
	int rc = w->error;
	if (rc < 0) {
		snapshot_writer_free(w);
		return perr_set(err, rc, "snapshot state");
	}
	struct snapshot_header h = {
	    .version = SNAPSHOT_VERSION, .count = w->count, .total_len = w->len};
	memcpy(h.magic, SNAPSHOT_MAGIC, sizeof(h.magic));
	memcpy(w->buf, &h, sizeof(h));
	autoclose int fd = openat(dirfd, SNAPSHOT_STATE_FILE,
				  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		rc = perr_set(err, -errno, "%s", SNAPSHOT_STATE_FILE);
	else if ((rc = write_all_at(fd, w->buf, w->len, 0)) < 0)
		perr_set(err, rc, "%s: write", SNAPSHOT_STATE_FILE);
	snapshot_writer_free(w);
	return rc;
}

/* The section at *off: its name and payload, *off moved past it. */
static int snapshot_next(const struct snapshot_reader *r, size_t *off, const char **name,
			 const uint8_t **payload, size_t *len)
{
	if (r->len - *off < sizeof(struct snapshot_section))
		return -EINVAL;
	const struct snapshot_section *s = (const void *)(r->buf + *off);
	if (!memchr(s->name, '\0', sizeof(s->name)) || !s->name[0])
		return -EINVAL;
	size_t rest = r->len - *off - sizeof(*s);
	if (s->len > rest || snapshot_padded(s->len) > rest)
		return -EINVAL;
	*name = s->name;
	*payload = r->buf + *off + sizeof(*s);
	*len = s->len;
	*off += sizeof(*s) + snapshot_padded(s->len);
	return 0;
}

int snapshot_reader_open(struct snapshot_reader *r, int dirfd, struct perr *err)
{
	*r = (struct snapshot_reader){0};
	autoclose int fd = openat(dirfd, SNAPSHOT_STATE_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "%s", SNAPSHOT_STATE_FILE);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return perr_set(err, -errno, "%s", SNAPSHOT_STATE_FILE);
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct snapshot_header) ||
	    st.st_size > (off_t)SNAPSHOT_STATE_MAX)
		return perr_setx(err, -EINVAL,
				 "%s: %lld bytes is not a petrel snapshot state (%zu..%u bytes)",
				 SNAPSHOT_STATE_FILE, (long long)st.st_size,
				 sizeof(struct snapshot_header), SNAPSHOT_STATE_MAX);
	r->len = (size_t)st.st_size;
	r->buf = malloc(r->len);
	if (!r->buf)
		return perr_setx(err, -ENOMEM, "out of memory");
	int rc = read_all_at(fd, r->buf, r->len, 0);
	if (rc < 0) {
		snapshot_reader_free(r);
		return perr_set(err, rc, "%s: read", SNAPSHOT_STATE_FILE);
	}
	struct snapshot_header h;
	memcpy(&h, r->buf, sizeof(h));
	const char *bad = NULL;
	if (memcmp(h.magic, SNAPSHOT_MAGIC, sizeof(h.magic)) != 0)
		bad = "not a petrel snapshot (bad magic)";
	else if (h.version != SNAPSHOT_VERSION)
		bad = "unsupported snapshot version";
	else if (h.total_len != r->len)
		bad = "truncated or extended (its length does not match its header)";
	size_t off = sizeof(h);
	for (uint32_t i = 0; !bad && i < h.count; i++) {
		const char *name;
		const uint8_t *payload;
		size_t len;
		if (snapshot_next(r, &off, &name, &payload, &len) < 0) {
			bad = "a section runs past the end of the file or has a bad name";
			break;
		}
		size_t scan = sizeof(h);
		for (uint32_t j = 0; j < i; j++) {
			const char *other;
			const uint8_t *p;
			size_t l;
			if (snapshot_next(r, &scan, &other, &p, &l) < 0 ||
			    strcmp(other, name) == 0) {
				bad = "a section appears twice";
				break;
			}
		}
	}
	if (!bad && off != r->len)
		bad = "bytes after the last section";
	if (bad) {
		snapshot_reader_free(r);
		return perr_setx(err, -EINVAL, "%s: %s", SNAPSHOT_STATE_FILE, bad);
	}
	return 0;
}

int snapshot_reader_find(const struct snapshot_reader *r, const char *name, const void **data,
			 size_t *len)
{
	struct snapshot_header h;
	memcpy(&h, r->buf, sizeof(h));
	size_t off = sizeof(h);
	for (uint32_t i = 0; i < h.count; i++) {
		const char *n;
		const uint8_t *p;
		size_t l;
		if (snapshot_next(r, &off, &n, &p, &l) < 0)
			return -EINVAL;
		if (strcmp(n, name) == 0) {
			*data = p;
			*len = l;
			return 0;
		}
	}
	return -ENOENT;
}

void snapshot_reader_free(struct snapshot_reader *r)
{
	free(r->buf);
	*r = (struct snapshot_reader){0};
}

static bool block_is_zero(const uint8_t *p, size_t len)
{
	/* Compare the block with itself shifted: all bytes equal the first. */
	return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

int snapshot_memory_save(int dirfd, const uint8_t *ram, size_t size, struct perr *err)
{
	autoclose int fd = openat(dirfd, SNAPSHOT_MEMORY_FILE,
				  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return perr_set(err, -errno, "%s", SNAPSHOT_MEMORY_FILE);
	if (ftruncate(fd, (off_t)size) < 0)
		return perr_set(err, -errno, "%s: ftruncate", SNAPSHOT_MEMORY_FILE);
	for (size_t off = 0; off < size; off += MEMORY_BLOCK) {
		size_t len = size - off < MEMORY_BLOCK ? size - off : MEMORY_BLOCK;
		if (block_is_zero(ram + off, len))
			continue;
		int rc = write_all_at(fd, ram + off, len, (off_t)off);
		if (rc < 0)
			return perr_set(err, rc, "%s: write", SNAPSHOT_MEMORY_FILE);
	}
	if (fdatasync(fd) < 0)
		return perr_set(err, -errno, "%s: fdatasync", SNAPSHOT_MEMORY_FILE);
	return 0;
}

/* The memory file, checked against the RAM's size. */
static int memory_open(int dirfd, size_t size, struct perr *err)
{
	int fd = openat(dirfd, SNAPSHOT_MEMORY_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "%s", SNAPSHOT_MEMORY_FILE);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return perr_set(err, e, "%s", SNAPSHOT_MEMORY_FILE);
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		close(fd);
		return perr_setx(err, -EINVAL,
				 "%s: %lld bytes, but the VM has %zu bytes of RAM (-m must match "
				 "the snapshot's)",
				 SNAPSHOT_MEMORY_FILE, (long long)st.st_size, size);
	}
	return fd;
}

int snapshot_memory_map(int dirfd, uint8_t *ram, size_t size, struct perr *err)
{
	autoclose int fd = memory_open(dirfd, size, err);
	if (fd < 0)
		return fd;
	if (mmap(ram, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd,
		 0) == MAP_FAILED)
		return perr_set(err, -errno, "%s: mmap", SNAPSHOT_MEMORY_FILE);
	return 0;
}

int snapshot_memory_load(int dirfd, uint8_t *ram, size_t size, struct perr *err)
{
	autoclose int fd = memory_open(dirfd, size, err);
	if (fd < 0)
		return fd;
	off_t off = 0;
	while ((size_t)off < size) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		off_t hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
		if (data < 0 || hole < 0) {
			/* No SEEK_DATA here: read everything. */
			data = off;
			hole = (off_t)size;
		}
		if (hole > (off_t)size)
			hole = (off_t)size;
		int rc = read_all_at(fd, ram + data, (size_t)(hole - data), data);
		if (rc < 0)
			return perr_set(err, rc, "%s: read", SNAPSHOT_MEMORY_FILE);
		off = hole;
	}
	return 0;
}
