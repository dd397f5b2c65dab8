#include "vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../common/log.h"
#include "bus.h"

enum vcpu_want { VCPU_RUN, VCPU_PAUSE, VCPU_STOP };

/* Device emulation runs on this stack: 1 MiB is ample. */
#define VCPU_STACK_SIZE (1u << 20)

struct vcpu {
	struct vcpus *set;
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
	int tid;
	uint64_t unassigned; /* accesses to unassigned ports / MMIO, for the log */
	bool exit_handled;   /* the last KVM_RUN ended in an exit we handled */
};

struct vcpus {
	struct vcpu_host host;
	unsigned n;
	struct vcpu *cpus;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vcpu_want want;
	unsigned parked;  /* threads waiting in vcpu_wait_for_run */
	unsigned exited;  /* threads that left their loop */
	unsigned started; /* threads that have recorded their tid */
	unsigned n_threads;
	int setup_rc;	       /* first host.thread_setup failure */
	struct perr setup_err; /* its message, "vCPU N: ..." */
};

/* ------------------------------------------------------------------------ */
/* The kick                                                                   */
/* ------------------------------------------------------------------------ */

static pthread_once_t vcpu_kick_once = PTHREAD_ONCE_INIT;

static int vcpu_kick_signal(void)
{
	return SIGRTMIN;
}

/* Does nothing: its only effect is that KVM_RUN returns with EINTR. */
static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

static void vcpu_install_kick_handler(void)
{
	struct sigaction sa = {.sa_handler = vcpu_kick_handler, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	sigaction(vcpu_kick_signal(), &sa, NULL);
}

/* Called with set->lock held, after `want` changed. */
static void vcpu_kick_all_locked(struct vcpus *set)
{
	for (unsigned i = 0; i < set->n; i++) {
		struct vcpu *v = &set->cpus[i];
		if (!v->run)
			continue;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (v->thread_started && !pthread_equal(v->thread, pthread_self()))
			pthread_kill(v->thread, vcpu_kick_signal());
	}
	pthread_cond_broadcast(&set->cond);
}

/* ------------------------------------------------------------------------ */
/* The vCPU thread                                                            */
/* ------------------------------------------------------------------------ */

/* Parks while paused; false when the thread must leave. */
static bool vcpu_wait_for_run(struct vcpu *v)
{
	struct vcpus *set = v->set;
	/* Cleared before `want` is read: a controller that set it after
	 * changing `want` is seen below, under the lock. */
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&set->lock);
	if (set->want == VCPU_PAUSE && v->exit_handled) {
		/* KVM finishes an I/O instruction (its result, its RIP) at the next
		 * KVM_RUN; with immediate_exit it does only that (KVM API, "immediate_exit"),
		 * so a paused vCPU's registers are whole, as a snapshot needs them. */
		pthread_mutex_unlock(&set->lock);
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		(void)ioctl(v->fd, KVM_RUN, 0);
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		v->exit_handled = false;
		pthread_mutex_lock(&set->lock);
	}
	while (set->want == VCPU_PAUSE) {
		set->parked++;
		pthread_cond_broadcast(&set->cond);
		while (set->want == VCPU_PAUSE)
			pthread_cond_wait(&set->cond, &set->lock);
		set->parked--;
	}
	bool run = set->want == VCPU_RUN;
	pthread_mutex_unlock(&set->lock);
	return run;
}

static void vcpu_exit_request(struct vcpu *v, enum vm_shutdown_reason reason)
{
	vcpus_stop(v->set);
	if (v->set->host.request_exit)
		v->set->host.request_exit(v->set->host.opaque, reason);
}

/* Linux probes absent hardware at boot (PCI config ports, other COM ports):
 * worth a few debug lines, not one per access. */
static bool vcpu_log_unassigned(struct vcpu *v)
{
	uint64_t n = v->unassigned++;
	return n < 16 || (n & 0xffff) == 0;
}

static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < run->io.count; i++) {
		bool mapped;
		if (run->io.direction == KVM_EXIT_IO_OUT)
			mapped = bus_write(v->set->host.pio, run->io.port, data, run->io.size);
		else
			mapped = bus_read(v->set->host.pio, run->io.port, data, run->io.size);
		if (!mapped && vcpu_log_unassigned(v))
			log_debug("vcpu%u: %s of unassigned port %#x (%u bytes)", v->index,
				  run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read",
				  run->io.port, run->io.size);
		data += run->io.size;
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	bool mapped;
	if (run->mmio.is_write)
		mapped = bus_write(v->set->host.mmio, run->mmio.phys_addr, run->mmio.data,
				   run->mmio.len);
	else
		mapped =
		    bus_read(v->set->host.mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
	if (!mapped && vcpu_log_unassigned(v))
		log_debug("vcpu%u: %s of unassigned MMIO %#llx (%u bytes)", v->index,
			  run->mmio.is_write ? "write" : "read",
			  (unsigned long long)run->mmio.phys_addr, run->mmio.len);
}

static void vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(v);
		break;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v);
		break;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT: /* with the in-kernel LAPIC HLT stays in KVM; harmless */
		break;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault: on a PC this resets the machine. */
		log_info("vcpu%u: triple fault; the guest reset", v->index);
		vcpu_exit_request(v, VM_SHUTDOWN_GUEST_RESET);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vcpu_exit_request(v, VM_SHUTDOWN_GUEST_SHUTDOWN);
			break;
		case KVM_SYSTEM_EVENT_RESET:
			vcpu_exit_request(v, VM_SHUTDOWN_GUEST_RESET);
			break;
		case KVM_SYSTEM_EVENT_CRASH:
			vcpu_exit_request(v, VM_SHUTDOWN_GUEST_PANIC);
			break;
		default:
			log_error("vcpu%u: unknown KVM system event %u", v->index,
				  run->system_event.type);
			vcpu_exit_request(v, VM_SHUTDOWN_HOST_ERROR);
		}
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		log_error("vcpu%u: KVM internal error (suberror %u)", v->index,
			  run->internal.suberror);
		vcpu_exit_request(v, VM_SHUTDOWN_HOST_ERROR);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("vcpu%u: KVM could not enter the guest (hardware reason %#llx)", v->index,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_exit_request(v, VM_SHUTDOWN_HOST_ERROR);
		break;
	default:
		log_error("vcpu%u: unexpected KVM exit %u", v->index, run->exit_reason);
		vcpu_exit_request(v, VM_SHUTDOWN_HOST_ERROR);
		break;
	}
}

static void *vcpu_thread(void *opaque)
{
	struct vcpu *v = opaque;
	struct vcpus *set = v->set;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);

	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, vcpu_kick_signal());
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	struct perr err = {0};
	int rc = set->host.thread_setup
		     ? set->host.thread_setup(set->host.opaque, v->index, v->fd, &err)
		     : 0;
	pthread_mutex_lock(&set->lock);
	v->tid = gettid();
	set->started++;
	if (rc < 0 && set->setup_rc == 0) {
		set->setup_rc = rc;
		set->setup_err = err;
		perr_wrap(&set->setup_err, "vCPU %u", v->index);
	}
	pthread_cond_broadcast(&set->cond);
	pthread_mutex_unlock(&set->lock);

	while (rc == 0 && vcpu_wait_for_run(v)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			v->exit_handled = false;
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_error("vcpu%u: KVM_RUN: %s", v->index, strerror(errno));
			vcpu_exit_request(v, VM_SHUTDOWN_HOST_ERROR);
			continue;
		}
		vcpu_handle_exit(v);
		v->exit_handled = true;
	}

	pthread_mutex_lock(&set->lock);
	set->exited++;
	pthread_cond_broadcast(&set->cond);
	pthread_mutex_unlock(&set->lock);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Control                                                                    */
/* ------------------------------------------------------------------------ */

int vcpus_create(int kvm_fd, int vm_fd, unsigned n, const struct vcpu_host *host,
		 struct vcpus **out, struct perr *err)
{
	pthread_once(&vcpu_kick_once, vcpu_install_kick_handler);
	int mmap_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		return perr_set(err, mmap_size < 0 ? -errno : -EINVAL, "KVM_GET_VCPU_MMAP_SIZE");

	struct vcpus *set = calloc(1, sizeof(*set));
	if (!set)
		return perr_setx(err, -ENOMEM, "out of memory");
	set->cpus = calloc(n, sizeof(*set->cpus));
	if (!set->cpus) {
		free(set);
		return perr_setx(err, -ENOMEM, "out of memory");
	}
	set->host = *host;
	pthread_mutex_init(&set->lock, NULL);
	pthread_cond_init(&set->cond, NULL);
	set->want = VCPU_PAUSE;
	for (unsigned i = 0; i < n; i++)
		set->cpus[i].fd = -1;

	int rc = 0;
	for (unsigned i = 0; i < n; i++) {
		struct vcpu *v = &set->cpus[i];
		v->set = set;
		v->index = i;
		v->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (v->fd < 0) {
			rc = perr_set(err, -errno, "KVM_CREATE_VCPU %u", i);
			break;
		}
		set->n = i + 1;
		v->run =
		    mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			rc = perr_set(err, -errno, "mmap kvm_run of vCPU %u", i);
			break;
		}
		v->run_size = (size_t)mmap_size;
	}
	if (rc < 0) {
		vcpus_destroy(set);
		return rc;
	}
	*out = set;
	return 0;
}

unsigned vcpus_count(const struct vcpus *set)
{
	return set->n;
}

int vcpus_fd(const struct vcpus *set, unsigned index)
{
	return index < set->n ? set->cpus[index].fd : -1;
}

int vcpus_tid(const struct vcpus *set, unsigned index)
{
	return index < set->n ? set->cpus[index].tid : 0;
}

int vcpus_start(struct vcpus *set, bool run, struct perr *err)
{
	pthread_mutex_lock(&set->lock);
	if (set->want != VCPU_STOP)
		set->want = run ? VCPU_RUN : VCPU_PAUSE;
	pthread_mutex_unlock(&set->lock);
	/* A stack smaller than a huge page: with THP "always", a default 8 MiB
	 * stack that happens to be 2 MiB-aligned costs 2 MiB of RSS per vCPU. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, VCPU_STACK_SIZE);
	for (unsigned i = 0; i < set->n; i++) {
		struct vcpu *v = &set->cpus[i];
		int rc = pthread_create(&v->thread, &attr, vcpu_thread, v);
		if (rc) {
			pthread_attr_destroy(&attr);
			vcpus_stop(set);
			return perr_set(err, -rc, "vCPU %u thread", i);
		}
		pthread_mutex_lock(&set->lock);
		v->thread_started = true;
		set->n_threads++;
		pthread_mutex_unlock(&set->lock);
	}
	pthread_attr_destroy(&attr);
	/* Their tids are known once this returns (query-cpus-fast). */
	pthread_mutex_lock(&set->lock);
	while (set->started < set->n)
		pthread_cond_wait(&set->cond, &set->lock);
	int rc = set->setup_rc;
	if (rc < 0)
		*err = set->setup_err;
	pthread_mutex_unlock(&set->lock);
	if (rc < 0)
		vcpus_stop(set);
	return rc;
}

void vcpus_pause(struct vcpus *set)
{
	pthread_mutex_lock(&set->lock);
	if (set->want == VCPU_RUN) {
		set->want = VCPU_PAUSE;
		vcpu_kick_all_locked(set);
	}
	while (set->parked + set->exited < set->n_threads && set->want != VCPU_RUN)
		pthread_cond_wait(&set->cond, &set->lock);
	pthread_mutex_unlock(&set->lock);
}

void vcpus_resume(struct vcpus *set)
{
	pthread_mutex_lock(&set->lock);
	if (set->want == VCPU_PAUSE) {
		set->want = VCPU_RUN;
		pthread_cond_broadcast(&set->cond);
	}
	pthread_mutex_unlock(&set->lock);
}

void vcpus_stop(struct vcpus *set)
{
	pthread_mutex_lock(&set->lock);
	if (set->want != VCPU_STOP) {
		set->want = VCPU_STOP;
		vcpu_kick_all_locked(set);
	}
	pthread_mutex_unlock(&set->lock);
}

void vcpus_destroy(struct vcpus *set)
{
	if (!set)
		return;
	vcpus_stop(set);
	for (unsigned i = 0; i < set->n; i++) {
		struct vcpu *v = &set->cpus[i];
		if (v->thread_started)
			pthread_join(v->thread, NULL);
		if (v->run)
			munmap(v->run, v->run_size);
		if (v->fd >= 0)
			close(v->fd);
	}
	pthread_cond_destroy(&set->cond);
	pthread_mutex_destroy(&set->lock);
	free(set->cpus);
	free(set);
}
