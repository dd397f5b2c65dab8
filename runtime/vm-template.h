/*
 * VM templates (docs/runtime.md, "VM templates"): instead of booting a guest
 * per container, petrel restores a snapshot of one that has booted and whose
 * agent waits for its first connection (petrel-vmm's QMP migrate and
 * -incoming). A template is made the first time a VM of its shape is needed:
 * the same petrel-vmm command line (vCPUs, memory, kernel, initrd, kernel
 * command line, devices, MAC), with an empty root disk; the container's own
 * disk then reaches the restored guest as a capacity change, which its agent
 * waits for before mounting it. The agent also takes the host's clock and
 * fresh RNG bytes from the host's hello on the first connection.
 *
 * Kept in $PETREL_VM_TEMPLATE_CACHE (off: none), else /var/cache/petrel/vm
 * (root) or $XDG_CACHE_HOME/petrel/vm: one directory per shape, named by the
 * hash of a key (the command line and the identity of petrel-vmm, the kernel
 * and the initrd) that is stored with it and compared in full. At most
 * VM_TEMPLATE_ENTRIES are kept (least recently used go first).
 */
#ifndef PETREL_RUNTIME_VM_TEMPLATE_H
#define PETREL_RUNTIME_VM_TEMPLATE_H

#include <stddef.h>

#include "runtime/vmm-launch.h"

#define VM_TEMPLATE_ENTRIES 4

/* The template directory for the VM l describes, made first when missing, in
 * out; "" when there is none to use (templates off, or making one failed: the
 * reason is logged as a warning and kept in DIR.failed, and the container's
 * guest boots). timeout_s bounds the template guest's boot. */
void vm_template_get(const struct vmm_launch *l, unsigned timeout_s, char *out, size_t size);
/* A template the VMM could not restore: removed, so that the next create makes
 * it again. */
void vm_template_discard(const char *dir);

#endif
