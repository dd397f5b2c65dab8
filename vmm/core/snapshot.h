/*
 * Snapshot files (QMP migrate to "file:DIR", -incoming file:DIR).
 *
 * A snapshot is a directory, as StratoVirt lays it out:
 *   DIR/state   named sections (machine shape, vCPUs, in-kernel irqchip,
 *               devices), each an opaque blob its owner validates
 *   DIR/memory  guest RAM, as a sparse file of exactly the RAM's size
 *               (zero pages are holes)
 * A snapshot is input like any other: the reader checks every length and
 * name before a section reaches its owner.
 */
#ifndef PETREL_SNAPSHOT_H
#define PETREL_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

#define SNAPSHOT_STATE_FILE	  "state"
#define SNAPSHOT_MEMORY_FILE	  "memory"
#define SNAPSHOT_SECTION_NAME_MAX 32 /* with the NUL */
#define SNAPSHOT_STATE_MAX	  (16u << 20)

/* The directory of a "file:DIR" URI (QMP migrate, -incoming), or NULL for any
 * other URI or an empty DIR. */
const char *snapshot_uri_dir(const char *uri);

struct snapshot_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t count;
	int error; /* first failure (-ENOMEM, -E2BIG), reported by finish */
};

/* Appends a section; a failure is kept for snapshot_writer_finish. */
void snapshot_writer_add(struct snapshot_writer *w, const char *name, const void *data, size_t len);
/* Writes DIR/state (dirfd) and frees the buffer. */
int snapshot_writer_finish(struct snapshot_writer *w, int dirfd, struct perr *err);
void snapshot_writer_free(struct snapshot_writer *w);

struct snapshot_reader {
	uint8_t *buf;
	size_t len;
};

/* Reads and validates DIR/state: header, section bounds, names, no duplicates. */
int snapshot_reader_open(struct snapshot_reader *r, int dirfd, struct perr *err);
/* The payload of section name: 0, or -ENOENT when the snapshot has none. */
int snapshot_reader_find(const struct snapshot_reader *r, const char *name, const void **data,
			 size_t *len);
void snapshot_reader_free(struct snapshot_reader *r);

/* DIR/memory from size bytes of RAM: only non-zero 64 KiB blocks are written. */
int snapshot_memory_save(int dirfd, const uint8_t *ram, size_t size, struct perr *err);
/* Fills RAM (zeroed, as a fresh mapping is) from DIR/memory, reading only its data
 * extents. The file must be exactly size bytes. */
int snapshot_memory_load(int dirfd, uint8_t *ram, size_t size, struct perr *err);
/* Maps DIR/memory copy-on-write over anonymous RAM (MAP_FIXED, the same
 * address): only the pages the guest touches are read, and the file's page
 * cache is shared by every VM restored from it. */
int snapshot_memory_map(int dirfd, uint8_t *ram, size_t size, struct perr *err);

#endif
