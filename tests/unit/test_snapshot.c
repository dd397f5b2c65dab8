/*
 * Snapshot files (vmm/core/snapshot.h): sections written and found again; a
 * state file that is truncated, extended or corrupted is refused with a
 * message and never read past its end; guest memory is saved sparse and comes
 * back the same, read or mapped copy-on-write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../vmm/core/snapshot.h"
#include "unit.h"

struct snapdir {
	char path[64];
	int fd;
};

static void snapdir_open(struct snapdir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/petrel-snap-XXXXXX");
	UNIT_ASSERT(mkdtemp(d->path) != NULL);
	d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	UNIT_ASSERT(d->fd >= 0);
}

static void snapdir_close(struct snapdir *d)
{
	unlinkat(d->fd, SNAPSHOT_STATE_FILE, 0);
	unlinkat(d->fd, SNAPSHOT_MEMORY_FILE, 0);
	close(d->fd);
	rmdir(d->path);
}

static void write_three_sections(struct snapdir *d)
{
	struct snapshot_writer w = {0};
	snapshot_writer_add(&w, "machine", "0123456789", 10);
	snapshot_writer_add(&w, "cpu0", "", 0);
	snapshot_writer_add(&w, "virtio0", "abc", 3);
	struct perr err = {0};
	UNIT_ASSERT_EQ(snapshot_writer_finish(&w, d->fd, &err), 0);
}

static size_t state_size(struct snapdir *d)
{
	struct stat st;
	return fstatat(d->fd, SNAPSHOT_STATE_FILE, &st, 0) == 0 ? (size_t)st.st_size : 0;
}

UNIT_TEST(test_snapshot_sections_are_found_by_name)
{
	struct snapdir d = {.fd = -1};
	snapdir_open(&d);
	write_three_sections(&d);
	struct snapshot_reader r;
	struct perr err = {0};
	UNIT_ASSERT_EQ(snapshot_reader_open(&r, d.fd, &err), 0);
	const void *data;
	size_t len;
	UNIT_ASSERT_EQ(snapshot_reader_find(&r, "virtio0", &data, &len), 0);
	UNIT_ASSERT_EQ(len, 3u);
	UNIT_ASSERT(memcmp(data, "abc", 3) == 0);
	UNIT_ASSERT_EQ(snapshot_reader_find(&r, "machine", &data, &len), 0);
	UNIT_ASSERT_EQ(len, 10u);
	UNIT_ASSERT_EQ(snapshot_reader_find(&r, "cpu0", &data, &len), 0);
	UNIT_ASSERT_EQ(len, 0u);
	UNIT_ASSERT_EQ(snapshot_reader_find(&r, "cpu1", &data, &len), -ENOENT);
	snapshot_reader_free(&r);
	snapdir_close(&d);
}

UNIT_TEST(test_snapshot_state_truncated_or_corrupted_is_refused)
{
	struct snapdir d = {.fd = -1};
	snapdir_open(&d);
	write_three_sections(&d);
	size_t size = state_size(&d);
	UNIT_ASSERT(size > 0);
	static uint8_t good[4096];
	UNIT_ASSERT(size <= sizeof(good));
	int fd = openat(d.fd, SNAPSHOT_STATE_FILE, O_RDWR | O_CLOEXEC);
	UNIT_ASSERT(fd >= 0);
	UNIT_ASSERT_EQ(pread(fd, good, size, 0), (ssize_t)size);
	struct snapshot_reader r;
	struct perr err = {0};
	/* Every truncation. */
	for (size_t len = 0; len < size; len++) {
		UNIT_ASSERT_EQ(ftruncate(fd, (off_t)len), 0);
		UNIT_ASSERT(snapshot_reader_open(&r, d.fd, &err) < 0);
		UNIT_ASSERT(err.msg[0] != '\0');
	}
	/* Every single-byte change of the header and the first section's header:
	 * refused, or (a name's padding) still found whole. */
	for (size_t off = 0; off < 24 + 40; off++) {
		UNIT_ASSERT_EQ(pwrite(fd, good, size, 0), (ssize_t)size);
		uint8_t b = (uint8_t)(good[off] ^ 0x5a);
		UNIT_ASSERT_EQ(pwrite(fd, &b, 1, (off_t)off), 1);
		if (snapshot_reader_open(&r, d.fd, &err) == 0) {
			const void *data;
			size_t len;
			if (snapshot_reader_find(&r, "virtio0", &data, &len) == 0)
				UNIT_ASSERT(memcmp(data, "abc", 3) == 0);
			snapshot_reader_free(&r);
		}
	}
	/* Bytes after the last section. */
	UNIT_ASSERT_EQ(pwrite(fd, good, size, 0), (ssize_t)size);
	UNIT_ASSERT_EQ(pwrite(fd, "extra", 5, (off_t)size), 5);
	UNIT_ASSERT(snapshot_reader_open(&r, d.fd, &err) < 0);
	UNIT_ASSERT(strstr(err.msg, "length") != NULL);
	close(fd);
	snapdir_close(&d);
}

UNIT_TEST(test_snapshot_duplicate_or_long_names_are_refused)
{
	struct snapdir d = {.fd = -1};
	snapdir_open(&d);
	struct snapshot_writer w = {0};
	snapshot_writer_add(&w, "cpu0", "a", 1);
	snapshot_writer_add(&w, "cpu0", "b", 1);
	struct perr err = {0};
	UNIT_ASSERT_EQ(snapshot_writer_finish(&w, d.fd, &err), 0);
	struct snapshot_reader r;
	UNIT_ASSERT(snapshot_reader_open(&r, d.fd, &err) < 0);
	UNIT_ASSERT(strstr(err.msg, "twice") != NULL);
	struct snapshot_writer w2 = {0};
	snapshot_writer_add(&w2, "a-name-that-is-longer-than-32-bytes", "x", 1);
	UNIT_ASSERT(snapshot_writer_finish(&w2, d.fd, &err) < 0);
	snapdir_close(&d);
}

#define RAM_SIZE (4u << 20)

static uint8_t *ram_with_data(void)
{
	uint8_t *ram =
	    mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		return NULL;
	memcpy(ram + 4096, "kernel", 6);
	memset(ram + (2u << 20), 0xab, 70000);
	ram[RAM_SIZE - 1] = 7;
	return ram;
}

UNIT_TEST(test_snapshot_memory_is_sparse_and_comes_back_read_or_mapped)
{
	struct snapdir d = {.fd = -1};
	snapdir_open(&d);
	uint8_t *ram = ram_with_data();
	UNIT_ASSERT(ram != NULL);
	struct perr err = {0};
	UNIT_ASSERT_EQ(snapshot_memory_save(d.fd, ram, RAM_SIZE, &err), 0);
	struct stat st;
	UNIT_ASSERT_EQ(fstatat(d.fd, SNAPSHOT_MEMORY_FILE, &st, 0), 0);
	UNIT_ASSERT_EQ((size_t)st.st_size, (size_t)RAM_SIZE);
	/* Four 64 KiB blocks hold data (the tmpfs or disk may round up a little). */
	UNIT_ASSERT((size_t)st.st_blocks * 512 <= 6 * 65536u);

	uint8_t *copy =
	    mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UNIT_ASSERT(copy != MAP_FAILED);
	UNIT_ASSERT_EQ(snapshot_memory_load(d.fd, copy, RAM_SIZE, &err), 0);
	UNIT_ASSERT(memcmp(copy, ram, RAM_SIZE) == 0);

	uint8_t *mapped =
	    mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UNIT_ASSERT(mapped != MAP_FAILED);
	UNIT_ASSERT_EQ(snapshot_memory_map(d.fd, mapped, RAM_SIZE, &err), 0);
	UNIT_ASSERT(memcmp(mapped, ram, RAM_SIZE) == 0);
	/* Copy-on-write: the guest's writes stay out of the file. */
	mapped[4096] = 'X';
	UNIT_ASSERT_EQ(snapshot_memory_load(d.fd, copy, RAM_SIZE, &err), 0);
	UNIT_ASSERT_EQ(copy[4096], 'k');

	/* Another RAM size is refused, naming both. */
	UNIT_ASSERT(snapshot_memory_load(d.fd, copy, RAM_SIZE / 2, &err) < 0);
	UNIT_ASSERT(strstr(err.msg, "-m must match") != NULL);
	UNIT_ASSERT(snapshot_memory_map(d.fd, mapped, RAM_SIZE / 2, &err) < 0);
	munmap(ram, RAM_SIZE);
	munmap(copy, RAM_SIZE);
	munmap(mapped, RAM_SIZE);
	snapdir_close(&d);
}

UNIT_MAIN("snapshot")
