/*
 * What the control plane (QMP, signals) may ask of a running VM. All calls
 * are made from the main-loop thread. The VM reports state changes back
 * through the event hook, which QMP turns into events (STOP, RESUME, ...).
 */
#ifndef PETREL_VM_CONTROL_H
#define PETREL_VM_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"

struct vm;

enum vm_run_state {
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,   /* QMP stop, or -S before the first cont */
	VM_STATE_SHUTDOWN, /* the VM is on its way out */
};

/* QMP's SHUTDOWN "reason" values, as QEMU names them. */
enum vm_shutdown_reason {
	VM_SHUTDOWN_HOST_QMP_QUIT,  /* "host-qmp-quit" */
	VM_SHUTDOWN_HOST_SIGNAL,    /* "host-signal" */
	VM_SHUTDOWN_GUEST_SHUTDOWN, /* "guest-shutdown" (poweroff) */
	VM_SHUTDOWN_GUEST_RESET,    /* "guest-reset" (reboot, i8042 reset) */
	VM_SHUTDOWN_GUEST_PANIC,    /* "guest-panic" */
	VM_SHUTDOWN_HOST_ERROR,	    /* "host-error": the VMM could not go on */
};

enum vm_event_kind {
	VM_EVENT_SHUTDOWN, /* reason set */
	VM_EVENT_STOP,
	VM_EVENT_RESUME,
	VM_EVENT_RESET,
	VM_EVENT_POWERDOWN,
	VM_EVENT_BALLOON_CHANGE, /* balloon_actual set */
	VM_EVENT_DEVICE_DELETED, /* device_id set */
};

struct vm_event {
	enum vm_event_kind kind;
	enum vm_shutdown_reason reason; /* VM_EVENT_SHUTDOWN */
	bool guest;			/* caused by the guest */
	uint64_t balloon_actual; /* VM_EVENT_BALLOON_CHANGE: guest RAM minus the balloon, bytes */
	const char *device_id;	 /* VM_EVENT_DEVICE_DELETED: valid during the hook call */
};

/* QMP's name for a reason: "host-qmp-quit", "guest-reset", ... */
const char *vm_shutdown_reason_name(enum vm_shutdown_reason reason);

typedef void (*vm_event_hook)(void *opaque, const struct vm_event *ev);

/* One hook; QMP installs it. */
void vm_set_event_hook(struct vm *vm, vm_event_hook hook, void *opaque);

enum vm_run_state vm_get_state(const struct vm *vm);
/* Stops every vCPU (returns after all are out of KVM_RUN). Idempotent. */
int vm_pause(struct vm *vm, struct perr *err);
int vm_resume(struct vm *vm, struct perr *err);
/* Ends the VM: the main loop returns and the VMM exits 0. */
void vm_request_shutdown(struct vm *vm, enum vm_shutdown_reason reason);
/* Asks the guest to power off (Ctrl-Alt-Del through the i8042). */
int vm_request_powerdown(struct vm *vm, struct perr *err);
/* Resets the VM; with the MicroVm machine a reset ends the VMM, as a guest
 * reboot does (like Firecracker and StratoVirt's microvm). */
int vm_request_reset(struct vm *vm, struct perr *err);

struct vm_cpu_info {
	unsigned cpu_index;
	int thread_id; /* host tid of the vCPU thread */
};
/* Fills up to max entries; returns the number of vCPUs. */
unsigned vm_query_cpus(const struct vm *vm, struct vm_cpu_info *out, unsigned max);
const char *vm_name(const struct vm *vm);

/* The balloon (-device virtio-balloon-device). */
struct vm_balloon_info {
	uint64_t actual;   /* bytes of RAM the guest has: RAM minus the balloon */
	uint64_t ram_size; /* bytes of guest RAM (-m) */
};
/* -ENODEV without a balloon device. */
int vm_balloon_query(struct vm *vm, struct vm_balloon_info *out);
/* Asks the guest to keep target_bytes of RAM (QMP balloon): -ENODEV without
 * a balloon device, -ERANGE unless 0 < target_bytes <= RAM size. */
int vm_balloon_set_target(struct vm *vm, uint64_t target_bytes, struct perr *err);

/* QMP migrate to "file:DIR": a snapshot of the paused VM (core/snapshot.h),
 * which -incoming file:DIR restores. -EBUSY when the VM runs or a device cannot
 * be saved now (vsock connections open: retry); the VM is unchanged either way. */
int vm_snapshot_save(struct vm *vm, const char *dir, struct perr *err);

/* Hot plug (core/hotplug.h): the VM's replaceable slots and hot-added
 * backends; never NULL once the VM is built. */
struct hotplug;
struct hotplug *vm_hotplug(struct vm *vm);

#endif
