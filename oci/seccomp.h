/*
 * linux.seccomp on its way to the guest: config.json's profile (parsed and
 * checked by oci_config_parse) becomes the `seccomp` member of the agent's
 * create message (docs/agent-protocol.md), which the agent compiles with
 * libseccomp and loads into every container process before execve.
 */
#ifndef PETREL_OCI_SECCOMP_H
#define PETREL_OCI_SECCOMP_H

#include <stddef.h>

#include "common/error.h"
#include "oci/oci.h"

/* What petrel cannot honour is refused with the JSON path:
 * linux.seccomp.flags[N] "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" (the guest's
 * libseccomp has no attribute for it). listenerPath is refused by
 * oci_check_support(). */
int oci_seccomp_check(const struct oci_seccomp *sc, struct perr *err);

/* The profile as the agent's JSON object (same member names as config.json,
 * without the listener): malloc'd, not NUL-terminated beyond *len. */
int oci_seccomp_to_json(const struct oci_seccomp *sc, char **out, size_t *len, struct perr *err);

/* msg (an encoded JSON object) with `"seccomp": {...}` added as its last
 * member; *out is malloc'd. */
int oci_seccomp_add_to_message(const struct oci_seccomp *sc, const char *msg, size_t len,
			       char **out, size_t *out_len, struct perr *err);

#endif
