/*
 * virtio-vsock (virtio 1.2 §5.10): guest AF_VSOCK stream sockets.
 *
 *   -device vhost-vsock-device,id=vsock0,guest-cid=N[,uds-path=PATH]
 *
 * Two backends behind one device model (docs/vmm.md, "vsock"):
 *  - the kernel's vhost-vsock (set up through vhost.c), chosen when uds-path
 *    is absent and /dev/vhost-vsock opens: host programs use AF_VSOCK to cid N;
 *  - the built-in device otherwise, which bridges guest streams to host unix
 *    sockets with Firecracker's hybrid protocol: host clients connect to
 *    PATH and write "CONNECT <port>\n" (answered "OK <hostport>\n"); a guest
 *    connect to cid 2 port P becomes a connection to the unix socket PATH_P.
 *    Without uds-path the path is $XDG_RUNTIME_DIR/petrel-vmm/<pid>-<id>.vsock
 *    (or /run/petrel-vmm/... when XDG_RUNTIME_DIR is unset).
 */
#ifndef PETREL_VIRTIO_VSOCK_H
#define PETREL_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../cli/config.h"
#include "virtio_dev.h"

/* Creates the device; nothing is listened on or opened for the guest until
 * the transport attaches it (realize). Chooses the backend as described above. */
int virtio_vsock_create(const struct vmm_vsock_device *cfg, struct virtio_dev **out,
			struct perr *err);

/* The unix socket the built-in device listens on; "" with vhost-vsock. */
const char *virtio_vsock_uds_path(struct virtio_dev *dev);
/* True when the kernel's vhost-vsock backs the device. */
bool virtio_vsock_uses_vhost(struct virtio_dev *dev);

/* Parses a hybrid-vsock request line without its '\n' ("CONNECT 1024").
 * 0 and *port, or -EINVAL. Exported for the unit tests. */
int virtio_vsock_parse_connect(const char *line, size_t len, uint32_t *port);

#endif
