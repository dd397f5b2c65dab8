/*
 * petrel-agent: PID 1 of the guest. It mounts the container's root disk, builds
 * the container as runc would for what makes sense inside a VM, and relays its
 * stdio and exit status over vsock (docs/agent-protocol.md).
 *
 *   main.c       PID-1 duties: early mounts, leaving the initramfs root, power off
 *   server.c     the event loop: connections, requests, stdio relay, exit reports
 *   container.c  the container: root disk, namespaces, pivot_root, mounts, /dev
 *   network.c    the VM's network interfaces, from create's `network` object
 *   process.c    the last steps of every container process: tty, user, caps, exec
 *   seccomp.c    create's `seccomp` profile, compiled with libseccomp, loaded before exec
 */
#ifndef PETREL_AGENT_H
#define PETREL_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/agent-proto.h"
#include "common/error.h"

/* Where the agent mounts the container's root disk (its own mount namespace). */
#define AGENT_ROOTFS_DIR "/run/petrel/rootfs"
/* How long a child may take to set up before create, start or exec gives up. */
#define AGENT_SETUP_TIMEOUT_MS 30000

/* The agent's end of a process it spawned. */
struct spawned {
	pid_t pid;
	int sync_fd;   /* create: kept until start; -1 once the process runs */
	int stdin_fd;  /* the pipe's write end, or a dup of the terminal master */
	int stdout_fd; /* the pipe's read end, or the terminal master */
	int stderr_fd; /* the pipe's read end, -1 with a terminal */
	bool terminal;
};

void spawned_close(struct spawned *sp);

/* ---- server.c ---- */

/* Serves vsock `port` until a shutdown request has been carried out (then
 * returns 0, and the caller powers the VM off) or a fatal error. */
int server_run(uint32_t port, struct perr *err);

/* ---- container.c ---- */

/* Mounts the root disk at AGENT_ROOTFS_DIR (read-write unless the disk is read-only). */
int container_mount_rootfs(const struct agent_create *c, struct perr *err);
void container_unmount_rootfs(void);
/* Forks the container's init: new namespaces, pivot_root, mounts, then the process
 * set-up; returns when it waits for start. own_pidns_fd is the agent's pid namespace. */
struct agent_seccomp;
/* seccomp (NULL for none) is loaded into the process before it execs. */
int container_spawn_init(const struct agent_create *c, const struct agent_seccomp *seccomp,
			 int own_pidns_fd, struct spawned *sp, struct perr *err);
/* Lets the init exec its program; returns once execve succeeded. */
int container_start(struct spawned *sp, struct perr *err);
/* Forks a process inside the namespaces of init_pid and execs it. */
int container_spawn_exec(pid_t init_pid, const struct agent_process *p,
			 const struct agent_seccomp *seccomp, int own_pidns_fd, struct spawned *sp,
			 struct perr *err);

/* ---- seccomp.c ---- */

/* Compiles create's `seccomp` object (docs/agent-protocol.md); *out is NULL
 * without one. Errors name the field: "seccomp.syscalls[3].action: ...". */
int agent_seccomp_decode(const void *payload, size_t len, struct agent_seccomp **out,
			 struct perr *err);
void agent_seccomp_free(struct agent_seccomp *sc);
/* In the child: loads the filter (NULL: nothing); a failure goes to child_fail. */
void agent_seccomp_load(const struct agent_seccomp *sc, int sync_fd);

/* ---- network.c ---- */

#define AGENT_NET_MAX_IFACES 8
#define AGENT_NET_MAX_ADDRS  16
#define AGENT_NET_MAX_ROUTES 64

struct agent_net_addr {
	int family;	   /* AF_INET or AF_INET6 */
	uint8_t bytes[16]; /* network order */
	unsigned prefixlen;
};

struct agent_net_iface {
	uint8_t mac[6]; /* finds the interface: the MAC the VMM gave it */
	char name[16];	/* IFNAMSIZ; "" keeps the kernel's name */
	uint32_t mtu;	/* 0 keeps the kernel's */
	size_t naddrs;
	struct agent_net_addr addrs[AGENT_NET_MAX_ADDRS];
};

struct agent_net_route {
	struct agent_net_addr dst; /* prefixlen 0: default */
	bool has_gateway;
	struct agent_net_addr gateway;
	int iface; /* index into interfaces */
	bool has_metric;
	uint32_t metric;
};

/* create's `network` object (docs/agent-protocol.md); present is false without one. */
struct agent_network {
	bool present;
	size_t nifaces;
	struct agent_net_iface ifaces[AGENT_NET_MAX_IFACES];
	size_t nroutes;
	struct agent_net_route routes[AGENT_NET_MAX_ROUTES];
};

/* Reads the `network` field of a create payload that agent_msg_decode accepted.
 * Errors name the field: "network.interfaces[0].addresses[1]: …". */
int network_decode(const void *payload, size_t len, struct agent_network *net, struct perr *err);
/* Applies it over rtnetlink: finds each interface by MAC, renames it, sets
 * its MTU, brings it up, adds its addresses, then the routes. Idempotent. */
int network_configure(const struct agent_network *net, struct perr *err);

/* ---- process.c (runs in the child) ---- */

/* What the child has in hand when it finishes a process. */
struct child_ctx {
	int sync_fd;
	const struct agent_process *process;
	const struct agent_seccomp *seccomp; /* NULL: none */
	bool wait_start;   /* create: wait for the agent's start byte before execve */
	bool bind_console; /* create with a terminal: the pty slave becomes /dev/console */
};

/* Reports a set-up failure to the agent and exits; the child's only way out. */
void child_fail(int sync_fd, int errnum, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* The common tail: terminal, rlimits, user, capabilities, cwd, execve. */
void child_finish_process(const struct child_ctx *ctx) __attribute__((noreturn));
/* Child side of the sync socket: moves fds into place and closes everything else. */
int child_setup_fds(int sync_fd, const int stdio[3]);

/* The sync channel's messages (SOCK_SEQPACKET, one byte of kind then text). */
#define SYNC_READY 'R' /* set up; carries the terminal master with SCM_RIGHTS */
#define SYNC_ERROR 'E' /* followed by the message */
#define SYNC_START 'S' /* agent to child: execve now */

#endif
