/*
 * The vCPUs of one VM: one thread each ("vcpu0", "vcpu1", ...), running
 * KVM_RUN and dispatching port I/O and MMIO exits to the buses.
 *
 * Control never runs in a signal handler. To get a vCPU out of KVM_RUN the
 * controller sets kvm_run->immediate_exit and sends a kick signal whose
 * handler does nothing (it only makes KVM_RUN return EINTR); the vCPU thread
 * then parks on a condition variable until it may run again. vcpus_pause()
 * returns once every vCPU is parked or gone, so no vCPU is in KVM_RUN.
 */
#ifndef PETREL_VCPU_H
#define PETREL_VCPU_H

#include <stdbool.h>

#include "../../common/error.h"
#include "vm_control.h"

struct bus;
struct vcpus;

struct vcpu_host {
	struct bus *pio;
	struct bus *mmio;
	/* A vCPU exit that ends the VM (triple fault, KVM system event, an
	 * internal error). Called on the vCPU thread, once per exit; the vCPU
	 * stops running the guest afterwards. */
	void (*request_exit)(void *opaque, enum vm_shutdown_reason reason);
	/* Optional: runs first on each vCPU thread, before its first KVM_RUN
	 * (the place for the thread's seccomp filter). A failure ends that
	 * thread and makes vcpus_start fail with err. */
	int (*thread_setup)(void *opaque, unsigned index, int vcpu_fd, struct perr *err);
	void *opaque;
};

/* Creates n vCPUs (ids = APIC ids 0..n-1) and maps their kvm_run; no threads yet. */
int vcpus_create(int kvm_fd, int vm_fd, unsigned n, const struct vcpu_host *host,
		 struct vcpus **out, struct perr *err);
unsigned vcpus_count(const struct vcpus *v);
int vcpus_fd(const struct vcpus *v, unsigned index);
/* Starts the threads; with run false they park before their first KVM_RUN.
 * Returns once every thread ran host->thread_setup. */
int vcpus_start(struct vcpus *v, bool run, struct perr *err);
/* Returns when no vCPU is in KVM_RUN. Idempotent. Not from a vCPU thread. */
void vcpus_pause(struct vcpus *v);
void vcpus_resume(struct vcpus *v);
/* Makes every vCPU thread leave for good (they finish on their own); safe
 * from any thread, including a vCPU's own. */
void vcpus_stop(struct vcpus *v);
/* Stops and joins the threads, closes the vCPUs. NULL is a no-op. */
void vcpus_destroy(struct vcpus *v);
/* The host thread id of vCPU index (0 before it started). */
int vcpus_tid(const struct vcpus *v, unsigned index);

#endif
