/*
 * The x86 MicroVm machine: RAM, KVM's in-kernel irqchip and PIT, a 16550A
 * on COM1, an i8042 (reset line, Ctrl-Alt-Del), virtio-mmio block devices,
 * and vCPUs that boot a Linux kernel directly (no firmware).
 *
 * Threads: the main loop (this file's callbacks, QMP, chardevs, virtio
 * queues) and one thread per vCPU. vCPU threads never touch the loop; they
 * report the end of the VM through exit_efd.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../arch/x86/acpi_tables.h"
#include "../arch/x86/boot.h"
#include "../arch/x86/cpuid.h"
#include "../arch/x86/layout.h"
#include "../arch/x86/regs.h"
#include "../hw/acpi_pm.h"
#include "../hw/i8042.h"
#include "../hw/serial8250.h"
#include "../virtio/blk.h"
#include "../virtio/transport-mmio.h"
#include "bus.h"
#include "chardev.h"
#include "eventloop.h"
#include "guest_mem.h"
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
	struct x86_ram_layout ram_layout;
	struct guest_mem mem;

	/* Devices */
	struct bus pio;
	struct bus mmio;
	bool buses_ready;
	struct chardev *chardevs[VMM_MAX_CHARDEVS + 1]; /* the -chardevs, then a -serial one */
	unsigned n_chardevs;
	struct chardev *serial_chr; /* one of chardevs[], or NULL */
	struct serial8250 *serial;
	struct vm_irq_line serial_irq;
	struct i8042 *i8042;
	struct vm_irq_line kbd_irq;
	struct acpi_pm *acpi_pm; /* acpi=on: the sleep registers (poweroff) */
	struct virtio_mmio *virtio[VMM_MICROVM_MAX_MMIO];
	struct acpi_mmio_dev virtio_res[VMM_MICROVM_MAX_MMIO]; /* window and GSI of each */
	unsigned n_virtio;
	char virtio_cmdline[VM_CMDLINE_MAX]; /* " virtio_mmio.device=..." for each */
	unsigned start_holds;		     /* socket chardevs waiting for their client */

	/* Kernel */
	char cmdline[VM_CMDLINE_MAX];
	struct x86_boot_entry boot_entry;

	/* vCPUs */
	struct vcpus *vcpus;
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
	memset(&vm->mem, 0, sizeof(vm->mem));
}

static int vm_setup_memory(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	x86_ram_split(cfg->mem_bytes, &vm->ram_layout);
	vm->ram_size = cfg->mem_bytes;
	/* NORESERVE: RAM is committed when the guest touches it. Shared
	 * (mem-share=on) so that another process (vhost-user) can map it. */
	int flags = MAP_ANONYMOUS | MAP_NORESERVE | (cfg->mem_share ? MAP_SHARED : MAP_PRIVATE);
	void *ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (ram == MAP_FAILED)
		return perr_set(err, -errno, "-m: mapping %llu MiB of guest RAM",
				(unsigned long long)(vm->ram_size >> 20));
	vm->ram = ram;
	if (!cfg->dump_guest_core && madvise(ram, vm->ram_size, MADV_DONTDUMP) < 0)
		log_warn("dump-guest-core=off: madvise: %s", strerror(errno));

	int rc = vm_add_memslot(vm, 0, 0, vm->ram_layout.low_size, vm->ram, err);
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
/* Build step 4: devices                                                      */
/* ------------------------------------------------------------------------ */

static void vm_remove_devices(struct vm *vm)
{
	while (vm->n_virtio)
		virtio_mmio_detach(vm->virtio[--vm->n_virtio]);
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

/* The loop of the iothread named id, or NULL (the main loop) for "". */
static struct eventloop *vm_iothread_loop(struct vm *vm, const char *id)
{
	(void)vm;
	(void)id;
	return NULL; /* -object iothread: not wired yet */
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
	};
	struct virtio_mmio *t;
	int rc = virtio_mmio_attach(&host, dev, &t, err);
	if (rc < 0)
		return perr_wrap(err, "%s", what);
	vm->virtio_res[vm->n_virtio] = (struct acpi_mmio_dev){host.base, VIRTIO_MMIO_SIZE, host.gsi};
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
	return 0;
fail:
	vm_remove_devices(vm);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Build step 5: kernel                                                       */
/* ------------------------------------------------------------------------ */

static int vm_load_kernel(struct vm *vm, const struct vmm_config *cfg, struct perr *err)
{
	/* The user's -append first, then what the machine adds. */
	const char *added = vm->virtio_cmdline;
	if (!cfg->append[0] && added[0] == ' ')
		added++;
	int n = snprintf(vm->cmdline, sizeof(vm->cmdline), "%s%s", cfg->append, added);
	if (n < 0 || (size_t)n >= sizeof(vm->cmdline))
		return perr_setx(err, -E2BIG, "-append: the kernel command line is too long");

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
/* Build step 6: vCPUs                                                        */
/* ------------------------------------------------------------------------ */

static int vm_setup_vcpu(struct vm *vm, const struct kvm_cpuid2 *supported, unsigned i,
			 unsigned ncpus, struct perr *err)
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
	    .opaque = vm,
	};
	rc = vcpus_create(vm->kvm_fd, vm->vm_fd, cfg->cpus, &host, &vm->vcpus, err);
	for (unsigned i = 0; rc == 0 && i < cfg->cpus; i++) {
		rc = vm_setup_vcpu(vm, supported, i, cfg->cpus, err);
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
	rc = vm_add_devices(vm, cfg, err);
	if (rc < 0)
		goto fail_devices;
	rc = vm_load_kernel(vm, cfg, err);
	if (rc < 0)
		goto fail_kernel;
	rc = vm_create_vcpus(vm, cfg, err);
	if (rc < 0)
		goto fail_vcpus;
	*out = vm;
	return 0;

fail_vcpus:
fail_kernel:
	vm_remove_devices(vm);
fail_devices:
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

int vm_install_seccomp(struct vm *vm, bool disabled, struct perr *err)
{
	/* TODO(seccomp issue): per-thread filters (vcpuN, main loop) via
	 * libseccomp; -disable-seccomp skips them. */
	(void)vm;
	(void)disabled;
	(void)err;
	return 0;
}

int vm_run(struct vm *vm, struct perr *err)
{
	if (vm->state != VM_STATE_SHUTDOWN && !vm->vcpus_started) {
		int rc = vcpus_start(vm->vcpus, vm_vcpus_may_run(vm), err);
		vm->vcpus_started = true;
		if (rc < 0) {
			vm->state = VM_STATE_SHUTDOWN;
			vm->reason = VM_SHUTDOWN_HOST_ERROR;
			return rc;
		}
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
	vm_remove_devices(vm);
	vm_teardown_memory(vm);
	vm_close_kvm(vm);
	eventloop_destroy(vm->loop);
	free(vm);
}
