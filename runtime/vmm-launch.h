/* Starting petrel-vmm for a container: its command line and the fork/exec. */
#ifndef PETREL_RUNTIME_VMM_LAUNCH_H
#define PETREL_RUNTIME_VMM_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "runtime/spec.h"

/* The notify pipe's and the tap's fd numbers in the VMM. */
#define VMM_LAUNCH_NOTIFY_FD 3
#define VMM_LAUNCH_TAP_FD    4
/* The guest's vsock CID; the host reaches it through agent.sock, so every
 * container can use the same one. */
#define VMM_LAUNCH_GUEST_CID 3

struct vmm_launch {
	const char *vmm;       /* the petrel-vmm binary */
	const char *state_dir; /* ROOT/ID */
	const char *id;
	const struct spec_plan *plan;
	const char *image; /* the root disk */
	const char *kernel_append;
	bool debug;	      /* agent debug logging on the guest console */
	const char *mem_path; /* a hugetlbfs mount for the guest's RAM, or NULL */
	bool net;	      /* a tap at VMM_LAUNCH_TAP_FD, for a virtio-net device with mac */
	uint8_t mac[6];
	const char *incoming; /* a VM template (vm-template.h) to restore, or NULL */
	bool template_build;  /* the VM a template is made from: no container relay */
};

/* The argv (NULL-terminated, malloc'd; free with vmm_argv_free). */
int vmm_launch_argv(const struct vmm_launch *l, char ***argv, struct perr *err);
void vmm_argv_free(char **argv);

/* The petrel-vmm to run: petrel.conf's vmm, $PETREL_VMM, next to this
 * program (/proc/self/exe), then $PATH. */
int vmm_find_binary(const char *conf_vmm, char *out, size_t size, struct perr *err);

/* Forks and execs argv. The child gets tty_fd (when >= 0) as stdin, stdout,
 * stderr and controlling terminal in a new session; otherwise it inherits
 * 0-2. notify_fd becomes VMM_LAUNCH_NOTIFY_FD, tap_fd (when >= 0)
 * VMM_LAUNCH_TAP_FD; every other fd is closed. */
int vmm_spawn(char **argv, int tty_fd, int notify_fd, int tap_fd, pid_t *pid, struct perr *err);

#endif
