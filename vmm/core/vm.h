/*
 * The MicroVm machine: build it from a validated config, run it, destroy it.
 * What the control plane may do to a running VM is in vm_control.h.
 *
 *   vm_build    memory, irqchip + PIT, iothread loops, devices, kernel, vCPUs (each step
 *               undone in reverse on failure; nothing runs yet)
 *   vm_run      starts the vCPUs (parked with -S) and runs the main loop
 *               until the VM ends: guest reset/poweroff, QMP quit, a signal
 *               (through main's signalfd), or a host error
 *   vm_destroy  stops and joins the vCPUs, removes devices, frees memory
 */
#ifndef PETREL_VM_H
#define PETREL_VM_H

#include "../../common/error.h"
#include "../cli/config.h"
#include "vm_control.h"

struct eventloop;

int vm_build(const struct vmm_config *cfg, struct vm **out, struct perr *err);
/* The main loop: devices, QMP and main's signalfd run on it. */
struct eventloop *vm_eventloop(struct vm *vm);
/* Called by main between build and run: starts the iothreads and the vCPU
 * threads (parked), each of which installs its own seccomp filter, then
 * installs the main thread's (core/seccomp.h). With disabled
 * (-disable-seccomp) only starts the threads. */
int vm_install_seccomp(struct vm *vm, bool disabled, struct perr *err);
/* Runs until the VM ends. 0 when it ended; -errno when the loop failed. */
int vm_run(struct vm *vm, struct perr *err);
/* How it ended (valid once vm_run returned 0). */
enum vm_shutdown_reason vm_shutdown_reason(const struct vm *vm);
/* The process exit status for that: 1 for a host error, else 0. */
int vm_exit_status(const struct vm *vm);
/* The command line the kernel gets (-append plus the virtio-mmio devices). */
const char *vm_kernel_cmdline(const struct vm *vm);
/* NULL is a no-op. Restores the terminal, removes sockets it created. */
void vm_destroy(struct vm *vm);

/* For logs and QMP: "guest-reset", "host-signal", ... */

#endif
