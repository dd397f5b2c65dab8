/*
 * virtio-console (virtio 1.2 §5.3) with a single port, the guest's hvc0,
 * connected to a chardev.
 *
 *   -chardev socket,id=con0,path=/run/vm.console,server,nowait
 *   -device virtio-serial-device[,id=ser0]
 *   -device virtconsole,chardev=con0[,id=console0]
 *
 * No VIRTIO_CONSOLE_F_MULTIPORT: receiveq0 (queue 0) and transmitq0 (queue 1)
 * only. Guest output goes to the chardev, which never blocks (it buffers and,
 * beyond its bound, drops). Chardev input is kept in a small bounded buffer
 * until the guest has posted receive buffers; when it is full the chardev
 * stops reading (flow control, no loss).
 */
#ifndef PETREL_VIRTIO_CONSOLE_H
#define PETREL_VIRTIO_CONSOLE_H

#include "../../common/error.h"
#include "../cli/config.h"
#include "virtio_dev.h"

struct chardev;

/* Input kept for the guest while it has no receive buffer. */
#define VIRTIO_CONSOLE_RX_BUFFER 4096

/* chr is the chardev named by cfg->console_chardev; it must outlive the
 * device (the VM removes virtio devices before chardevs). The device becomes
 * chr's frontend at realize and detaches itself on destroy. */
int virtio_console_create(const struct vmm_virtio_serial *cfg, struct chardev *chr,
			  struct virtio_dev **out, struct perr *err);

#endif
