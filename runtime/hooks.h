/* OCI hooks on the host: each gets the state on stdin and its timeout. */
#ifndef PETREL_RUNTIME_HOOKS_H
#define PETREL_RUNTIME_HOOKS_H

#include "common/error.h"
#include "oci/oci.h"

/* Runs the hooks of one kind in order; the first failure (non-zero exit,
 * signal, timeout) stops and is returned: "hooks.prestart[0] (/bin/x): exit
 * status 1". */
int hooks_run(const struct oci_config *cfg, enum oci_hook_kind kind, const struct oci_state *st,
	      struct perr *err);

#endif
