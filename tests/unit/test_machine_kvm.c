/*
 * The MicroVm machine on real KVM with hand-assembled 64-bit guests loaded as
 * raw kernel images (entered at 1 MiB in long mode): serial output, the
 * i8042 reset ending the VM, pause/resume, -S, unassigned ports, triple
 * faults, two VMs in one process. Skipped where /dev/kvm cannot run them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../../vmm/cli/config.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/core/vm.h"
#include "unit.h"

/* mov dx, 0x3f8 */
#define G_MOV_DX_COM1 0x66, 0xba, 0xf8, 0x03
/* mov al, imm8 */
#define G_MOV_AL(c) 0xb0, (c)
/* out dx, al */
#define G_OUT_DX_AL 0xee
/* mov al, 0xfe; out 0x64, al: pulse the i8042 reset line */
#define G_I8042_RESET 0xb0, 0xfe, 0xe6, 0x64
#define G_HLT	      0xf4

struct guest {
	char dir[64];
	char kernel[96];
	char serial[96];
	struct vmm_config cfg;
	struct vm *vm;
};

static bool kvm_usable(char *why, size_t size)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, size, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/* Writes the program and parses a command line for it (extra args appended). */
static int guest_prepare(struct guest *g, const uint8_t *code, size_t len, const char *const *extra,
			 struct perr *err)
{
	snprintf(g->dir, sizeof(g->dir), "/tmp/petrel-machine-XXXXXX");
	if (!mkdtemp(g->dir))
		return perr_set(err, -errno, "mkdtemp");
	snprintf(g->kernel, sizeof(g->kernel), "%s/guest.bin", g->dir);
	snprintf(g->serial, sizeof(g->serial), "%s/serial.log", g->dir);
	FILE *f = fopen(g->kernel, "w");
	if (!f || fwrite(code, 1, len, f) != len)
		return perr_set(err, -EIO, "write %s", g->kernel);
	fclose(f);

	char serial_arg[128];
	snprintf(serial_arg, sizeof(serial_arg), "file,path=%s", g->serial);
	const char *argv[32] = {"petrel-vmm", "-kernel", g->kernel, "-m",
				"256",	      "-serial", serial_arg};
	int argc = 7;
	for (; extra && *extra && argc < 31; extra++)
		argv[argc++] = *extra;
	return vmm_config_parse(argc, (char *const *)argv, &g->cfg, err);
}

static void guest_cleanup(struct guest *g)
{
	vm_destroy(g->vm);
	g->vm = NULL;
	unlink(g->kernel);
	unlink(g->serial);
	rmdir(g->dir);
}

static size_t read_serial(const struct guest *g, char *buf, size_t size)
{
	FILE *f = fopen(g->serial, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

static off_t serial_size(const struct guest *g)
{
	struct stat st;
	return stat(g->serial, &st) == 0 ? st.st_size : -1;
}

/* A timer on the VM's loop that drives a test script step by step. */
struct script {
	int tfd;
	unsigned step;
	struct guest *g;
	void (*fn)(struct script *s);
	off_t sizes[4];
	bool failed;
	char why[128];
};

static void script_tick(void *opaque, uint32_t events)
{
	struct script *s = opaque;
	uint64_t n;
	(void)events;
	if (read(s->tfd, &n, sizeof(n)) != sizeof(n))
		return;
	s->fn(s);
	s->step++;
}

static int script_start(struct script *s, struct guest *g, void (*fn)(struct script *),
			unsigned interval_ms)
{
	memset(s, 0, sizeof(*s));
	s->g = g;
	s->fn = fn;
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->tfd < 0)
		return -errno;
	struct itimerspec its = {
	    .it_interval = {0, (long)interval_ms * 1000000},
	    .it_value = {0, (long)interval_ms * 1000000},
	};
	timerfd_settime(s->tfd, 0, &its, NULL);
	return eventloop_add(vm_eventloop(g->vm), s->tfd, 0, script_tick, s);
}

static void script_stop(struct script *s)
{
	if (s->tfd >= 0) {
		eventloop_remove(vm_eventloop(s->g->vm), s->tfd);
		close(s->tfd);
	}
	s->tfd = -1;
}

/* Ends a VM that would otherwise run forever (a broken test). */
static void watchdog_script(struct script *s)
{
	if (s->step == 50) {
		s->failed = true;
		snprintf(s->why, sizeof(s->why), "the guest did not end within 5 s");
		vm_request_shutdown(s->g->vm, VM_SHUTDOWN_HOST_ERROR);
	}
}

/* Builds and runs to the end; skips when this host's KVM cannot run it. */
#define RUN_GUEST(g, code, extra)                                                         \
	do {                                                                              \
		char why_[256];                                                           \
		if (!kvm_usable(why_, sizeof(why_)))                                      \
			UNIT_SKIP("%s", why_);                                            \
		struct perr err_ = {0};                                                   \
		UNIT_ASSERT_EQ(guest_prepare(&(g), code, sizeof(code), extra, &err_), 0); \
		if (vm_build(&(g).cfg, &(g).vm, &err_) < 0) {                             \
			guest_cleanup(&(g));                                              \
			UNIT_SKIP("vm_build on this host: %s", err_.msg);                 \
		}                                                                         \
	} while (0)

UNIT_TEST(test_raw_guest_prints_to_serial_and_i8042_reset_ends_vm)
{
	static const uint8_t code[] = {G_MOV_DX_COM1, G_MOV_AL('X'), G_OUT_DX_AL, G_MOV_AL('\n'),
				       G_OUT_DX_AL,   G_I8042_RESET, G_HLT};
	struct guest g = {0};
	RUN_GUEST(g, code, NULL);
	struct script wd;
	UNIT_ASSERT_EQ(script_start(&wd, &g, watchdog_script, 100), 0);
	struct perr err = {0};
	int rc = vm_run(g.vm, &err);
	script_stop(&wd);
	char out[64];
	read_serial(&g, out, sizeof(out));
	enum vm_shutdown_reason reason = vm_shutdown_reason(g.vm);
	int status = vm_exit_status(g.vm);
	guest_cleanup(&g);
	UNIT_ASSERT(!wd.failed);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_STREQ(out, "X\n");
	UNIT_ASSERT_EQ(reason, VM_SHUTDOWN_GUEST_RESET);
	UNIT_ASSERT_EQ(status, 0);
}

UNIT_TEST(test_raw_guest_reads_unassigned_port_as_ff)
{
	/* in al, 0x99; out dx, al */
	static const uint8_t code[] = {G_MOV_DX_COM1, 0xe4,	     0x99,
				       G_OUT_DX_AL,   G_I8042_RESET, G_HLT};
	struct guest g = {0};
	RUN_GUEST(g, code, NULL);
	struct perr err = {0};
	int rc = vm_run(g.vm, &err);
	char out[64];
	size_t n = read_serial(&g, out, sizeof(out));
	guest_cleanup(&g);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(n, 1);
	UNIT_ASSERT_EQ((uint8_t)out[0], 0xff);
}

UNIT_TEST(test_raw_guest_triple_fault_is_guest_reset)
{
	/* ud2 with an empty IDT: #UD, #DF, then shutdown. */
	static const uint8_t code[] = {0x0f, 0x0b};
	struct guest g = {0};
	RUN_GUEST(g, code, NULL);
	struct script wd;
	UNIT_ASSERT_EQ(script_start(&wd, &g, watchdog_script, 100), 0);
	struct perr err = {0};
	int rc = vm_run(g.vm, &err);
	script_stop(&wd);
	enum vm_shutdown_reason reason = vm_shutdown_reason(g.vm);
	guest_cleanup(&g);
	if (wd.failed)
		UNIT_SKIP("this host's KVM does not report the triple fault");
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(reason, VM_SHUTDOWN_GUEST_RESET);
}

/* Guest: print 'A' forever. */
static const uint8_t loop_code[] = {G_MOV_DX_COM1, G_MOV_AL('A'), G_OUT_DX_AL, 0xeb, 0xfd};

static void pause_script(struct script *s)
{
	struct vm *vm = s->g->vm;
	struct perr err = {0};
	switch (s->step) {
	case 1:
		if (vm_pause(vm, &err) < 0 || vm_get_state(vm) != VM_STATE_PAUSED) {
			s->failed = true;
			snprintf(s->why, sizeof(s->why), "pause: %.100s", err.msg);
		}
		s->sizes[0] = serial_size(s->g);
		break;
	case 3:
		s->sizes[1] = serial_size(s->g);
		vm_resume(vm, &err);
		break;
	case 5:
		s->sizes[2] = serial_size(s->g);
		vm_request_shutdown(vm, VM_SHUTDOWN_HOST_QMP_QUIT);
		break;
	}
	if (s->step > 50)
		vm_request_shutdown(vm, VM_SHUTDOWN_HOST_ERROR);
}

UNIT_TEST(test_pause_stops_every_vcpu_until_resume)
{
	static const char *const extra[] = {"-smp", "2", NULL};
	struct guest g = {0};
	RUN_GUEST(g, loop_code, extra);
	struct script s;
	UNIT_ASSERT_EQ(script_start(&s, &g, pause_script, 50), 0);
	struct perr err = {0};
	int rc = vm_run(g.vm, &err);
	script_stop(&s);
	enum vm_shutdown_reason reason = vm_shutdown_reason(g.vm);
	int status = vm_exit_status(g.vm);
	guest_cleanup(&g);
	UNIT_ASSERT(!s.failed);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT(s.sizes[0] > 0);
	/* Nothing is written while paused, output resumes afterwards. */
	UNIT_ASSERT_EQ(s.sizes[1], s.sizes[0]);
	UNIT_ASSERT(s.sizes[2] > s.sizes[1]);
	UNIT_ASSERT_EQ(reason, VM_SHUTDOWN_HOST_QMP_QUIT);
	UNIT_ASSERT_EQ(status, 0);
}

static void start_paused_script(struct script *s)
{
	struct perr err = {0};
	if (s->step == 2) {
		s->sizes[0] = serial_size(s->g);
		if (vm_get_state(s->g->vm) != VM_STATE_PAUSED)
			s->failed = true;
		vm_resume(s->g->vm, &err);
	}
	if (s->step > 50)
		vm_request_shutdown(s->g->vm, VM_SHUTDOWN_HOST_ERROR);
}

UNIT_TEST(test_start_paused_runs_nothing_until_resume)
{
	static const uint8_t code[] = {G_MOV_DX_COM1, G_MOV_AL('S'), G_OUT_DX_AL, G_I8042_RESET,
				       G_HLT};
	static const char *const extra[] = {"-S", NULL};
	struct guest g = {0};
	RUN_GUEST(g, code, extra);
	struct script s;
	UNIT_ASSERT_EQ(script_start(&s, &g, start_paused_script, 50), 0);
	struct perr err = {0};
	int rc = vm_run(g.vm, &err);
	script_stop(&s);
	char out[16];
	read_serial(&g, out, sizeof(out));
	enum vm_shutdown_reason reason = vm_shutdown_reason(g.vm);
	guest_cleanup(&g);
	UNIT_ASSERT(!s.failed);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(s.sizes[0], 0);
	UNIT_ASSERT_STREQ(out, "S");
	UNIT_ASSERT_EQ(reason, VM_SHUTDOWN_GUEST_RESET);
}

UNIT_TEST(test_two_vms_in_one_process_are_independent)
{
	static const uint8_t code1[] = {G_MOV_DX_COM1, G_MOV_AL('1'), G_OUT_DX_AL, G_I8042_RESET,
					G_HLT};
	static const uint8_t code2[] = {G_MOV_DX_COM1, G_MOV_AL('2'), G_OUT_DX_AL, G_I8042_RESET,
					G_HLT};
	struct guest a = {0}, b = {0};
	RUN_GUEST(a, code1, NULL);
	RUN_GUEST(b, code2, NULL);
	struct perr err = {0};
	int rc1 = vm_run(b.vm, &err);
	int rc2 = vm_run(a.vm, &err);
	char out1[8], out2[8];
	read_serial(&a, out1, sizeof(out1));
	read_serial(&b, out2, sizeof(out2));
	guest_cleanup(&a);
	guest_cleanup(&b);
	UNIT_ASSERT_EQ(rc1, 0);
	UNIT_ASSERT_EQ(rc2, 0);
	UNIT_ASSERT_STREQ(out1, "1");
	UNIT_ASSERT_STREQ(out2, "2");
}

UNIT_TEST(test_acpi_s5_poweroff_is_guest_shutdown)
{
	/* mov dx, 0x600 (sleep control); mov al, SLP_EN | SLP_TYP 5; out dx, al */
	static const uint8_t code[] = {0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee, G_HLT};
	static const char *const extra[] = {"-machine", "microvm,acpi=on", NULL};
	struct guest g = {0};
	RUN_GUEST(g, code, extra);
	struct script wd;
	UNIT_ASSERT_EQ(script_start(&wd, &g, watchdog_script, 100), 0);
	struct perr err = {0};
	int rc = vm_run(g.vm, &err);
	script_stop(&wd);
	enum vm_shutdown_reason reason = vm_shutdown_reason(g.vm);
	int status = vm_exit_status(g.vm);
	guest_cleanup(&g);
	UNIT_ASSERT(!wd.failed);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(reason, VM_SHUTDOWN_GUEST_SHUTDOWN);
	UNIT_ASSERT_EQ(status, 0);
}

UNIT_TEST(test_missing_kernel_fails_build_with_path)
{
	struct vmm_config cfg;
	struct perr err = {0};
	const char *argv[] = {"petrel-vmm", "-kernel", "/nonexistent/petrel-kernel"};
	UNIT_ASSERT_EQ(vmm_config_parse(3, (char *const *)argv, &cfg, &err), 0);
	struct vm *vm = NULL;
	char why[256];
	if (!kvm_usable(why, sizeof(why)))
		UNIT_SKIP("%s", why);
	UNIT_ASSERT(vm_build(&cfg, &vm, &err) < 0);
	UNIT_ASSERT(vm == NULL);
	UNIT_ASSERT_STREQ(err.msg, "-kernel /nonexistent/petrel-kernel: No such file or directory");
}

UNIT_MAIN("machine_kvm")
