/*
 * The x86 MicroVm machine: RAM, KVM's in-kernel irqchip and PIT, a 16550A
 * on COM1, an i8042 (reset line, Ctrl-Alt-Del), virtio-mmio block devices,
 * and vCPUs that boot a Linux kernel directly (no firmware).
 *
 * Threads: the main loop (this file's callbacks, QMP, chardevs, virtio
 * queues), one thread per vCPU, and one per -object iothread (the queues of
 * the devices given iothread=). vCPU threads never touch the loop; they
 * report the end of the VM through exit_efd. Each thread installs its own
 * seccomp filter (vm_install_seccomp).
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../../common/cleanup.h"
#include "../../common/log.h"
#include "../arch/x86/acpi_tables.h"
#include "../arch/x86/boot.h"
#include "../arch/x86/cpuid.h"
#include "../arch/x86/layout.h"
#include "../arch/x86/regs.h"
#include "../arch/x86/vcpu_state.h"
#include "../hw/acpi_pm.h"
#include "../hw/i8042.h"
#include "../hw/serial8250.h"
#include "../virtio/balloon.h"
#include "../virtio/blk.h"
#include "../virtio/console.h"
#include "../virtio/net.h"
#include "../virtio/rng.h"
#include "../virtio/transport-mmio.h"
#include "../virtio/vsock.h"
#include "bus.h"
#include "chardev.h"
#include "eventloop.h"
#include "guest_mem.h"
#include "hotplug.h"
#include "iothread.h"
#include "seccomp.h"
#include "snapshot.h"
#include "vcpu.h"

#define KVM_API_VERSION_EXPECTED 12
#define VM_CMDLINE_MAX		 4096
#define VM_NO_REASON		 (-1)

struct vm_irq_line {
	struct vm *vm;
	unsigned gsi;
};

struct vm {
	char name[VMM_NAME_MAX + 1];
	struct eventloop *loop;

	/* KVM */
	int kvm_fd;
	int vm_fd;

	/* Memory: one mapping, split around the hole below 4 GiB. */
	uint8_t *ram;
	size_t ram_size;
	int ram_fd; /* memfd (mem-share=on) or -mem-path file; -1: anonymous */
	struct x86_ram_layout ram_layout;
	struct guest_mem mem;

	/* Devices */
	struct bus pio;
	struct bus mmio;
	struct chardev *chardevs[VMM_MAX_CHARDEVS + 1]; /* the -chardevs, then a -serial one */
	unsigned n_chardevs;
	bool buses_ready;	    /* after n_chardevs: fills its padding */
	struct chardev *serial_chr; /* one of chardevs[], or NULL */
	struct serial8250 *serial;
	struct vm_irq_line serial_irq;
	struct i8042 *i8042;
	struct vm_irq_line kbd_irq;
	struct acpi_pm *acpi_pm; /* acpi=on: the sleep registers (poweroff) */
	struct virtio_mmio *virtio[VMM_MICROVM_MAX_MMIO];
	struct virtio_dev *balloon; /* owned by its transport in virtio[]; NULL when none */
	struct acpi_mmio_dev virtio_res[VMM_MICROVM_MAX_MMIO]; /* window and GSI of each */
	unsigned n_virtio;
	struct hotplug *hotplug;	     /* the replaceable slots among virtio[] (hotplug.h) */
	char virtio_cmdline[VM_CMDLINE_MAX]; /* " virtio_mmio.device=..." for each */
	unsigned start_holds;		     /* socket chardevs waiting for their client */

	/* Kernel */
	char cmdline[VM_CMDLINE_MAX];
	struct x86_boot_entry boot_entry;

	/* -object iothread: the loops of the devices given iothread= */
	struct iothread *iothreads[VMM_MAX_IOTHREADS];
	unsigned n_iothreads;
	bool seccomp; /* set by vm_install_seccomp: each thread filters itself */

	/* vCPUs */
	struct vcpus *vcpus;
	uint32_t *msrs; /* the MSRs a snapshot carries (KVM_GET_MSR_INDEX_LIST) */
	size_t n_msrs;
	bool vcpus_started;

	/* Control (main loop thread), except pending_reason (any thread). */
	enum vm_run_state state;
	vm_event_hook hook;
	void *hook_opaque;
	int exit_efd;
	bool exit_efd_watched;
	int pending_reason; /* first vCPU-side end request, or VM_NO_REASON */
	enum vm_shutdown_reason reason;
};

const char *vm_shutdown_reason_name(enum vm_shutdown_reason reason)
{
	switch (reason) {
	case VM_SHUTDOWN_HOST_QMP_QUIT:
		return "host-qmp-quit";
	case VM_SHUTDOWN_HOST_SIGNAL:
		return "host-signal";
	case VM_SHUTDOWN_GUEST_SHUTDOWN:
		return "guest-shutdown";
	case VM_SHUTDOWN_GUEST_RESET:
		return "guest-reset";
	case VM_SHUTDOWN_GUEST_PANIC:
		return "guest-panic";
	case VM_SHUTDOWN_HOST_ERROR:
		return "host-error";
	}
	return "unknown";
}

/* ------------------------------------------------------------------------ */
/* Events and the end of the VM                                               */
/* ------------------------------------------------------------------------ */

static void vm_emit(struct vm *vm, enum vm_event_kind kind, enum vm_shutdown_reason reason,
		    bool guest)
{
	struct vm_event ev = {.kind = kind, .reason = reason, .guest = guest};
	if (vm->hook)
		vm->hook(vm->hook_opaque, &ev);
}

/* Main loop thread: the VM is over; the loop returns after this round. */
static void vm_end(struct vm *vm, enum vm_shutdown_reason reason, bool guest)
{
	if (vm->state == VM_STATE_SHUTDOWN)
		return;
	vm->state = VM_STATE_SHUTDOWN;
	vm->reason = reason;
	log_debug("VM ends: %s", vm_shutdown_reason_name(reason));
	vm_emit(vm, VM_EVENT_SHUTDOWN, reason, guest);
	if (vm->vcpus)
		vcpus_stop(vm->vcpus);
	eventloop_stop(vm->loop);
}

/* Any thread (a vCPU's): the first request wins; the loop acts on it. */
static void vm_request_exit_async(void *opaque, enum vm_shutdown_reason reason)
{
	struct vm *vm = opaque;
	int expected = VM_NO_REASON;
	__atomic_compare_exchange_n(&vm->pending_reason, &expected, (int)reason, false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	uint64_t one = 1;
	ssize_t unused = write(vm->exit_efd, &one, sizeof(one));
	(void)unused;
}

static void vm_exit_efd_ready(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;
	(void)events;
	ssize_t unused = read(vm->exit_efd, &v, sizeof(v));
	(void)unused;
	int reason = __atomic_load_n(&vm->pending_reason, __ATOMIC_SEQ_CST);
	if (reason != VM_NO_REASON)
		vm_end(vm, (enum vm_shutdown_reason)reason, reason != VM_SHUTDOWN_HOST_ERROR);
}

/* The i8042's reset line, on the vCPU thread that wrote the command. */
static void vm_guest_reset(void *opaque)
{
	struct vm *vm = opaque;
	if (vm->vcpus)
		vcpus_stop(vm->vcpus);
	vm_request_exit_async(vm, VM_SHUTDOWN_GUEST_RESET);
}

/* ACPI S5 (acpi=on), on the vCPU thread that wrote SLP_EN. */
static void vm_guest_poweroff(void *opaque)
{
	struct vm *vm = opaque;
	if (vm->vcpus)
		vcpus_stop(vm->vcpus);
	vm_request_exit_async(vm, VM_SHUTDOWN_GUEST_SHUTDOWN);
}

static void vm_set_irq(void *opaque, bool level)
{
	struct vm_irq_line *line = opaque;
	struct kvm_irq_level irq = {.irq = line->gsi, .level = level};
	if (ioctl(line->vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_error("KVM_IRQ_LINE %u: %s", line->gsi, strerror(errno));
}

/* The vCPUs run when nobody paused the VM and no chardev waits for a client. */
static bool vm_vcpus_may_run(const struct vm *vm)
{
	return vm->state == VM_STATE_RUNNING && vm->start_holds == 0;
}

static void vm_chardev_connected(void *opaque)
{
	struct vm *vm = opaque;
	if (vm->start_holds && --vm->start_holds == 0 && vm->vcpus_started && vm_vcpus_may_run(vm))
		vcpus_resume(vm->vcpus);
}

/* ------------------------------------------------------------------------ */
/* vm_control.h                                                               */
/* ------------------------------------------------------------------------ */

void vm_set_event_hook(struct vm *vm, vm_event_hook hook, void *opaque)
{
	vm->hook = hook;
	vm->hook_opaque = opaque;
}

enum vm_run_state vm_get_state(const struct vm *vm)
{
	return vm->state;
}

int vm_pause(struct vm *vm, struct perr *err)
{
	if (vm->state == VM_STATE_SHUTDOWN)
		return perr_setx(err, -EBUSY, "the VM is shutting down");
	if (vm->state == VM_STATE_PAUSED)
		return 0;
	if (vm->vcpus_started)
		vcpus_pause(vm->vcpus);
	vm->state = VM_STATE_PAUSED;
	vm_emit(vm, VM_EVENT_STOP, 0, false);
	return 0;
}

int vm_resume(struct vm *vm, struct perr *err)
{
	if (vm->state == VM_STATE_SHUTDOWN)
		return perr_setx(err, -EBUSY, "the VM is shutting down");
	if (vm->state == VM_STATE_RUNNING)
		return 0;
	vm->state = VM_STATE_RUNNING;
	if (vm->vcpus_started && vm_vcpus_may_run(vm))
		vcpus_resume(vm->vcpus);
	vm_emit(vm, VM_EVENT_RESUME, 0, false);
	return 0;
}

void vm_request_shutdown(struct vm *vm, enum vm_shutdown_reason reason)
{
	bool guest = reason == VM_SHUTDOWN_GUEST_SHUTDOWN || reason == VM_SHUTDOWN_GUEST_RESET ||
		     reason == VM_SHUTDOWN_GUEST_PANIC;
	vm_end(vm, reason, guest);
}

int vm_request_powerdown(struct vm *vm, struct perr *err)
{
	if (vm->state == VM_STATE_SHUTDOWN)
		return perr_setx(err, -EBUSY, "the VM is shutting down");
	vm_emit(vm, VM_EVENT_POWERDOWN, 0, false);
	/* Like an ACPI power button a guest ignores, an unready keyboard is not
	 * an error of the request; it is worth a line in the log. */
	if (!i8042_press_ctrl_alt_del(vm->i8042))
		log_warn("system_powerdown: the guest has not enabled its keyboard; "
			 "Ctrl-Alt-Del not delivered");
	return 0;
}

int vm_request_reset(struct vm *vm, struct perr *err)
{
	if (vm->state == VM_STATE_SHUTDOWN)
		return perr_setx(err, -EBUSY, "the VM is shutting down");
	/* MicroVm has no reset path: a reset ends the VMM, as a guest reboot
	 * does. */
	vm_emit(vm, VM_EVENT_RESET, 0, false);
	vm_end(vm, VM_SHUTDOWN_GUEST_RESET, false);
	return 0;
}

unsigned vm_query_cpus(const struct vm *vm, struct vm_cpu_info *out, unsigned max)
{
	unsigned n = vm->vcpus ? vcpus_count(vm->vcpus) : 0;
	for (unsigned i = 0; i < n && i < max; i++) {
		out[i].cpu_index = i;
		out[i].thread_id = vcpus_tid(vm->vcpus, i);
	}
	return n;
}

const char *vm_name(const struct vm *vm)
{
	return vm->name;
}

int vm_balloon_query(struct vm *vm, struct vm_balloon_info *out)
{
	if (!vm->balloon)
		return -ENODEV;
	out->actual = virtio_balloon_actual_bytes(vm->balloon);
	out->ram_size = virtio_balloon_ram_bytes(vm->balloon);
	return 0;
}

int vm_balloon_set_target(struct vm *vm, uint64_t target_bytes, struct perr *err)
{
	if (!vm->balloon)
		return perr_setx(err, -ENODEV, "No balloon device has been activated");
	return virtio_balloon_set_target(vm->balloon, target_bytes, err);
}

/* ------------------------------------------------------------------------ */
/* Build step 1: KVM                                                          */
/* ------------------------------------------------------------------------ */

static int vm_open_kvm(struct vm *vm, struct perr *err)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return perr_set(err, -errno, "open /dev/kvm");
	int rc;
	int version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION_EXPECTED) {
		rc = perr_setx(err, -ENOTSUP, "/dev/kvm: API version %d; %d is needed", version,
			       KVM_API_VERSION_EXPECTED);
		goto fail;
	}
	static const struct {
		int cap;
		const char *name;
	} caps[] = {
	    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
	    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0) {
			rc =
			    perr_setx(err, -ENOTSUP, "/dev/kvm: %s is not supported", caps[i].name);
			goto fail;
		}
	}
	do {
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	} while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0) {
		rc = perr_set(err, -errno, "KVM_CREATE_VM");
		goto fail;
	}
	/* Intel VMX needs three pages for a real-mode TSS and one for an
	 * identity page table, at addresses the guest never uses as RAM. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)X86_TSS_GPA) < 0) {
		rc = perr_set(err, -errno, "KVM_SET_TSS_ADDR");
		goto fail_vm;
	}
	uint64_t identity = X86_IDENTITY_MAP_GPA;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
		rc = perr_set(err, -errno, "KVM_SET_IDENTITY_MAP_ADDR");
		goto fail_vm;
	}
	return 0;
fail_vm:
	close(vm->vm_fd);
	vm->vm_fd = -1;
fail:
	close(vm->kvm_fd);
	vm->kvm_fd = -1;
	return rc;
}

static void vm_close_kvm(struct vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = -1;
	vm->kvm_fd = -1;
}

/* ------------------------------------------------------------------------ */
/* Build step 2: memory                                                       */
/* ------------------------------------------------------------------------ */

static int vm_add_memslot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
			  struct perr *err)
{
	struct kvm_userspace_memory_region region = {
	    .slot = slot,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return perr_set(err, -errno, "KVM_SET_USER_MEMORY_REGION %#llx+%#llx",
				(unsigned long long)gpa, (unsigned long long)size);
	int rc = guest_mem_add_region(&vm->mem, gpa, size, hva);
	if (rc < 0)
		return perr_set(err, rc, "guest memory region %#llx", (unsigned long long)gpa);
	return 0;
}

static void vm_teardown_memory(struct vm *vm)
{
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	vm->ram = NULL;
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	vm->ram_fd = -1;
	memset(&vm->mem, 0, sizeof(vm->mem));
}

/* "2 MiB", "1 GiB", "64 KiB", "1536 KiB": for messages about sizes. */
static void vm_size_str(uint64_t bytes, char *buf, size_t size)
{
	if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
		snprintf(buf, size, "%llu GiB", (unsigned long long)(bytes >> 30));
	else if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0)
		snprintf(buf, size, "%llu MiB", (unsigned long long)(bytes >> 20));
	else if (bytes % 1024 == 0)
		snprintf(buf, size, "%llu KiB", (unsigned long long)(bytes >> 10));
	else
		snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
}

/* Huge pages of this size that a new mapping can still get (free minus
 * reserved), or -1 when sysfs does not say. */
static long vm_hugepages_available(uint64_t page_size)
{
	long counts[2] = {-1, -1};
	static const char *const files[2] = {"free_hugepages", "resv_hugepages"};
	for (int i = 0; i < 2; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/%s",
			 (unsigned long long)(page_size >> 10), files[i]);
		FILE *f = fopen(path, "re");
		if (!f)
			return -1;
		char line[32], *end;
		if (fgets(line, sizeof(line), f)) {
			errno = 0;
			counts[i] = strtol(line, &end, 10);
			if (errno || end == line)
				counts[i] = -1;
		}
		fclose(f);
		if (counts[i] < 0)
			return -1;
	}
	return counts[0] > counts[1] ? counts[0] - counts[1] : 0;
}

/* An unlinked file in dir: O_TMPFILE, or a named one removed at once on file
 * systems without it. Nothing is left in dir, also on failure. */
static int vm_open_unlinked(const char *dir, struct perr *err)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return perr_set(err, -errno, "-mem-path %s", dir);
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/petrel-ram.XXXXXX", dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return perr_setx(err, -ENAMETOOLONG, "-mem-path %s: path too long", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "-mem-path %s", dir);
	unlink(path);
	return fd;
}

/*
 * -mem-path DIR: guest RAM in a file on the hugetlbfs mounted at DIR. Its huge
 * pages are all allocated here, before the VM starts, so that a host short
 * of them refuses to start with a clear message instead of a guest killed
 * by SIGBUS when it first touches a page that cannot be backed.
 */
static int vm_map_hugetlbfs(struct vm *vm, const char *dir, struct perr *err)
{
	struct statfs sfs;
	if (statfs(dir, &sfs) < 0)
		return perr_set(err, -errno, "-mem-path %s", dir);
	if (sfs.f_type != HUGETLBFS_MAGIC)
		return perr_setx(err, -EINVAL,
				 "-mem-path %s: not a hugetlbfs mount (mount -t hugetlbfs none %s)",
				 dir, dir);
	uint64_t page = (uint64_t)sfs.f_bsize;
	char page_str[32], mem_str[32];
	vm_size_str(page, page_str, sizeof(page_str));
	vm_size_str(vm->ram_size, mem_str, sizeof(mem_str));
	if (page == 0 || vm->ram_size % page)
		return perr_setx(err, -EINVAL,
				 "-mem-path %s: -m %s is not a multiple of the huge page size (%s)",
				 dir, mem_str, page_str);
	int fd = vm_open_unlinked(dir, err);
	if (fd < 0)
		return fd;
	/* Counted before: a failed fallocate holds what it got until the close. */
	long avail = vm_hugepages_available(page);
	int rc;
	do
		rc = fallocate(fd, 0, 0, (off_t)vm->ram_size);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		rc = -errno;
		unsigned long long need = vm->ram_size / page;
		if (rc == -ENOSPC && avail >= 0)
			perr_setx(err, rc,
				  "-mem-path %s: %s needs %llu huge pages of %s, %ld are free", dir,
				  mem_str, need, page_str, avail);
		else if (rc == -ENOSPC)
			perr_setx(err, rc,
				  "-mem-path %s: %s needs %llu huge pages of %s; too few are free",
				  dir, mem_str, need, page_str);
		else
			perr_set(err, rc, "-mem-path %s: allocating %s", dir, mem_str);
		close(fd);
		return rc;
	}
	void *ram =
	    mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (ram == MAP_FAILED) {
		rc = perr_set(err, -errno, "-mem-path %s: mapping %s", dir, mem_str);
		close(fd);
		return rc;
	}
	vm->ram = ram;
	vm->ram_fd = fd;
	return 0;
}

/* mem-share=on: a memfd, so that another process (a vhost-user backend) can
 * map the same pages through vm->ram_fd. */
static int vm_map_memfd(struct vm *vm, struct perr *err)
{
	int fd = memfd_create("petrel-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "mem-share=on: memfd_create");
	if (ftruncate(fd, (off_t)vm->ram_size) < 0) {
		int rc = perr_set(err, -errno, "mem-share=on: sizing guest RAM");
		close(fd);
		return rc;
	}
	/* NORESERVE: RAM is committed when the guest touches it. */
	void *ram =
	    mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (ram == MAP_FAILED) {
		int rc = perr_set(err, -errno, "-m: mapping %llu MiB of guest RAM",
				  (unsigned long long)(vm->ram_size >> 20));
		close(fd);
		return rc;
	}
	vm->ram = ram;
	vm->ram_fd = fd;
	return 0;
}

static int vm_map_anonymous(struct vm *vm, struct perr *err)
{
	/* NORESERVE: RAM is committed when the guest touches it. 2 MiB-aligned
	 * and THP-advised, so that KVM maps guest RAM with 2 MiB pages: one
	 * stage-2 fault per 2 MiB instead of 512, a large share of boot time
	 * when exits are dear (nested). */
	const size_t align = 2u << 20;
	uint8_t *area = mmap(NULL, vm->ram_size + align, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED)
		return perr_set(err, -errno, "-m: mapping %llu MiB of guest RAM",
				(unsigned long long)(vm->ram_size >> 20));
	uint8_t *ram = (uint8_t *)(((uintptr_t)area + align - 1) & ~(uintptr_t)(align - 1));
	if (ram > area)
		munmap(area, (size_t)(ram - area));
	munmap(ram + vm->ram_size, (size_t)(area + align - ram));
	if (madvise(ram, vm->ram_size, MADV_HUGEPAGE) < 0)
		log_debug("guest RAM: MADV_HUGEPAGE: %s", strerror(errno));
	vm->ram = ram;
	return 0;
}

/* Guest RAM in a core dump is large and holds the guest's secrets. */
static void vm_advise_dump(struct vm *vm, const struct vmm_config *cfg)
{
	if (!cfg->dump_guest_core && madvise(vm->ram, vm->ram_size, MADV_DONTDUMP) < 0)
		log_warn("dump-guest-core=off: madvise: %s", strerror(errno));
}

static int vm_setup_memory(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	x86_ram_split(cfg->mem_bytes, &vm->ram_layout);
	vm->ram_size = cfg->mem_bytes;
	vm->ram_fd = -1;
	int rc;
	if (cfg->mem_path[0])
		rc = vm_map_hugetlbfs(vm, cfg->mem_path, err);
	else if (cfg->mem_share)
		rc = vm_map_memfd(vm, err);
	else
		rc = vm_map_anonymous(vm, err);
	if (rc < 0)
		return rc;
	vm_advise_dump(vm, cfg);

	rc = vm_add_memslot(vm, 0, 0, vm->ram_layout.low_size, vm->ram, err);
	if (rc == 0 && vm->ram_layout.high_size)
		rc = vm_add_memslot(vm, 1, X86_HIGH_RAM_GPA, vm->ram_layout.high_size,
				    vm->ram + vm->ram_layout.low_size, err);
	if (rc < 0) {
		vm_teardown_memory(vm);
		return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Build step 3: interrupt controllers and timer                              */
/* ------------------------------------------------------------------------ */

static int vm_setup_irqchip(struct vm *vm, struct perr *err)
{
	/* PIC, IOAPIC and (per vCPU) LAPIC in KVM; KVM's default GSI routing
	 * wires GSI n to IOAPIC pin n, which is what the MP table says. */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return perr_set(err, -errno, "KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return perr_set(err, -errno, "KVM_CREATE_PIT2");
	/* Both live as long as the VM fd: nothing to undo here. */
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Build step 4: iothreads                                                    */
/* ------------------------------------------------------------------------ */

/* Their loops exist before the devices that add fds to them; their threads
 * start with the vCPUs' (vm_start_threads), so that only the building thread
 * touches a loop while devices are attached. */
static int vm_create_iothreads(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	for (unsigned i = 0; i < cfg->n_iothreads; i++) {
		int rc = iothread_create(cfg->iothreads[i].id, &vm->iothreads[i], err);
		if (rc < 0)
			return rc;
		vm->n_iothreads = i + 1;
	}
	return 0;
}

/* Stops and joins the threads; their loops stay until the devices are gone. */
static void vm_stop_iothreads(struct vm *vm)
{
	for (unsigned i = 0; i < vm->n_iothreads; i++)
		iothread_stop(vm->iothreads[i]);
}

static void vm_destroy_iothreads(struct vm *vm)
{
	while (vm->n_iothreads)
		iothread_destroy(vm->iothreads[--vm->n_iothreads]);
}

/* ------------------------------------------------------------------------ */
/* Build step 5: devices                                                      */
/* ------------------------------------------------------------------------ */

static void vm_remove_devices(struct vm *vm)
{
	vm->balloon = NULL;
	while (vm->n_virtio)
		virtio_mmio_detach(vm->virtio[--vm->n_virtio]);
	hotplug_destroy(vm->hotplug);
	vm->hotplug = NULL;
	acpi_pm_destroy(vm->acpi_pm);
	vm->acpi_pm = NULL;
	i8042_destroy(vm->i8042);
	vm->i8042 = NULL;
	serial8250_destroy(vm->serial);
	vm->serial = NULL;
	while (vm->n_chardevs)
		chardev_destroy(vm->chardevs[--vm->n_chardevs]);
	vm->serial_chr = NULL;
	if (vm->exit_efd_watched)
		eventloop_remove(vm->loop, vm->exit_efd);
	vm->exit_efd_watched = false;
	if (vm->exit_efd >= 0)
		close(vm->exit_efd);
	vm->exit_efd = -1;
	if (vm->buses_ready) {
		bus_destroy(&vm->mmio);
		bus_destroy(&vm->pio);
	}
	vm->buses_ready = false;
}

/* The loop of the iothread named id, or NULL (the main loop) for "". The
 * parser has checked that the iothread exists. */
static struct eventloop *vm_iothread_loop(struct vm *vm, const char *id)
{
	for (unsigned i = 0; id[0] && i < vm->n_iothreads; i++)
		if (strcmp(iothread_id(vm->iothreads[i]), id) == 0)
			return iothread_loop(vm->iothreads[i]);
	return NULL;
}

/* what: the option as errors name it ("-chardev con0", "-serial"). */
static int vm_add_chardev(struct vm *vm, const struct vmm_chardev *cfg, const char *label,
			  const char *what, struct perr *err)
{
	struct chardev *chr;
	int rc = chardev_create(cfg, label, vm->loop, &chr, err);
	if (rc < 0)
		return perr_wrap(err, "%s", what);
	vm->chardevs[vm->n_chardevs++] = chr;
	if (chardev_waiting_for_client(chr)) {
		vm->start_holds++;
		chardev_set_connect_hook(chr, vm_chardev_connected, vm);
	}
	return 0;
}

static int vm_add_serial(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	int rc;
	struct vmm_chardev shorthand = {.backend = VMM_CHARDEV_STDIO};
	switch (cfg->serial) {
	case VMM_SERIAL_NONE:
		break;
	case VMM_SERIAL_CHARDEV:
		for (unsigned i = 0; i < cfg->n_chardevs; i++)
			if (strcmp(cfg->chardevs[i].id, cfg->serial_chardev) == 0)
				vm->serial_chr = vm->chardevs[i];
		break;
	case VMM_SERIAL_STDIO:
	case VMM_SERIAL_PTY:
	case VMM_SERIAL_FILE:
		if (cfg->serial == VMM_SERIAL_PTY)
			shorthand.backend = VMM_CHARDEV_PTY;
		else if (cfg->serial == VMM_SERIAL_FILE)
			shorthand.backend = VMM_CHARDEV_FILE;
		snprintf(shorthand.id, sizeof(shorthand.id), "serial0");
		snprintf(shorthand.path, sizeof(shorthand.path), "%s", cfg->serial_path);
		rc = vm_add_chardev(vm, &shorthand, "serial0", "-serial", err);
		if (rc < 0)
			return rc;
		vm->serial_chr = vm->chardevs[vm->n_chardevs - 1];
		break;
	}
	/* COM1 exists even without -serial (output discarded), as on a PC:
	 * a console=ttyS0 guest must not wait on a missing port. */
	vm->serial_irq = (struct vm_irq_line){vm, X86_IRQ_COM1};
	struct serial8250_config sc = {
	    .pio = &vm->pio,
	    .base = SERIAL8250_COM1_BASE,
	    .chr = vm->serial_chr,
	    .set_irq = vm_set_irq,
	    .irq_opaque = &vm->serial_irq,
	};
	return serial8250_create(&sc, &vm->serial, err);
}

/*
 * Places one virtio device in the next MMIO slot: window, interrupt line and,
 * without ACPI, its virtio_mmio.device= entry. Takes ownership of dev, also on
 * failure. loop: where its queues are processed (the main loop or an
 * iothread's). what: the option as errors name it ("-device vsock0").
 */
static int vm_attach_virtio(struct vm *vm, const struct vmm_config *cfg, struct virtio_dev *dev,
			    struct eventloop *loop, const char *what, struct perr *err)
{
	if (vm->n_virtio >= VMM_MICROVM_MAX_MMIO) {
		if (dev)
			dev->ops->destroy(dev);
		return perr_setx(err, -ENOSPC, "%s: at most %d MMIO devices", what,
				 VMM_MICROVM_MAX_MMIO);
	}
	struct virtio_mmio_host host = {
	    .mem = &vm->mem,
	    .mmio_bus = &vm->mmio,
	    .loop = loop ? loop : vm->loop,
	    .vm_fd = vm->vm_fd,
	    .base = X86_VIRTIO_MMIO_BASE + (uint64_t)vm->n_virtio * VIRTIO_MMIO_SIZE,
	    .gsi = X86_VIRTIO_MMIO_FIRST_GSI + vm->n_virtio,
	    /* dev NULL: an empty replaceable slot (hotplug.h). */
	    .unplugged = dev ? NULL : hotplug_slot_unplugged,
	    .unplug_opaque = dev ? NULL : vm->hotplug,
	};
	struct virtio_mmio *t;
	int rc = virtio_mmio_attach(&host, dev, &t, err);
	if (rc < 0)
		return perr_wrap(err, "%s", what);
	vm->virtio_res[vm->n_virtio] =
	    (struct acpi_mmio_dev){host.base, VIRTIO_MMIO_SIZE, host.gsi};
	vm->virtio[vm->n_virtio++] = t;
	/* Without ACPI, Linux finds virtio-mmio devices on x86 only through
	 * these parameters; with it, the DSDT lists them. */
	if (cfg->acpi)
		return 0;
	size_t off = strlen(vm->virtio_cmdline);
	int n = snprintf(vm->virtio_cmdline + off, sizeof(vm->virtio_cmdline) - off,
			 " virtio_mmio.device=%u@%#llx:%u", (unsigned)VIRTIO_MMIO_SIZE,
			 (unsigned long long)host.base, host.gsi);
	if (n < 0 || (size_t)n >= sizeof(vm->virtio_cmdline) - off)
		return perr_setx(err, -E2BIG, "kernel command line: too many devices");
	return 0;
}

static int vm_add_virtio_blks(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	for (unsigned i = 0; i < cfg->n_blks; i++) {
		const struct vmm_blk_device *blk = &cfg->blks[i];
		const struct vmm_drive *drive = vmm_config_find_drive(cfg, blk->drive);
		if (!drive)
			return perr_setx(err, -EINVAL, "-device %s: drive '%s' does not exist",
					 blk->id, blk->drive);
		struct virtio_dev *dev;
		int rc = virtio_blk_create(drive, blk, &dev, err);
		if (rc < 0)
			return rc;
		char what[VMM_ID_MAX + 16];
		snprintf(what, sizeof(what), "-device %s", blk->id);
		rc = vm_attach_virtio(vm, cfg, dev, vm_iothread_loop(vm, blk->iothread), what, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* -device virtio-net-device: one NIC per tap (-netdev). */
static int vm_add_virtio_nets(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	for (unsigned i = 0; i < cfg->n_nets; i++) {
		const struct vmm_net_device *net = &cfg->nets[i];
		const struct vmm_netdev *netdev = vmm_config_find_netdev(cfg, net->netdev);
		if (!netdev)
			return perr_setx(err, -EINVAL, "-device %s: netdev '%s' does not exist",
					 net->id, net->netdev);
		struct virtio_dev *dev;
		int rc = virtio_net_create(netdev, net, cfg->name, &dev, err);
		if (rc < 0)
			return rc;
		char what[VMM_ID_MAX + 16];
		snprintf(what, sizeof(what), "-device %s", net->id);
		rc = vm_attach_virtio(vm, cfg, dev, vm_iothread_loop(vm, net->iothread), what, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* -device virtconsole: hvc0 on the chardev it names. */
static int vm_add_virtio_console(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	const struct vmm_virtio_serial *ser = &cfg->virtio_serial;
	if (!ser->console_present)
		return 0;
	char what[VMM_ID_MAX + 16];
	snprintf(what, sizeof(what), "-device %s", ser->console_id);
	/* The -chardevs come first in vm->chardevs[], in config order. */
	struct chardev *chr = NULL;
	for (unsigned i = 0; i < cfg->n_chardevs && i < vm->n_chardevs; i++)
		if (strcmp(cfg->chardevs[i].id, ser->console_chardev) == 0)
			chr = vm->chardevs[i];
	if (!chr)
		return perr_setx(err, -EINVAL, "%s: chardev '%s' does not exist", what,
				 ser->console_chardev);
	struct virtio_dev *dev;
	int rc = virtio_console_create(ser, chr, &dev, err);
	if (rc < 0)
		return perr_wrap(err, "%s", what);
	return vm_attach_virtio(vm, cfg, dev, NULL, what, err);
}

static int vm_add_virtio_rng(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	if (!cfg->rng.present)
		return 0;
	char what[VMM_ID_MAX + 16];
	snprintf(what, sizeof(what), "-device %s", cfg->rng.id[0] ? cfg->rng.id : "virtio-rng");
	struct virtio_dev *dev;
	int rc = virtio_rng_create(&cfg->rng, &dev, err);
	if (rc < 0)
		return rc;
	return vm_attach_virtio(vm, cfg, dev, NULL, what, err);
}

/* The guest changed the balloon's size: BALLOON_CHANGED (main loop thread). */
static void vm_balloon_changed(void *opaque, uint64_t actual_bytes)
{
	struct vm *vm = opaque;
	struct vm_event ev = {.kind = VM_EVENT_BALLOON_CHANGE, .balloon_actual = actual_bytes};
	if (vm->hook)
		vm->hook(vm->hook_opaque, &ev);
}

static int vm_add_virtio_balloon(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	if (!cfg->balloon.present)
		return 0;
	char what[VMM_ID_MAX + 32];
	snprintf(what, sizeof(what), "-device %s",
		 cfg->balloon.id[0] ? cfg->balloon.id : "virtio-balloon-device");
	struct virtio_dev *dev;
	int rc = virtio_balloon_create(&cfg->balloon, vm->ram_size, &dev, err);
	if (rc < 0)
		return rc;
	virtio_balloon_set_change_hook(dev, vm_balloon_changed, vm);
	/* The main loop: the change hook emits QMP events there. */
	rc = vm_attach_virtio(vm, cfg, dev, NULL, what, err);
	if (rc < 0)
		return rc;
	vm->balloon = dev;
	return 0;
}

/* -device vhost-vsock-device: vhost-vsock, or the built-in hybrid device (vsock.h). */
static int vm_add_virtio_vsock(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	if (!cfg->vsock.present)
		return 0;
	char what[VMM_ID_MAX + 16];
	snprintf(what, sizeof(what), "-device %s", cfg->vsock.id[0] ? cfg->vsock.id : "vsock0");
	struct virtio_dev *dev;
	int rc = virtio_vsock_create(&cfg->vsock, &dev, err);
	if (rc < 0)
		return perr_wrap(err, "%s", what);
	return vm_attach_virtio(vm, cfg, dev, NULL, what, err);
}

/* A hot-plugged device left its slot (main loop): DEVICE_DELETED. */
static void vm_device_deleted(void *opaque, const char *id)
{
	struct vm *vm = opaque;
	struct vm_event ev = {.kind = VM_EVENT_DEVICE_DELETED, .device_id = id};
	if (vm->hook)
		vm->hook(vm->hook_opaque, &ev);
}

/* After every boot-time device, so that hot plug changes no boot device's
 * slot: the blk slots, then the net slots (hotplug_slot_counts()). */
static int vm_add_hotplug_slots(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	struct hotplug_host hh = {
	    .vm_name = cfg->name,
	    .device_deleted = vm_device_deleted,
	    .opaque = vm,
	};
	int rc = hotplug_create(cfg, &hh, &vm->hotplug, err);
	if (rc < 0)
		return rc;
	unsigned counts[2];
	hotplug_slot_counts(cfg, &counts[HOTPLUG_BLK], &counts[HOTPLUG_NET]);
	for (enum hotplug_kind kind = HOTPLUG_BLK; kind <= HOTPLUG_NET; kind++) {
		for (unsigned i = 0; i < counts[kind]; i++) {
			rc = vm_attach_virtio(vm, cfg, NULL, NULL, "hotplug slot", err);
			if (rc < 0)
				return rc;
			rc = hotplug_add_slot(vm->hotplug, kind, vm->virtio[vm->n_virtio - 1], err);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

struct hotplug *vm_hotplug(struct vm *vm)
{
	return vm->hotplug;
}

static int vm_add_devices(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	bus_init(&vm->pio);
	bus_init(&vm->mmio);
	vm->buses_ready = true;

	int rc;
	vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_efd < 0) {
		rc = perr_set(err, -errno, "eventfd");
		goto fail;
	}
	rc = eventloop_add(vm->loop, vm->exit_efd, EPOLLIN, vm_exit_efd_ready, vm);
	if (rc < 0) {
		perr_set(err, rc, "event loop");
		goto fail;
	}
	vm->exit_efd_watched = true;

	for (unsigned i = 0; i < cfg->n_chardevs; i++) {
		char what[VMM_ID_MAX + 16];
		snprintf(what, sizeof(what), "-chardev %s", cfg->chardevs[i].id);
		rc = vm_add_chardev(vm, &cfg->chardevs[i], cfg->chardevs[i].id, what, err);
		if (rc < 0)
			goto fail;
	}
	rc = vm_add_serial(vm, cfg, err);
	if (rc < 0)
		goto fail;

	vm->kbd_irq = (struct vm_irq_line){vm, X86_IRQ_KEYBOARD};
	struct i8042_config kc = {
	    .pio = &vm->pio,
	    .set_irq = vm_set_irq,
	    .irq_opaque = &vm->kbd_irq,
	    .reset = vm_guest_reset,
	    .reset_opaque = vm,
	};
	rc = i8042_create(&kc, &vm->i8042, err);
	if (rc < 0)
		goto fail;

	if (cfg->acpi) {
		rc = acpi_pm_create(&vm->pio, ACPI_PM_SLEEP_CTL_PORT, ACPI_PM_SLEEP_STS_PORT,
				    vm_guest_poweroff, vm, &vm->acpi_pm, err);
		if (rc < 0)
			goto fail;
	}

	/* Each device kind in a fixed order, so slots (and the guest's device
	 * names) do not depend on the order of the options. */
	vm->virtio_cmdline[0] = '\0';
	rc = vm_add_virtio_blks(vm, cfg, err);
	if (rc < 0)
		goto fail;
	rc = vm_add_virtio_nets(vm, cfg, err);
	if (rc < 0)
		goto fail;
	rc = vm_add_virtio_console(vm, cfg, err);
	if (rc < 0)
		goto fail;
	rc = vm_add_virtio_rng(vm, cfg, err);
	if (rc < 0)
		goto fail;
	rc = vm_add_virtio_balloon(vm, cfg, err);
	if (rc < 0)
		goto fail;
	rc = vm_add_virtio_vsock(vm, cfg, err);
	if (rc < 0)
		goto fail;
	rc = vm_add_hotplug_slots(vm, cfg, err);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	vm_remove_devices(vm);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Build step 6: kernel                                                       */
/* ------------------------------------------------------------------------ */

static int vm_make_cmdline(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	/* The user's -append first, then what the machine adds. */
	const char *added = vm->virtio_cmdline;
	if (!cfg->append[0] && added[0] == ' ')
		added++;
	int n = snprintf(vm->cmdline, sizeof(vm->cmdline), "%s%s", cfg->append, added);
	if (n < 0 || (size_t)n >= sizeof(vm->cmdline))
		return perr_setx(err, -E2BIG, "-append: the kernel command line is too long");
	return 0;
}

static int vm_load_kernel(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	int n = vm_make_cmdline(vm, cfg, err);
	if (n < 0)
		return n;

	uint64_t rsdp = 0;
	if (cfg->acpi) {
		struct acpi_config acfg = {
		    .ncpus = cfg->cpus,
		    .virtio = vm->virtio_res,
		    .n_virtio = vm->n_virtio,
		    .pm_sleep_ctl_port = ACPI_PM_SLEEP_CTL_PORT,
		    .pm_sleep_sts_port = ACPI_PM_SLEEP_STS_PORT,
		    .has_serial = true,
		    .has_i8042 = true,
		    .has_cmos_rtc = false,
		};
		int rc =
		    acpi_build_tables(&vm->mem, X86_ACPI_GPA, X86_ACPI_AREA, &acfg, &rsdp, err);
		if (rc < 0)
			return perr_wrap(err, "ACPI tables");
	}

	struct x86_boot_config bc = {
	    .rsdp_gpa = rsdp,
	    .kernel = cfg->kernel,
	    .initrd = cfg->initrd,
	    .cmdline = vm->cmdline,
	    .ncpus = cfg->cpus,
	    .ram = vm->ram_layout,
	};
	struct x86_boot_result res;
	int rc = x86_boot_setup(&vm->mem, &bc, &res, err);
	if (rc < 0)
		return rc;
	vm->boot_entry = res.entry;
	log_debug("kernel: %s %s, entry %#llx (%s)", x86_kernel_format_name(res.format),
		  cfg->kernel, (unsigned long long)res.entry.rip,
		  res.entry.mode == X86_ENTRY_PVH32 ? "PVH 32-bit" : "64-bit");
	/* Guest memory holds the kernel now; it goes with the memory. */
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Build step 7: vCPUs                                                        */
/* ------------------------------------------------------------------------ */

/* vcpu_host.thread_setup: the vCPU's own filter, before its first KVM_RUN. */
static int vm_vcpu_thread_setup(void *opaque, unsigned index, int vcpu_fd, struct perr *err)
{
	struct vm *vm = opaque;
	(void)index;
	if (!vm->seccomp)
		return 0;
	struct seccomp_params p = {.vm_fd = vm->vm_fd, .vcpu_fd = vcpu_fd};
	int rc = seccomp_install(SECCOMP_CLASS_VCPU, &p, err);
	if (rc == 0)
		seccomp_selftest(SECCOMP_CLASS_VCPU);
	return rc;
}

/* iothread_setup_fn: the iothread's own filter, before its loop runs. */
static int vm_iothread_setup(void *opaque, struct perr *err)
{
	struct vm *vm = opaque;
	if (!vm->seccomp)
		return 0;
	struct seccomp_params p = {.vm_fd = vm->vm_fd, .vcpu_fd = -1};
	int rc = seccomp_install(SECCOMP_CLASS_IOTHREAD, &p, err);
	if (rc == 0)
		seccomp_selftest(SECCOMP_CLASS_IOTHREAD);
	return rc;
}

static int vm_setup_vcpu(struct vm *vm, const struct kvm_cpuid2 *supported, unsigned i,
			 unsigned ncpus, bool cfg_incoming, struct perr *err)
{
	int fd = vcpus_fd(vm->vcpus, i);
	struct kvm_cpuid2 *cpuid;
	int rc = x86_cpuid_for_vcpu(supported, i, ncpus, &cpuid, err);
	if (rc < 0)
		return rc;
	if (ioctl(fd, KVM_SET_CPUID2, cpuid) < 0)
		rc = perr_set(err, -errno, "KVM_SET_CPUID2");
	free(cpuid);
	if (rc < 0)
		return rc;
	rc = x86_vcpu_set_msrs(fd, err);
	if (rc < 0)
		return rc;
	rc = x86_vcpu_set_lapic_lints(fd, err);
	if (rc < 0)
		return rc;
	/* A restored vCPU gets its state from the snapshot (vm_restore). */
	if (cfg_incoming)
		return 0;
	/* The APs wait for INIT/SIPI in KVM's LAPIC; only the BSP starts here. */
	if (i == 0)
		return x86_vcpu_set_boot_state(fd, &vm->boot_entry, err);
	return 0;
}

static int vm_create_vcpus(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	struct kvm_cpuid2 *supported;
	int rc = x86_cpuid_get_supported(vm->kvm_fd, &supported, err);
	if (rc < 0)
		return rc;
	struct vcpu_host host = {
	    .pio = &vm->pio,
	    .mmio = &vm->mmio,
	    .request_exit = vm_request_exit_async,
	    .thread_setup = vm_vcpu_thread_setup,
	    .opaque = vm,
	};
	rc = vcpus_create(vm->kvm_fd, vm->vm_fd, cfg->cpus, &host, &vm->vcpus, err);
	for (unsigned i = 0; rc == 0 && i < cfg->cpus; i++) {
		rc = vm_setup_vcpu(vm, supported, i, cfg->cpus, cfg->incoming[0] != '\0', err);
		if (rc < 0)
			perr_wrap(err, "vCPU %u", i);
	}
	free(supported);
	if (rc < 0) {
		vcpus_destroy(vm->vcpus);
		vm->vcpus = NULL;
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Snapshots (core/snapshot.h): QMP migrate to file:DIR, -incoming file:DIR    */
/* ------------------------------------------------------------------------ */

#define VM_SAVED_MAGIC 0x4d564d50u /* "PMVM" */

/* What must match between a snapshot and the command line restoring it. */
struct vm_saved_machine {
	uint32_t magic;
	uint32_t cpus;
	uint64_t mem_bytes;
	uint32_t n_virtio;
	uint32_t has_serial;
};

/* At build time: the main thread's seccomp filter has no /dev/kvm ioctls. A
 * host without the list runs VMs but cannot snapshot them. */
static void vm_list_msrs(struct vm *vm)
{
	struct perr err;
	if (x86_msr_index_list(vm->kvm_fd, &vm->msrs, &vm->n_msrs, &err) < 0) {
		log_debug("snapshots unavailable: %s", err.msg);
		vm->msrs = NULL;
		vm->n_msrs = 0;
	}
}

static void vm_section_name(char *out, size_t size, const char *kind, unsigned i)
{
	snprintf(out, size, "%s%u", kind, i);
}

static int vm_save_sections(struct vm *vm, struct snapshot_writer *w, struct perr *err)
{
	struct vm_saved_machine m = {
	    .magic = VM_SAVED_MAGIC,
	    .cpus = vcpus_count(vm->vcpus),
	    .mem_bytes = vm->ram_size,
	    .n_virtio = vm->n_virtio,
	    .has_serial = vm->serial != NULL,
	};
	snapshot_writer_add(w, "machine", &m, sizeof(m));
	void *blob = NULL;
	size_t len = 0;
	int rc = x86_vm_state_save(vm->vm_fd, &blob, &len, err);
	if (rc < 0)
		return rc;
	snapshot_writer_add(w, "vm", blob, len);
	free(blob);
	char name[SNAPSHOT_SECTION_NAME_MAX];
	for (unsigned i = 0; i < m.cpus; i++) {
		rc = x86_vcpu_state_save(vcpus_fd(vm->vcpus, i), vm->msrs, vm->n_msrs, &blob, &len,
					 err);
		if (rc < 0)
			return perr_wrap(err, "vCPU %u", i);
		vm_section_name(name, sizeof(name), "cpu", i);
		snapshot_writer_add(w, name, blob, len);
		free(blob);
	}
	if (vm->serial) {
		struct serial8250_state s;
		serial8250_save(vm->serial, &s);
		snapshot_writer_add(w, "serial", &s, sizeof(s));
	}
	struct i8042_state k;
	i8042_save(vm->i8042, &k);
	snapshot_writer_add(w, "i8042", &k, sizeof(k));
	for (unsigned i = 0; i < vm->n_virtio; i++) {
		rc = virtio_mmio_save(vm->virtio[i], &blob, &len, err);
		if (rc < 0)
			return rc;
		vm_section_name(name, sizeof(name), "virtio", i);
		snapshot_writer_add(w, name, blob, len);
		free(blob);
	}
	return 0;
}

int vm_snapshot_save(struct vm *vm, const char *dir, struct perr *err)
{
	if (vm->state != VM_STATE_PAUSED)
		return perr_setx(err, -EBUSY, "the VM must be paused first (QMP stop)");
	if (!vm->n_msrs)
		return perr_setx(err, -ENOTSUP, "this host's KVM has no MSR list to save");
	if (vm->ram_fd >= 0)
		log_debug("snapshot of file-backed RAM: its contents are copied too");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return perr_set(err, -errno, "%s", dir);
	autoclose int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return perr_set(err, -errno, "%s", dir);
	struct snapshot_writer w = {0};
	int rc = vm_save_sections(vm, &w, err);
	if (rc < 0) {
		snapshot_writer_free(&w);
		return rc;
	}
	/* The state last: a directory with a state file has all of its memory. */
	unlinkat(dirfd, SNAPSHOT_STATE_FILE, 0);
	rc = snapshot_memory_save(dirfd, vm->ram, vm->ram_size, err);
	if (rc < 0) {
		snapshot_writer_free(&w);
		return perr_wrap(err, "%s", dir);
	}
	rc = snapshot_writer_finish(&w, dirfd, err);
	return rc < 0 ? perr_wrap(err, "%s", dir) : 0;
}

static int vm_find_blob(const struct snapshot_reader *r, const char *name, const void **data,
			size_t *len, struct perr *err)
{
	if (snapshot_reader_find(r, name, data, len) < 0)
		return perr_setx(err, -EINVAL, "the snapshot has no section '%s'", name);
	return 0;
}

/* A section holding exactly one struct of size bytes, copied to out. */
static int vm_find_sized(const struct snapshot_reader *r, const char *name, void *out, size_t size,
			 struct perr *err)
{
	const void *data;
	size_t len;
	int rc = vm_find_blob(r, name, &data, &len, err);
	if (rc < 0)
		return rc;
	if (len != size)
		return perr_setx(err, -EINVAL, "section '%s': %zu bytes, expected %zu", name, len,
				 size);
	memcpy(out, data, size);
	return 0;
}

static int vm_restore_check_machine(struct vm *vm, const struct snapshot_reader *r,
				    struct perr *err)
{
	struct vm_saved_machine m = {0};
	int rc = vm_find_sized(r, "machine", &m, sizeof(m), err);
	if (rc < 0)
		return rc;
	unsigned cpus = vcpus_count(vm->vcpus);
	if (m.magic != VM_SAVED_MAGIC || m.cpus != cpus || m.mem_bytes != vm->ram_size ||
	    m.n_virtio != vm->n_virtio || m.has_serial != (vm->serial != NULL))
		return perr_setx(
		    err, -EINVAL,
		    "the snapshot is of another machine: %u vCPUs, %llu MiB, %u virtio "
		    "devices, serial %s; this command line: %u vCPUs, %llu MiB, %u "
		    "virtio devices, serial %s",
		    m.cpus, (unsigned long long)(m.mem_bytes >> 20), m.n_virtio,
		    m.has_serial ? "on" : "off", cpus, (unsigned long long)(vm->ram_size >> 20),
		    vm->n_virtio, vm->serial ? "on" : "off");
	return 0;
}

static int vm_restore_sections(struct vm *vm, const struct snapshot_reader *r, struct perr *err)
{
	unsigned cpus = vcpus_count(vm->vcpus);
	int rc;
	const void *blob;
	size_t len;
	char name[SNAPSHOT_SECTION_NAME_MAX];
	for (unsigned i = 0; i < cpus; i++) {
		vm_section_name(name, sizeof(name), "cpu", i);
		if (vm_find_blob(r, name, &blob, &len, err) < 0 ||
		    x86_vcpu_state_restore(vcpus_fd(vm->vcpus, i), blob, len, err) < 0)
			return perr_wrap(err, "vCPU %u", i);
	}
	if ((rc = vm_find_blob(r, "vm", &blob, &len, err)) < 0 ||
	    (rc = x86_vm_state_restore(vm->vm_fd, blob, len, err)) < 0)
		return rc;
	if (vm->serial) {
		struct serial8250_state s;
		if ((rc = vm_find_sized(r, "serial", &s, sizeof(s), err)) < 0)
			return rc;
		serial8250_restore(vm->serial, &s);
	}
	struct i8042_state k;
	if ((rc = vm_find_sized(r, "i8042", &k, sizeof(k), err)) < 0)
		return rc;
	i8042_restore(vm->i8042, &k);
	for (unsigned i = 0; i < vm->n_virtio; i++) {
		vm_section_name(name, sizeof(name), "virtio", i);
		if (vm_find_blob(r, name, &blob, &len, err) < 0 ||
		    virtio_mmio_restore(vm->virtio[i], blob, len, err) < 0)
			return perr_wrap(err, "virtio-mmio slot %u", i);
	}
	for (unsigned i = 0; i < vm->n_virtio; i++)
		virtio_mmio_restore_finish(vm->virtio[i]);
	return 0;
}

/* Memory first: the devices' rings are checked against it. */
static int vm_restore(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	autoclose int dirfd = open(cfg->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return perr_set(err, -errno, "-incoming %s", cfg->incoming);
	struct snapshot_reader r;
	int rc = snapshot_reader_open(&r, dirfd, err);
	if (rc == 0) {
		rc = vm_restore_check_machine(vm, &r, err);
		/* Anonymous RAM becomes a private mapping of the file (read as the
		 * guest touches it; the new mapping is advised again); hugetlbfs or
		 * shared RAM keeps its backing. */
		if (rc == 0 && vm->ram_fd < 0) {
			rc = snapshot_memory_map(dirfd, vm->ram, vm->ram_size, err);
			if (rc == 0)
				vm_advise_dump(vm, cfg);
		} else if (rc == 0) {
			rc = snapshot_memory_load(dirfd, vm->ram, vm->ram_size, err);
		}
		if (rc == 0)
			rc = vm_restore_sections(vm, &r, err);
		snapshot_reader_free(&r);
	}
	return rc < 0 ? perr_wrap(err, "-incoming %s", cfg->incoming) : 0;
}

/* ------------------------------------------------------------------------ */
/* Build, run, destroy                                                        */
/* ------------------------------------------------------------------------ */

int vm_build(const struct vmm_config *cfg, struct vm **out, struct perr *err)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return perr_setx(err, -ENOMEM, "out of memory");
	snprintf(vm->name, sizeof(vm->name), "%s", cfg->name);
	vm->kvm_fd = -1;
	vm->vm_fd = -1;
	vm->exit_efd = -1;
	vm->pending_reason = VM_NO_REASON;
	vm->state = cfg->start_paused ? VM_STATE_PAUSED : VM_STATE_RUNNING;
	int rc = eventloop_create(&vm->loop);
	if (rc < 0) {
		free(vm);
		return perr_set(err, rc, "event loop");
	}

	rc = vm_open_kvm(vm, err);
	if (rc < 0)
		goto fail_kvm;
	rc = vm_setup_memory(vm, cfg, err);
	if (rc < 0)
		goto fail_memory;
	rc = vm_setup_irqchip(vm, err);
	if (rc < 0)
		goto fail_irqchip;
	rc = vm_create_iothreads(vm, cfg, err);
	if (rc < 0)
		goto fail_iothreads;
	rc = vm_add_devices(vm, cfg, err);
	if (rc < 0)
		goto fail_devices;
	vm_list_msrs(vm);
	/* A restored VM's kernel is in the snapshot's memory. */
	rc = cfg->incoming[0] ? vm_make_cmdline(vm, cfg, err) : vm_load_kernel(vm, cfg, err);
	if (rc < 0)
		goto fail_kernel;
	rc = vm_create_vcpus(vm, cfg, err);
	if (rc < 0)
		goto fail_vcpus;
	if (cfg->incoming[0] && (rc = vm_restore(vm, cfg, err)) < 0)
		goto fail_restore;
	*out = vm;
	return 0;

fail_restore:
	vcpus_destroy(vm->vcpus);
	vm->vcpus = NULL;
fail_vcpus:
fail_kernel:
	free(vm->msrs);
	vm_remove_devices(vm);
fail_devices:
fail_iothreads:
	vm_destroy_iothreads(vm);
fail_irqchip:
	vm_teardown_memory(vm);
fail_memory:
	vm_close_kvm(vm);
fail_kvm:
	eventloop_destroy(vm->loop);
	free(vm);
	return rc;
}

struct eventloop *vm_eventloop(struct vm *vm)
{
	return vm->loop;
}

/* The iothreads, then the vCPU threads (parked: vm_run lets them run). Each
 * installs its own filter first when vm->seccomp is set. Idempotent. */
static int vm_start_threads(struct vm *vm, struct perr *err)
{
	for (unsigned i = 0; i < vm->n_iothreads; i++) {
		int rc = iothread_start(vm->iothreads[i], vm_iothread_setup, vm, err);
		if (rc < 0)
			return rc;
	}
	if (vm->vcpus_started)
		return 0;
	vm->vcpus_started = true;
	return vcpus_start(vm->vcpus, false, err);
}

int vm_install_seccomp(struct vm *vm, bool disabled, struct perr *err)
{
	struct seccomp_params p = {.vm_fd = vm->vm_fd, .vcpu_fd = -1};
	vm->seccomp = !disabled;
	/* A filter that cannot be built fails the start here, with one message,
	 * rather than on some thread. */
	for (unsigned c = 0; !disabled && c < SECCOMP_N_CLASSES; c++) {
		int rc = seccomp_check((enum seccomp_class)c, &p, err);
		if (rc < 0)
			return rc;
	}
	/* A filter is inherited by the threads created after it, and filters
	 * stack: so every other thread exists, with its own class's filter,
	 * before the main thread installs its own. No guest code has run yet:
	 * the vCPUs are parked until vm_run. */
	int rc = vm_start_threads(vm, err);
	if (rc < 0 || disabled)
		return rc;
	rc = seccomp_install(SECCOMP_CLASS_MAIN, &p, err);
	if (rc < 0)
		return rc;
	seccomp_selftest(SECCOMP_CLASS_MAIN);
	return 0;
}

int vm_run(struct vm *vm, struct perr *err)
{
	if (vm->state != VM_STATE_SHUTDOWN) {
		int rc = vm_start_threads(vm, err);
		if (rc < 0) {
			vm->state = VM_STATE_SHUTDOWN;
			vm->reason = VM_SHUTDOWN_HOST_ERROR;
			return rc;
		}
		if (vm_vcpus_may_run(vm))
			vcpus_resume(vm->vcpus);
	}
	if (vm->state != VM_STATE_SHUTDOWN) {
		int rc = eventloop_run(vm->loop);
		if (rc < 0) {
			vm->state = VM_STATE_SHUTDOWN;
			vm->reason = VM_SHUTDOWN_HOST_ERROR;
			return perr_set(err, rc, "main loop");
		}
	}
	vcpus_stop(vm->vcpus);
	return 0;
}

enum vm_shutdown_reason vm_shutdown_reason(const struct vm *vm)
{
	return vm->reason;
}

int vm_exit_status(const struct vm *vm)
{
	return vm->state == VM_STATE_SHUTDOWN && vm->reason == VM_SHUTDOWN_HOST_ERROR ? 1 : 0;
}

const char *vm_kernel_cmdline(const struct vm *vm)
{
	return vm->cmdline;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	/* Reverse of vm_build: no vCPU may touch a device or RAM past here. */
	vcpus_destroy(vm->vcpus);
	vm->vcpus = NULL;
	/* Then no iothread runs a device's callbacks while it is removed. */
	vm_stop_iothreads(vm);
	vm_remove_devices(vm);
	vm_destroy_iothreads(vm);
	vm_teardown_memory(vm);
	vm_close_kvm(vm);
	eventloop_destroy(vm->loop);
	free(vm->msrs);
	free(vm);
}
