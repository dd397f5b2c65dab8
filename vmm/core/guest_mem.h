/*
 * Guest physical memory. Every access to guest memory from device code goes
 * through guest_mem_slice() or the copy helpers, which check that the whole
 * range [gpa, gpa + len) lies inside one RAM region. A device never does
 * pointer arithmetic on a guest address.
 */
#ifndef PETREL_GUEST_MEM_H
#define PETREL_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 4

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned n_regions;
};

/* Host pointer for [gpa, gpa + len), or NULL when any byte of it is not RAM
 * or the range overflows. len == 0 is allowed and checks gpa only. */
void *guest_mem_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* 0, or -EFAULT when the range is not entirely RAM. */
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, size_t len);
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, size_t len);
/* Adds a region; regions must not overlap. -EINVAL / -ENOSPC. */
int guest_mem_add_region(struct guest_mem *mem, uint64_t gpa, uint64_t size, void *hva);
uint64_t guest_mem_total(const struct guest_mem *mem);

#endif
