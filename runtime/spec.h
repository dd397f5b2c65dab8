/*
 * From config.json (oci/) to what petrel builds: the agent's create message,
 * the small host files copied into the rootfs image in place of bind mounts,
 * and the VM's size, kernel and disk (annotations, petrel.conf,
 * linux.resources). No side effects.
 */
#ifndef PETREL_RUNTIME_SPEC_H
#define PETREL_RUNTIME_SPEC_H

#include <limits.h>
#include <stdint.h>

#include "common/agent-proto.h"
#include "oci/oci.h"
#include "runtime/config-file.h"

/* Bind mounts of regular files up to this size are copied into the image. */
#define SPEC_COPY_MAX_BYTES (1u << 20)
#define SPEC_MIN_MEMORY	    (256ull << 20)

#define SPEC_ANN_CPUS	   "io.petrel.vm.cpus"
#define SPEC_ANN_MEMORY	   "io.petrel.vm.memory"
#define SPEC_ANN_MACHINE   "io.petrel.vm.machine"
#define SPEC_ANN_KERNEL	   "io.petrel.vm.kernel"
#define SPEC_ANN_INITRD	   "io.petrel.vm.initrd"
#define SPEC_ANN_HUGEPAGES "io.petrel.vm.hugepages"
#define SPEC_ANN_ROOTFS	   "io.petrel.rootfs"

struct spec_file_copy {
	char *source;	   /* host file */
	char *destination; /* path in the container */
};

struct spec_plan {
	struct agent_msg create; /* AGENT_MSG_CREATE */
	struct spec_file_copy *copies;
	size_t n_copies;
	unsigned cpus;
	uint64_t memory; /* bytes */
	char machine[32];
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char rootfs_dir[PATH_MAX];   /* root.path made absolute; "" with rootfs_image */
	char rootfs_image[PATH_MAX]; /* io.petrel.rootfs: a disk used as it is */
	uint64_t hugepage_size;	     /* io.petrel.vm.hugepages; 0 when none */
};

/* Builds the plan. Errors name the JSON path or the annotation. */
int spec_plan_build(const struct oci_config *cfg, const char *bundle,
		    const struct petrel_conf *conf, struct spec_plan *plan, struct perr *err);
void spec_plan_free(struct spec_plan *plan);

/* A runtime-spec process as the agent wants it (malloc'd copies). */
int spec_process_to_agent(const struct oci_process *p, struct agent_process *out, struct perr *err);

#endif
