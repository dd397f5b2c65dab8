/* Internal to oci/: the spec's lists of allowed names, for checks and for
 * the "allowed: ..." part of messages. */
#ifndef PETREL_OCI_NAMES_H
#define PETREL_OCI_NAMES_H

#include <stdbool.h>
#include <stddef.h>

enum oci_name_table {
	OCI_NAMES_RLIMIT,
	OCI_NAMES_NAMESPACE,
	OCI_NAMES_SECCOMP_ACTION,
	OCI_NAMES_SECCOMP_ARCH,
	OCI_NAMES_SECCOMP_FLAG,
	OCI_NAMES_SECCOMP_OP,
	OCI_NAMES_ROOTFS_PROPAGATION,
};

#define OCI_ALLOWED_MAX 640

bool oci_name_known(enum oci_name_table t, const char *s);
/* "a, b, c" into buf (shortened when buf is too small). */
const char *oci_names_allowed(enum oci_name_table t, char *buf, size_t size);
/* A small dense index for each RLIMIT_* number the spec knows (< 32). */
unsigned oci_rlimit_index(int resource);

#endif
