/*
 * virtio-blk (virtio 1.2 §5.2) over a raw image file or block device.
 *
 *   -drive id=rootfs,file=/x.img[,readonly=on][,direct=on][,throttling.iops-total=N]
 *   -device virtio-blk-device,drive=rootfs[,serial=...]
 *
 * One request queue, processed synchronously with preadv/pwritev on the
 * thread the transport runs it on (the main loop, later an iothread).
 */
#ifndef PETREL_VIRTIO_BLK_H
#define PETREL_VIRTIO_BLK_H

#include "../../common/error.h"
#include "../cli/config.h"
#include "virtio_dev.h"

/* Opens the image (no guest-visible effect until attached). Errors read
 * "drive rootfs: open /x.img: No such file or directory". */
int virtio_blk_create(const struct vmm_drive *drive, const struct vmm_blk_device *dev,
		      struct virtio_dev **out, struct perr *err);

#endif
