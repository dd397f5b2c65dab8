/*
 * Seccomp filters for petrel-vmm's threads: one allowlist per thread class,
 * every entry with the reason it is there (seccomp.c, the only list; the
 * tables in docs/seccomp.md are generated from it by seccomp_doc_write and
 * checked by tests/unit/test_seccomp.c). Anything else kills the whole
 * process with SIGSYS (SCMP_ACT_KILL_PROCESS).
 *
 * A filter applies to the thread that installs it and to the threads it
 * creates afterwards, and filters stack. So each thread installs its own
 * class's filter itself, on its own thread, without TSYNC, and the main
 * thread installs its filter after the vCPU threads and iothreads exist:
 * each thread ends with exactly its class's filter (see vm_install_seccomp).
 */
#ifndef PETREL_SECCOMP_H
#define PETREL_SECCOMP_H

#include <stdio.h>

#include "../../common/error.h"

enum seccomp_class {
	SECCOMP_CLASS_MAIN,	/* main loop: QMP, chardevs, devices without an iothread */
	SECCOMP_CLASS_VCPU,	/* vcpuN: KVM_RUN and the MMIO / port I/O handlers */
	SECCOMP_CLASS_IOTHREAD, /* -object iothread: device queues */
};
#define SECCOMP_N_CLASSES 3

/* What the argument filters compare with. */
struct seccomp_params {
	int vm_fd;   /* the KVM VM fd; -1: no ioctls on a VM fd allowed */
	int vcpu_fd; /* vCPU class: the only fd KVM_RUN may be called on */
};

/* "main", "vcpu", "iothread". */
const char *seccomp_class_name(enum seccomp_class cls);
/* Builds the filter without loading it: 0, or a negative errno with err set. */
int seccomp_check(enum seccomp_class cls, const struct seccomp_params *p, struct perr *err);
/* Loads the filter on the calling thread only (no TSYNC). */
int seccomp_install(enum seccomp_class cls, const struct seccomp_params *p, struct perr *err);
/* The first name in the allowlist that libseccomp does not know on this
 * architecture (a typo, or a libseccomp too old), copied into buf, or NULL.
 * Such names are left out of the filters. */
const char *seccomp_unknown_syscall(char *buf, size_t size);
/* The allowlists as Markdown tables, one per class (docs/seccomp.md). */
void seccomp_doc_write(FILE *out);
/*
 * Test hook (tests/vmm/seccomp.sh): when the environment variable
 * PETREL_SECCOMP_SELFTEST names this class ("main", "vcpu", "iothread"),
 * makes a forbidden but harmless system call (a ptrace(PTRACE_PEEKDATA) of
 * the process itself), which the installed filter answers with SIGSYS.
 * Call it right after seccomp_install.
 */
void seccomp_selftest(enum seccomp_class cls);

#endif
