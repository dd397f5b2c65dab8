#include "guest_mem.h"

#include <errno.h>
#include <string.h>

void *guest_mem_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (gpa + len < gpa)
		return NULL;
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa)) {
			/* gpa == end of region is only valid for an empty slice. */
			if (gpa - r->gpa == r->size && len == 0)
				continue;
			return r->hva + (gpa - r->gpa);
		}
	}
	return NULL;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, size_t len)
{
	const void *src = guest_mem_slice(mem, gpa, len);
	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, size_t len)
{
	void *dst = guest_mem_slice(mem, gpa, len);
	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_mem_add_region(struct guest_mem *mem, uint64_t gpa, uint64_t size, void *hva)
{
	if (!size || gpa + size < gpa)
		return -EINVAL;
	if (mem->n_regions >= GUEST_MEM_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EINVAL;
	}
	mem->regions[mem->n_regions++] = (struct guest_mem_region){gpa, size, hva};
	return 0;
}

uint64_t guest_mem_total(const struct guest_mem *mem)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < mem->n_regions; i++)
		total += mem->regions[i].size;
	return total;
}
