/* io.petrel.vm.hugepages: the guest's RAM on huge pages, from a hugetlbfs
 * mounted in the container's state directory (STATEDIR/hugepages) and given
 * to petrel-vmm as -mem-path. */
#ifndef PETREL_RUNTIME_HUGEPAGES_H
#define PETREL_RUNTIME_HUGEPAGES_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* "2M", "2MB", "1G", "1GB" -> bytes; -EINVAL otherwise. */
int hugepages_parse(const char *text, uint64_t *page_size);
/* Free huge pages of that size on the host, or -errno (the size has no pool). */
long hugepages_free(uint64_t page_size);
/* Checks that memory fits in the free pages, then mounts a hugetlbfs with that
 * page size at STATEDIR/hugepages (dir gets the path). Nothing is left on
 * failure. */
int hugepages_mount(const char *state_dir, uint64_t page_size, uint64_t memory, char *dir,
		    size_t size, struct perr *err);
/* Unmounts and removes STATEDIR/hugepages; nothing to do is fine. */
void hugepages_release(const char *state_dir);

#endif
