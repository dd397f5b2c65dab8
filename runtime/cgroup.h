/*
 * The VMM's host cgroup (cgroup v2 only): linux.cgroupsPath names it, the
 * VMM (the container's pid) is placed in it, the linux.resources that mean
 * something for a VM's host process are applied to it, and delete removes it.
 *
 *   cgroupfs:           "/machine/ctr-1" or "machine/ctr-1" → /sys/fs/cgroup/machine/ctr-1
 *   --systemd-cgroup:   "machine.slice:libpod:ID" → /sys/fs/cgroup/machine.slice/libpod-ID.scope
 *                       ("a-b.slice" nests as a.slice/a-b.slice; an empty slice is
 *                       system.slice). petrel does not talk to systemd: it makes
 *                       the same directory under systemd's hierarchy itself.
 *
 * What goes to the host (docs/runtime.md, "The VMM's cgroup"):
 *   memory.max  guest memory + CGROUP_VMM_OVERHEAD, only when memory.limit is set
 *   cpu.max     cpu.quota cpu.period (the vCPU threads' CPU time)
 *   cpu.weight  from cpu.shares, with runc's conversion
 * pids.limit is the guest's (the VMM has a fixed set of threads); it is not a
 * host limit.
 */
#ifndef PETREL_RUNTIME_CGROUP_H
#define PETREL_RUNTIME_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "oci/oci.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
/* What the VMM process needs beyond the guest's RAM: its own code, heap,
 * thread stacks and device buffers. */
#define CGROUP_VMM_OVERHEAD (64ull << 20)

/* The host-side limits; a zero or negative member is "leave as is". */
struct cgroup_limits {
	uint64_t memory_max; /* bytes */
	int64_t cpu_quota;   /* µs per period; -1 unlimited ("max") */
	bool has_cpu_quota;
	uint64_t cpu_period; /* µs, default 100000 */
	uint64_t cpu_weight; /* 1..10000 */
};

/* True when CGROUP_ROOT is a cgroup v2 (unified) hierarchy. */
bool cgroup_v2_available(void);

/* The cgroup directory for cgroupsPath (see above); errors name
 * linux.cgroupsPath. */
int cgroup_resolve(const char *cgroups_path, bool systemd, const char *id, char *out, size_t size,
		   struct perr *err);

/* The host limits for res (NULL: none) and a VM of guest_memory bytes;
 * runc's shares → weight conversion. */
void cgroup_limits_from_resources(const struct oci_resources *res, uint64_t guest_memory,
				  struct cgroup_limits *out);

/* Makes the directory (and its parents), enabling the cpu, memory and pids
 * controllers on the way down where the host has them. *made tells whether
 * the leaf is new (only a new one is removed on failure or delete). */
int cgroup_create(const char *path, bool *made, struct perr *err);
/* Writes the limits that are set; errors name the file. */
int cgroup_apply(const char *path, const struct cgroup_limits *l, struct perr *err);
/* Moves pid into the cgroup (cgroup.procs). */
int cgroup_add_pid(const char *path, int pid, struct perr *err);
/* Removes the directory (its processes are gone); retried briefly while the
 * kernel still counts a dying VMM; 0 when already absent. */
int cgroup_remove(const char *path, struct perr *err);

/* The record in the state directory: ROOT/ID/cgroup holds
 * "PATH\nGUEST_MEMORY\nMADE\n", PATH "-" (loaded as "") without a cgroup. */
int cgroup_record_save(const char *state_dir, const char *path, uint64_t guest_memory, bool made,
		       struct perr *err);
/* -ENOENT without a record (a container made by an older petrel). */
int cgroup_record_load(const char *state_dir, char *path, size_t size, uint64_t *guest_memory,
		       bool *made);

/* create: with linux.cgroupsPath set and cgroup v2 present, makes the
 * cgroup, applies linux.resources, moves pid (the VMM) in and records it in
 * state_dir. Without a cgroupsPath (or without cgroup v2, logged) nothing. */
int cgroup_setup_vmm(const struct oci_config *cfg, bool systemd, const char *id,
		     const char *state_dir, uint64_t guest_memory, int pid, struct perr *err);
/* delete (and a failed create): removes the recorded cgroup if petrel made
 * it. Failures are logged. */
void cgroup_teardown(const char *state_dir);

#endif
