#include "vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../core/guest_mem.h"
#include "virtqueue.h"

int vhost_open(const char *path, struct perr *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "open %s", path);
	if (ioctl(fd, VHOST_SET_OWNER, NULL) < 0) {
		int ret = perr_set(err, -errno, "%s: VHOST_SET_OWNER", path);
		close(fd);
		return ret;
	}
	return fd;
}

int vhost_get_features(int fd, uint64_t *features, struct perr *err)
{
	if (ioctl(fd, VHOST_GET_FEATURES, features) < 0)
		return perr_set(err, -errno, "VHOST_GET_FEATURES");
	return 0;
}

int vhost_set_features(int fd, uint64_t features, struct perr *err)
{
	if (ioctl(fd, VHOST_SET_FEATURES, &features) < 0)
		return perr_set(err, -errno, "VHOST_SET_FEATURES 0x%llx",
				(unsigned long long)features);
	return 0;
}

int vhost_set_mem_table(int fd, const struct guest_mem *mem, struct perr *err)
{
	struct vhost_memory *table =
	    calloc(1, sizeof(*table) + mem->n_regions * sizeof(struct vhost_memory_region));
	if (!table)
		return perr_set(err, -ENOMEM, "vhost memory table");
	table->nregions = mem->n_regions;
	for (unsigned i = 0; i < mem->n_regions; i++) {
		table->regions[i] = (struct vhost_memory_region){
		    .guest_phys_addr = mem->regions[i].gpa,
		    .memory_size = mem->regions[i].size,
		    .userspace_addr = (uint64_t)(uintptr_t)mem->regions[i].hva,
		};
	}
	int ret = 0;
	if (ioctl(fd, VHOST_SET_MEM_TABLE, table) < 0)
		ret = perr_set(err, -errno, "VHOST_SET_MEM_TABLE");
	free(table);
	return ret;
}

int vhost_set_vring(int fd, unsigned index, const struct virtqueue *vq, int kick_fd, int call_fd,
		    struct perr *err)
{
	struct vhost_vring_state num = {.index = index, .num = vq->size};
	if (ioctl(fd, VHOST_SET_VRING_NUM, &num) < 0)
		return perr_set(err, -errno, "vring %u: VHOST_SET_VRING_NUM %u", index, vq->size);
	/* The kernel starts where the device model stands (0 after a reset). */
	struct vhost_vring_state base = {.index = index, .num = vq->last_avail_idx};
	if (ioctl(fd, VHOST_SET_VRING_BASE, &base) < 0)
		return perr_set(err, -errno, "vring %u: VHOST_SET_VRING_BASE", index);
	/* Host addresses of rings that virtq_setup() checked lie in guest RAM. */
	struct vhost_vring_addr addr = {
	    .index = index,
	    .desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
	    .avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
	    .used_user_addr = (uint64_t)(uintptr_t)vq->used,
	};
	if (ioctl(fd, VHOST_SET_VRING_ADDR, &addr) < 0)
		return perr_set(err, -errno, "vring %u: VHOST_SET_VRING_ADDR", index);
	struct vhost_vring_file kick = {.index = index, .fd = kick_fd};
	if (ioctl(fd, VHOST_SET_VRING_KICK, &kick) < 0)
		return perr_set(err, -errno, "vring %u: VHOST_SET_VRING_KICK", index);
	struct vhost_vring_file call = {.index = index, .fd = call_fd};
	if (ioctl(fd, VHOST_SET_VRING_CALL, &call) < 0)
		return perr_set(err, -errno, "vring %u: VHOST_SET_VRING_CALL", index);
	return 0;
}

void vhost_clear_vring(int fd, unsigned index)
{
	/* fd -1 detaches (<linux/vhost.h>: VHOST_FILE_UNBIND). */
	struct vhost_vring_file none = {.index = index, .fd = VHOST_FILE_UNBIND};
	(void)ioctl(fd, VHOST_SET_VRING_KICK, &none);
	(void)ioctl(fd, VHOST_SET_VRING_CALL, &none);
}
