/*
 * virtio-rng, the entropy device (virtio 1.2 §5.4), fed from a host file.
 *
 *   -object rng-random,id=rng0,filename=/dev/urandom
 *   -device virtio-rng-device,rng=rng0[,max-bytes=N,period=MS]
 *
 * One request queue. Each guest buffer is filled with a read() from the file
 * (opened at realize). With max-bytes, at most that many bytes are given per
 * period milliseconds; a buffer that would exceed the quota waits for the
 * next period on a timerfd in the device's loop.
 */
#ifndef PETREL_VIRTIO_RNG_H
#define PETREL_VIRTIO_RNG_H

#include "../../common/error.h"
#include "../cli/config.h"
#include "virtio_dev.h"

#define VIRTIO_ID_ENTROPY 4

/* Period used when max-bytes is set without period (QEMU's default, ms). */
#define VIRTIO_RNG_DEFAULT_PERIOD_MS 65536

/* No file is opened here; realize (in virtio_mmio_attach) opens cfg->filename.
 * Errors read "-object rng0: open /x: No such file or directory". */
int virtio_rng_create(const struct vmm_rng *cfg, struct virtio_dev **out, struct perr *err);

#endif
