#include "seccomp.h"

#include <errno.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>
#include <malloc.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../common/cleanup.h"

/* Classes as bits, for the tables. */
#define M (1u << SECCOMP_CLASS_MAIN)
#define V (1u << SECCOMP_CLASS_VCPU)
#define I (1u << SECCOMP_CLASS_IOTHREAD)

/* How a system call's arguments are restricted. */
enum seccomp_args {
	ARGS_ANY,
	ARGS_NO_EXEC,	 /* mmap, mprotect: arg 2 (prot) without PROT_EXEC */
	ARGS_AF_UNIX,	 /* socket, socketpair: arg 0 (domain) is AF_UNIX */
	ARGS_THREAD,	 /* clone: arg 0 (flags) has CLONE_THREAD: threads, never processes */
	ARGS_SELF,	 /* kill, tgkill: arg 0 is our own pid */
	ARGS_SET_NAME,	 /* prctl: PR_SET_NAME only */
	ARGS_ENOSYS,	 /* not allowed, but fails with ENOSYS instead of killing */
	ARGS_IOCTL_LIST, /* ioctl: only the requests of seccomp_ioctls[] */
};

/* One row: system calls that share their classes, argument filter and
 * reason. Served by one loop (seccomp_build) and one printer (the tables of
 * docs/seccomp.md). */
struct seccomp_syscall {
	const char *names; /* separated by spaces; resolved with libseccomp for the
			      native architecture */
	unsigned classes;
	enum seccomp_args args;
	const char *reason;
};

/* Longer than any system call name libseccomp knows. */
#define SECCOMP_NAME_MAX 32

/* Copies the next name of a row's list into name; false at the end. */
static bool seccomp_next_name(const char **cursor, char name[SECCOMP_NAME_MAX])
{
	const char *p = *cursor + strspn(*cursor, " ");
	size_t len = strcspn(p, " ");
	if (len == 0)
		return false;
	snprintf(name, SECCOMP_NAME_MAX, "%.*s", (int)len, p);
	*cursor = p + len;
	return true;
}

/*
 * The allowlist. Generous with calls that only touch what the process
 * already has (its fds, its memory, its threads); strict with what reaches
 * outside: no execve, fork, ptrace, mount, bpf, kexec, module loading, no
 * new network sockets, no executable memory. Opening files is left to the
 * main thread (QMP hot-plug, chardev files), never to vCPUs or iothreads.
 */
static const struct seccomp_syscall seccomp_syscalls[] = {
    /* I/O on fds the VMM already holds */
    {"read write readv writev", M | V | I, ARGS_ANY,
     "eventfds (irqfd, kicks), signalfd, chardevs, tap frames, QMP, log, disk images"},
    {"pread64 pwrite64 preadv pwritev preadv2 pwritev2", M | I, ARGS_ANY,
     "virtio-blk reads and writes (glibc may use the v2 calls)"},
    {"lseek", M | I, ARGS_ANY, "image and file chardev positions"},
    {"fsync fdatasync", M | I, ARGS_ANY, "virtio-blk flush"},
    {"fallocate", M | I, ARGS_ANY, "virtio-blk discard / write-zeroes"},
    {"close", M | V | I, ARGS_ANY, "fds of closed connections, reset devices, hot-unplug"},
    {"fstat newfstatat", M | I, ARGS_ANY, "stdio and image checks (fstat through fstatat)"},
    {"statx", M, ARGS_ANY, "hot-plugged images: size and O_DIRECT alignment"},
    {"fcntl", M | V | I, ARGS_ANY, "O_NONBLOCK and FD_CLOEXEC on accepted / received fds"},
    {"pipe2", M, ARGS_ANY, "internal wake-ups"},
    {"ioctl", M | V | I, ARGS_IOCTL_LIST, "only the requests listed below"},
    /* Files: the main thread only. The pidfile and -daemonize's chdir and
     * stdio redirection happen before the filter: no rename, chdir, dup2. */
    {"openat", M, ARGS_ANY, "QMP hot-plug (images, /dev/net/tun, /dev/vhost-*), file chardevs"},
    {"unlink unlinkat", M, ARGS_ANY,
     "removing the QMP and chardev sockets and the pidfile at exit"},
    {"getcwd", M, ARGS_ANY, "making socket paths absolute"},
    {"mkdir mkdirat", M, ARGS_ANY, "QMP migrate: the snapshot directory"},
    {"ftruncate", M, ARGS_ANY, "QMP migrate: sizing the snapshot's memory file"},
    {"readlink", M, ARGS_ANY, "realpath() of paths given over QMP"},
    /* Event loops and timers */
    {"epoll_create1", M, ARGS_ANY, "event loops of hot-plugged devices"},
    {"epoll_ctl", M | V | I, ARGS_ANY, "watching fds; device activation runs on a vCPU"},
    {"epoll_wait epoll_pwait epoll_pwait2", M | I, ARGS_ANY, "the event loops"},
    {"poll ppoll", M | I, ARGS_ANY, "QMP greeting and short blocking waits"},
    {"eventfd2", M | V | I, ARGS_ANY, "device notifications created at activation"},
    {"timerfd_create timerfd_settime timerfd_gettime", M | V | I, ARGS_ANY,
     "rate limits (disk iops, rng)"},
    {"signalfd4", M, ARGS_ANY, "termination signals and the container relay's signals"},
    /* Sockets: Unix domain only, no new network sockets */
    {"socket", M, ARGS_AF_UNIX, "vsock host sockets, chardev and relay sockets"},
    {"socketpair", M, ARGS_AF_UNIX, "internal channels"},
    {"connect", M, ARGS_ANY, "vsock host side (uds-path), client chardevs"},
    {"bind listen", M, ARGS_ANY, "listening vsock / relay sockets"},
    {"accept accept4", M, ARGS_ANY, "QMP, chardev, vsock and relay clients"},
    {"shutdown", M | I, ARGS_ANY, "half-closing vsock streams"},
    {"getsockopt", M | I, ARGS_ANY, "SO_ERROR of non-blocking connects, SO_PEERCRED"},
    {"setsockopt", M, ARGS_ANY, "socket buffer sizes"},
    {"getsockname getpeername", M, ARGS_ANY, "socket addresses for messages"},
    {"sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg", M | I, ARGS_ANY,
     "QMP (send, recv), vsock streams, fd passing (SCM_RIGHTS), relay messages"},
    /* Memory: never executable */
    {"mmap mprotect", M | V | I, ARGS_NO_EXEC,
     "malloc arenas, buffers, thread stacks; not PROT_EXEC"},
    {"munmap mremap brk", M | V | I, ARGS_ANY, "malloc, realloc of large buffers, teardown"},
    {"madvise", M | V | I, ARGS_ANY, "balloon (MADV_DONTNEED), freed thread stacks, malloc_trim"},
    /* Threads and synchronisation */
    {"futex", M | V | I, ARGS_ANY, "mutexes, condition variables, joins"},
    {"clone", M, ARGS_THREAD, "threads of hot-plugged devices; never a new process"},
    {"clone3", M, ARGS_ENOSYS, "fails with ENOSYS so that glibc falls back to clone"},
    {"set_robust_list", M, ARGS_ANY, "start of a thread created by the main thread"},
    {"rseq", M | V | I, ARGS_ANY, "glibc's restartable sequences on new threads"},
    {"prctl", M, ARGS_SET_NAME, "naming threads created later (pthread_setname_np)"},
    {"sched_yield", M | V | I, ARGS_ANY, "spinning locks in libc"},
    {"sched_getaffinity", M, ARGS_ANY, "libc's CPU count"},
    {"exit exit_group", M | V | I, ARGS_ANY, "end of a thread, of the process"},
    {"restart_syscall", M | V | I, ARGS_ANY, "restarting a call after a signal"},
    /* Signals */
    {"rt_sigaction", M, ARGS_ANY, "signal dispositions (SIGPIPE ignored)"},
    {"rt_sigprocmask", M | V | I, ARGS_ANY, "blocking signals around signalfd, thread start"},
    {"rt_sigreturn", M | V | I, ARGS_ANY, "return from the vCPU kick handler"},
    {"sigaltstack", M, ARGS_ANY, "thread start"},
    {"kill", M, ARGS_SELF, "signals to the VMM itself only"},
    {"tgkill", M | V | I, ARGS_SELF, "vCPU kicks (pthread_kill), abort(); own process only"},
    /* Time: the vDSO answers most of these without a system call */
    {"clock_gettime clock_getres gettimeofday time", M | V | I, ARGS_ANY,
     "rate limits, log time stamps (vDSO fallbacks)"},
    {"clock_nanosleep nanosleep", M | V | I, ARGS_ANY, "short back-off sleeps"},
    /* Process information */
    {"getpid", M | V | I, ARGS_ANY, "pthread_kill, messages"},
    {"gettid", M | V | I, ARGS_ANY, "thread ids for QMP query-cpus-fast"},
    {"getuid geteuid getgid getegid", M, ARGS_ANY, "SO_PEERCRED checks"},
    {"uname", M, ARGS_ANY, "QMP query-version details"},
    {"sysinfo", M, ARGS_ANY, "libc's qsort (memory size)"},
    {"prlimit64", M, ARGS_ANY, "libc's resource queries"},
    {"getrandom", M | V | I, ARGS_ANY, "malloc and hash seeds"},
};

enum seccomp_fd {
	FD_ANY,	 /* any fd (the request is harmless, or the fd varies) */
	FD_VM,	 /* the KVM VM fd */
	FD_VCPU, /* the calling vCPU's own fd */
};

struct seccomp_ioctl {
	const char *name;
	unsigned long request;
	unsigned long mask; /* 0: exactly request; else (req & mask) == request */
	unsigned classes;
	enum seccomp_fd fd;
	const char *reason;
};

/* ioctl type 0xAF: every vhost request (vhost-net, vhost-vsock). */
#define SECCOMP_IOC_TYPE_MASK 0xff00ul

#define IOCTL(req) #req, req, 0
static const struct seccomp_ioctl seccomp_ioctls[] = {
    {IOCTL(KVM_RUN), V, FD_VCPU, "running the guest, on the vCPU's own fd only"},
    {IOCTL(KVM_IRQ_LINE), M | V | I, FD_VM, "8250 and i8042 interrupt lines"},
    {IOCTL(KVM_IRQFD), M | V | I, FD_VM, "virtio interrupts: (de)assigning irqfds"},
    {IOCTL(KVM_IOEVENTFD), M | V | I, FD_VM, "queue notifications: (de)assigning ioeventfds"},
    {IOCTL(KVM_SIGNAL_MSI), M | V | I, FD_VM, "message-signalled interrupts"},
    {IOCTL(KVM_SET_GSI_ROUTING), M, FD_VM, "interrupt routes of hot-plugged devices"},
    {IOCTL(KVM_CHECK_EXTENSION), M, FD_ANY, "capability checks at hot-plug"},
    {IOCTL(KVM_GET_REGS), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_SREGS), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_FPU), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_XSAVE), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_XSAVE2), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_XCRS), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_MSRS), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_MP_STATE), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_LAPIC), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_VCPU_EVENTS), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_DEBUGREGS), M, FD_ANY, "QMP migrate: paused vCPUs' state"},
    {IOCTL(KVM_GET_IRQCHIP), M, FD_VM, "QMP migrate: PIC and IOAPIC state"},
    {IOCTL(KVM_GET_PIT2), M, FD_VM, "QMP migrate: PIT state"},
    {IOCTL(KVM_GET_CLOCK), M, FD_VM, "QMP migrate: kvmclock"},
    {"vhost (type 0xAF)", _IO(VHOST_VIRTIO, 0), SECCOMP_IOC_TYPE_MASK, M | V | I, FD_ANY,
     "vhost-net / vhost-vsock set-up at device activation (a vCPU) and reset"},
    {IOCTL(TUNSETIFF), M, FD_ANY, "tap devices of hot-plugged NICs"},
    {IOCTL(TUNGETIFF), M, FD_ANY, "tap devices of hot-plugged NICs"},
    {IOCTL(TUNGETFEATURES), M, FD_ANY, "tap devices of hot-plugged NICs"},
    {IOCTL(TUNSETQUEUE), M | V | I, FD_ANY,
     "multi-queue tap: queues follow the guest's pair count"},
    {IOCTL(TUNSETOFFLOAD), M | V | I, FD_ANY, "tap offloads follow the guest's features"},
    {IOCTL(TUNSETVNETHDRSZ), M | V | I, FD_ANY, "tap virtio-net header size"},
    {IOCTL(TUNGETVNETHDRSZ), M | V | I, FD_ANY, "tap virtio-net header size"},
    {IOCTL(TUNSETVNETLE), M | V | I, FD_ANY, "tap virtio-net header endianness"},
    {IOCTL(TUNSETSNDBUF), M, FD_ANY, "tap send buffer"},
    {IOCTL(TCGETS), M, FD_ANY, "terminal chardevs: isatty, saving the mode"},
    {IOCTL(TCSETS), M, FD_ANY, "terminal chardevs: raw mode and its restoration"},
    {IOCTL(TCSETSW), M, FD_ANY, "terminal chardevs: raw mode and its restoration"},
    {IOCTL(TCSETSF), M, FD_ANY, "terminal chardevs: raw mode and its restoration"},
    {IOCTL(TIOCGWINSZ), M, FD_ANY, "console size (container relay)"},
    {IOCTL(TIOCSWINSZ), M, FD_ANY, "console size (container relay)"},
    {IOCTL(TIOCGPTN), M, FD_ANY, "pty chardevs (ptsname)"},
    {IOCTL(TIOCSPTLCK), M, FD_ANY, "pty chardevs (unlockpt)"},
    {IOCTL(TIOCGPTPEER), M, FD_ANY, "pty chardevs (opening the peer)"},
    {IOCTL(FIONBIO), M | I, FD_ANY, "non-blocking mode"},
    {IOCTL(FIONREAD), M | I, FD_ANY, "bytes pending on sockets and taps"},
    {IOCTL(FIOCLEX), M, FD_ANY, "close-on-exec of received fds"},
    {IOCTL(FIONCLEX), M, FD_ANY, "close-on-exec of received fds"},
    {IOCTL(BLKGETSIZE64), M, FD_ANY, "size of hot-plugged block devices"},
    {IOCTL(BLKSSZGET), M, FD_ANY, "sector size of hot-plugged block devices"},
    {IOCTL(BLKDISCARD), M | I, FD_ANY, "virtio-blk discard on block devices"},
    {IOCTL(BLKZEROOUT), M | I, FD_ANY, "virtio-blk write-zeroes on block devices"},
};
#undef IOCTL

static const char *const seccomp_class_names[SECCOMP_N_CLASSES] = {"main", "vcpu", "iothread"};

const char *seccomp_class_name(enum seccomp_class cls)
{
	return (unsigned)cls < SECCOMP_N_CLASSES ? seccomp_class_names[cls] : "?";
}

static int seccomp_add_ioctls(scmp_filter_ctx ctx, unsigned bit, const struct seccomp_params *p,
			      struct perr *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(seccomp_ioctls); i++) {
		const struct seccomp_ioctl *e = &seccomp_ioctls[i];
		if (!(e->classes & bit))
			continue;
		struct scmp_arg_cmp cmp[2];
		unsigned n = 0;
		if (e->mask)
			cmp[n++] = SCMP_A1_32(SCMP_CMP_MASKED_EQ, e->mask, e->request);
		else
			cmp[n++] = SCMP_A1_32(SCMP_CMP_EQ, e->request);
		if (e->fd == FD_VM || e->fd == FD_VCPU) {
			int fd = e->fd == FD_VM ? p->vm_fd : p->vcpu_fd;
			if (fd < 0)
				continue; /* no such fd: the request stays forbidden */
			cmp[n++] = SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)fd);
		}
		int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), n, cmp);
		if (rc < 0)
			return perr_set(err, rc, "seccomp: ioctl %s", e->name);
	}
	return 0;
}

static int seccomp_add_syscall(scmp_filter_ctx ctx, const struct seccomp_syscall *e,
			       const char *name, int nr, struct perr *err)
{
	struct scmp_arg_cmp cmp = {0};
	uint32_t action = SCMP_ACT_ALLOW;
	unsigned n = 1;
	switch (e->args) {
	case ARGS_NO_EXEC:
		cmp = SCMP_A2_32(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
		break;
	case ARGS_AF_UNIX:
		cmp = SCMP_A0_32(SCMP_CMP_EQ, AF_UNIX);
		break;
	case ARGS_THREAD:
		cmp = SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
		break;
	case ARGS_SELF:
		cmp = SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)getpid());
		break;
	case ARGS_SET_NAME:
		cmp = SCMP_A0_32(SCMP_CMP_EQ, PR_SET_NAME);
		break;
	case ARGS_ENOSYS:
		action = SCMP_ACT_ERRNO(ENOSYS);
		n = 0;
		break;
	case ARGS_ANY:
	case ARGS_IOCTL_LIST:
		n = 0;
		break;
	}
	int rc = seccomp_rule_add_array(ctx, action, nr, n, &cmp);
	if (rc < 0)
		return perr_set(err, rc, "seccomp: %s", name);
	return 0;
}

static int seccomp_build(enum seccomp_class cls, const struct seccomp_params *p,
			 scmp_filter_ctx *out, struct perr *err)
{
	if ((unsigned)cls >= SECCOMP_N_CLASSES)
		return perr_setx(err, -EINVAL, "seccomp: unknown thread class %d", (int)cls);
	unsigned bit = 1u << cls;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return perr_setx(err, -ENOMEM, "seccomp_init failed");
	/* A call through another ABI (int 0x80, x32) must not bypass the list. */
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc < 0) {
		perr_set(err, rc, "seccomp: bad-architecture action");
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(seccomp_syscalls); i++) {
		const struct seccomp_syscall *e = &seccomp_syscalls[i];
		if (!(e->classes & bit))
			continue;
		char name[SECCOMP_NAME_MAX];
		for (const char *cursor = e->names; seccomp_next_name(&cursor, name);) {
			int nr = seccomp_syscall_resolve_name(name);
			if (nr == __NR_SCMP_ERROR)
				continue; /* not a system call on this architecture */
			rc = e->args == ARGS_IOCTL_LIST
				 ? seccomp_add_ioctls(ctx, bit, p, err)
				 : seccomp_add_syscall(ctx, e, name, nr, err);
			if (rc < 0)
				goto fail;
		}
	}
	*out = ctx;
	return 0;
fail:
	seccomp_release(ctx);
	return perr_wrap(err, "%s thread filter", seccomp_class_name(cls));
}

int seccomp_check(enum seccomp_class cls, const struct seccomp_params *p, struct perr *err)
{
	scmp_filter_ctx ctx = NULL;
	int rc = seccomp_build(cls, p, &ctx, err);
	if (rc == 0)
		seccomp_release(ctx);
	return rc;
}

int seccomp_install(enum seccomp_class cls, const struct seccomp_params *p, struct perr *err)
{
	scmp_filter_ctx ctx = NULL;
	int rc = seccomp_build(cls, p, &ctx, err);
	if (rc < 0)
		return rc;
	/* No TSYNC: the filter is this thread's (and its future children's). */
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	/* libseccomp's rule and BPF databases were the largest allocations of
	 * the VMM's life (about 240 KiB on the main thread's heap, 64 KiB in a
	 * vCPU's arena): hand the freed pages back, or they stay resident as
	 * VMM overhead for as long as the VM runs (docs/performance.md). */
	malloc_trim(0);
	if (rc < 0)
		return perr_set(err, rc, "seccomp: loading the %s thread filter",
				seccomp_class_name(cls));
	return 0;
}

const char *seccomp_unknown_syscall(char *buf, size_t size)
{
	char name[SECCOMP_NAME_MAX];
	for (size_t i = 0; i < ARRAY_SIZE(seccomp_syscalls); i++) {
		for (const char *cursor = seccomp_syscalls[i].names;
		     seccomp_next_name(&cursor, name);) {
			if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR) {
				snprintf(buf, size, "%s", name);
				return buf;
			}
		}
	}
	return NULL;
}

static const char *seccomp_args_doc(enum seccomp_args args)
{
	switch (args) {
	case ARGS_NO_EXEC:
		return "prot without PROT_EXEC";
	case ARGS_AF_UNIX:
		return "domain AF_UNIX";
	case ARGS_THREAD:
		return "flags with CLONE_THREAD";
	case ARGS_SELF:
		return "pid is the VMM's";
	case ARGS_SET_NAME:
		return "PR_SET_NAME only";
	case ARGS_ENOSYS:
		return "fails with ENOSYS";
	case ARGS_IOCTL_LIST:
		return "requests below";
	case ARGS_ANY:
		break;
	}
	return "any";
}

static const char *seccomp_fd_doc(enum seccomp_fd fd)
{
	switch (fd) {
	case FD_VM:
		return "the VM fd";
	case FD_VCPU:
		return "the vCPU's own fd";
	case FD_ANY:
		break;
	}
	return "any";
}

void seccomp_doc_write(FILE *out)
{
	for (unsigned c = 0; c < SECCOMP_N_CLASSES; c++) {
		unsigned bit = 1u << c;
		fprintf(out, "### Class `%s`\n\n", seccomp_class_names[c]);
		fprintf(out, "| system call | arguments | why |\n|---|---|---|\n");
		for (size_t i = 0; i < ARRAY_SIZE(seccomp_syscalls); i++) {
			const struct seccomp_syscall *e = &seccomp_syscalls[i];
			if (!(e->classes & bit))
				continue;
			char name[SECCOMP_NAME_MAX];
			const char *sep = "| ";
			for (const char *cursor = e->names; seccomp_next_name(&cursor, name);) {
				fprintf(out, "%s`%s`", sep, name);
				sep = ", ";
			}
			fprintf(out, " | %s | %s |\n", seccomp_args_doc(e->args), e->reason);
		}
		fprintf(out, "\nioctl requests:\n\n| request | fd | why |\n|---|---|---|\n");
		for (size_t i = 0; i < ARRAY_SIZE(seccomp_ioctls); i++) {
			const struct seccomp_ioctl *e = &seccomp_ioctls[i];
			if (e->classes & bit)
				fprintf(out, "| `%s` | %s | %s |\n", e->name, seccomp_fd_doc(e->fd),
					e->reason);
		}
		fprintf(out, "\n");
	}
}

void seccomp_selftest(enum seccomp_class cls)
{
	const char *want = getenv("PETREL_SECCOMP_SELFTEST");
	if (!want || strcmp(want, seccomp_class_name(cls)) != 0)
		return;
	fprintf(stderr, "petrel-vmm: PETREL_SECCOMP_SELFTEST: calling ptrace on a %s thread\n",
		want);
	/* Harmless should it be allowed: a process cannot peek at itself. */
	long rc = syscall(SYS_ptrace, PTRACE_PEEKDATA, (long)getpid(), 0L, 0L);
	fprintf(stderr, "petrel-vmm: PETREL_SECCOMP_SELFTEST: ptrace returned %ld; no filter?\n",
		rc);
}
