/* The seccomp allowlists (vmm/core/seccomp.c): each class's filter builds, and
 * a child process that installs one is killed by SIGSYS for what the list
 * does not allow, while what it allows keeps working. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../vmm/core/seccomp.h"
#include "unit.h"

#define DOC_PATH      "docs/seccomp.md"
#define DOC_BEGIN     "<!-- BEGIN GENERATED: seccomp_doc_write -->\n"
#define DOC_END	      "<!-- END GENERATED -->\n"
#define CHILD_OK      0
#define CHILD_FAILED  3
#define FD_NOT_OPEN_A 900 /* fds the children never open */
#define FD_NOT_OPEN_B 901

typedef int (*child_fn)(void);

static struct seccomp_params child_params;
static enum seccomp_class child_class;

/* Runs fn in a child under the class's filter; its wait status. */
static int run_filtered(enum seccomp_class cls, const struct seccomp_params *p, child_fn fn)
{
	child_class = cls;
	child_params = *p;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct perr err;
		if (seccomp_install(child_class, &child_params, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			_exit(CHILD_FAILED);
		}
		_exit(fn());
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static bool killed_by_sigsys(int status)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

static bool exited_ok(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OK;
}

static const struct seccomp_params no_fds = {.vm_fd = -1, .vcpu_fd = -1};

UNIT_TEST(test_seccomp_filter_builds_for_each_class)
{
	const struct seccomp_params with_fds = {.vm_fd = 7, .vcpu_fd = 8};
	for (unsigned c = 0; c < SECCOMP_N_CLASSES; c++) {
		struct perr err = {0};
		int rc = seccomp_check((enum seccomp_class)c, &with_fds, &err);
		if (rc < 0)
			UNIT_FAIL("class %s: %s", seccomp_class_name((enum seccomp_class)c),
				  err.msg);
		rc = seccomp_check((enum seccomp_class)c, &no_fds, &err);
		if (rc < 0)
			UNIT_FAIL("class %s without fds: %s",
				  seccomp_class_name((enum seccomp_class)c), err.msg);
	}
}

UNIT_TEST(test_seccomp_rejects_unknown_class)
{
	struct perr err = {0};
	UNIT_ASSERT_EQ(seccomp_check((enum seccomp_class)SECCOMP_N_CLASSES, &no_fds, &err),
		       -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "unknown thread class");
}

UNIT_TEST(test_seccomp_every_allowlist_name_is_a_syscall)
{
	char name[64];
	const char *unknown = seccomp_unknown_syscall(name, sizeof(name));
	if (unknown)
		UNIT_FAIL("'%s' is not a system call libseccomp knows on this architecture",
			  unknown);
}

static int child_ptrace(void)
{
	(void)syscall(SYS_ptrace, PTRACE_PEEKDATA, (long)getpid(), 0L, 0L);
	return CHILD_OK;
}

UNIT_TEST(test_seccomp_forbidden_syscall_kills_with_sigsys)
{
	for (unsigned c = 0; c < SECCOMP_N_CLASSES; c++) {
		int status = run_filtered((enum seccomp_class)c, &no_fds, child_ptrace);
		if (!killed_by_sigsys(status))
			UNIT_FAIL("class %s: ptrace gave wait status %#x, not SIGSYS",
				  seccomp_class_name((enum seccomp_class)c), status);
	}
}

static int child_execve(void)
{
	char *argv[] = {"/bin/true", NULL};
	(void)execve(argv[0], argv, argv + 1);
	return CHILD_OK;
}

UNIT_TEST(test_seccomp_main_thread_cannot_execve)
{
	UNIT_ASSERT(killed_by_sigsys(run_filtered(SECCOMP_CLASS_MAIN, &no_fds, child_execve)));
}

/* A pipe made before the fork: what every thread does with fds it has. */
static int basics_pipe[2];

/* What every thread does: its fds, its memory, time, locks, the log. */
static int child_allowed_basics(void)
{
	if (write(basics_pipe[1], "x", 1) != 1)
		return CHILD_FAILED;
	char c;
	if (read(basics_pipe[0], &c, 1) != 1 || c != 'x')
		return CHILD_FAILED;
	void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return CHILD_FAILED;
	if (madvise(p, 1 << 20, MADV_DONTNEED) < 0 || munmap(p, 1 << 20) < 0)
		return CHILD_FAILED;
	free(malloc(4 << 20));
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0 || getpid() <= 0)
		return CHILD_FAILED;
	close(basics_pipe[0]);
	close(basics_pipe[1]);
	return CHILD_OK;
}

UNIT_TEST(test_seccomp_allows_fd_io_memory_and_time_in_every_class)
{
	if (pipe2(basics_pipe, O_CLOEXEC) < 0)
		UNIT_FAIL("pipe2: %s", strerror(errno));
	for (unsigned c = 0; c < SECCOMP_N_CLASSES; c++) {
		int status = run_filtered((enum seccomp_class)c, &no_fds, child_allowed_basics);
		if (!exited_ok(status))
			UNIT_FAIL("class %s: wait status %#x",
				  seccomp_class_name((enum seccomp_class)c), status);
	}
	close(basics_pipe[0]);
	close(basics_pipe[1]);
}

static int child_pipe(void)
{
	int fds[2];
	return pipe2(fds, O_CLOEXEC) == 0 ? CHILD_OK : CHILD_FAILED;
}

UNIT_TEST(test_seccomp_vcpu_and_iothread_cannot_make_new_fds_of_other_kinds)
{
	UNIT_ASSERT(exited_ok(run_filtered(SECCOMP_CLASS_MAIN, &no_fds, child_pipe)));
	UNIT_ASSERT(killed_by_sigsys(run_filtered(SECCOMP_CLASS_VCPU, &no_fds, child_pipe)));
	UNIT_ASSERT(killed_by_sigsys(run_filtered(SECCOMP_CLASS_IOTHREAD, &no_fds, child_pipe)));
}

static int child_exec_mapping(void)
{
	(void)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return CHILD_OK;
}

UNIT_TEST(test_seccomp_refuses_executable_memory)
{
	for (unsigned c = 0; c < SECCOMP_N_CLASSES; c++)
		UNIT_ASSERT(killed_by_sigsys(
		    run_filtered((enum seccomp_class)c, &no_fds, child_exec_mapping)));
}

static int child_unix_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CHILD_FAILED;
	close(fd);
	return CHILD_OK;
}

static int child_inet_socket(void)
{
	(void)socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return CHILD_OK;
}

UNIT_TEST(test_seccomp_main_thread_gets_unix_sockets_only)
{
	UNIT_ASSERT(exited_ok(run_filtered(SECCOMP_CLASS_MAIN, &no_fds, child_unix_socket)));
	UNIT_ASSERT(killed_by_sigsys(run_filtered(SECCOMP_CLASS_MAIN, &no_fds, child_inet_socket)));
	UNIT_ASSERT(killed_by_sigsys(run_filtered(SECCOMP_CLASS_VCPU, &no_fds, child_unix_socket)));
}

/* Neither fd is open: an allowed ioctl fails with EBADF, a forbidden one kills. */
static int child_kvm_run_on_own_fd(void)
{
	return ioctl(FD_NOT_OPEN_A, KVM_RUN, 0) < 0 && errno == EBADF ? CHILD_OK : CHILD_FAILED;
}

static int child_kvm_run_on_other_fd(void)
{
	(void)ioctl(FD_NOT_OPEN_B, KVM_RUN, 0);
	return CHILD_OK;
}

static int child_terminal_injection(void)
{
	char c = 'x';
	(void)ioctl(0, TIOCSTI, &c);
	return CHILD_OK;
}

UNIT_TEST(test_seccomp_kvm_run_only_on_the_vcpus_own_fd)
{
	const struct seccomp_params vcpu = {.vm_fd = -1, .vcpu_fd = FD_NOT_OPEN_A};
	UNIT_ASSERT(exited_ok(run_filtered(SECCOMP_CLASS_VCPU, &vcpu, child_kvm_run_on_own_fd)));
	UNIT_ASSERT(
	    killed_by_sigsys(run_filtered(SECCOMP_CLASS_VCPU, &vcpu, child_kvm_run_on_other_fd)));
	UNIT_ASSERT(
	    killed_by_sigsys(run_filtered(SECCOMP_CLASS_MAIN, &vcpu, child_kvm_run_on_other_fd)));
	UNIT_ASSERT(
	    killed_by_sigsys(run_filtered(SECCOMP_CLASS_MAIN, &vcpu, child_terminal_injection)));
}

static int child_fork(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	return CHILD_OK;
}

UNIT_TEST(test_seccomp_main_thread_cannot_fork)
{
	UNIT_ASSERT(killed_by_sigsys(run_filtered(SECCOMP_CLASS_MAIN, &no_fds, child_fork)));
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while (mem && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, mem);
	if (mem)
		fclose(mem);
	fclose(f);
	return buf;
}

/* docs/seccomp.md carries the tables seccomp_doc_write prints; with
 * PETREL_UPDATE_DOCS=1 this test rewrites them. */
UNIT_TEST(test_seccomp_doc_matches_the_allowlist)
{
	char *doc = read_file(DOC_PATH);
	if (!doc)
		UNIT_SKIP("%s not found (run from the project root)", DOC_PATH);
	char *begin = strstr(doc, DOC_BEGIN);
	char *end = begin ? strstr(begin, DOC_END) : NULL;
	if (!begin || !end) {
		free(doc);
		UNIT_FAIL("%s lacks the generated section markers", DOC_PATH);
	}
	begin += strlen(DOC_BEGIN);
	char *gen = NULL;
	size_t gen_len = 0;
	FILE *mem = open_memstream(&gen, &gen_len);
	if (!mem) {
		free(doc);
		UNIT_FAIL("open_memstream");
	}
	seccomp_doc_write(mem);
	fclose(mem);
	bool same = (size_t)(end - begin) == gen_len && memcmp(begin, gen, gen_len) == 0;
	const char *update = getenv("PETREL_UPDATE_DOCS");
	if (!same && update && strcmp(update, "1") == 0) {
		FILE *out = fopen(DOC_PATH, "we");
		if (out) {
			fwrite(doc, 1, (size_t)(begin - doc), out);
			fwrite(gen, 1, gen_len, out);
			fputs(end, out);
			fclose(out);
			same = true;
		}
	}
	free(gen);
	free(doc);
	if (!same)
		UNIT_FAIL("%s is out of date: run PETREL_UPDATE_DOCS=1 build/tests/test_seccomp",
			  DOC_PATH);
}

UNIT_MAIN("seccomp")
