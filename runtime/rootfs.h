/* The container's root disk: an ext4 image built from root.path. */
#ifndef PETREL_RUNTIME_ROOTFS_H
#define PETREL_RUNTIME_ROOTFS_H

#include <stdint.h>

#include "common/error.h"
#include "runtime/spec.h"

#define ROOTFS_MIN_BYTES (64ull << 20)

/* Bytes and inodes a directory tree uses (symlinks not followed). */
int rootfs_measure(const char *dir, uint64_t *bytes, uint64_t *inodes, struct perr *err);
/* The image size for that much data: used + 25% + margin, at least 64 MiB,
 * rounded up to a MiB. */
uint64_t rootfs_image_size(uint64_t used, uint64_t margin);

/* `mke2fs -q -t ext4 -d DIR -N INODES -F IMG SIZE`, or a copy of the cached
 * image of an unchanged DIR (rootfs.c: $PETREL_ROOTFS_CACHE, else
 * /var/cache/petrel/rootfs for root, else $XDG_CACHE_HOME/petrel/rootfs; "off"
 * disables it), then the copied files (bind mounts of small host files)
 * written in with debugfs. IMG is the caller's own file either way. The image
 * is removed when anything fails. */
int rootfs_build_image(const char *dir, const char *img, uint64_t margin,
		       const struct spec_file_copy *copies, size_t n_copies, struct perr *err);

#endif
