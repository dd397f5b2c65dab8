/*
 * What a valid config.json may ask for that petrel cannot give, because the
 * container runs in its own VM: the guest shares no filesystem and no
 * namespace with the host. Refused with the same "config.json: path: ..."
 * messages as the spec checks, so that `petrel create` fails before it has
 * built anything. docs/oci.md lists these rules.
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "oci/json.h"
#include "oci/oci.h"

/* Filesystems the guest kernel makes from nothing. Anything else needs a
 * host device or a host directory. */
static const char *const guest_filesystems[] = {
    "proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "mqueue", "cgroup", "cgroup2",
};
#define GUEST_FILESYSTEMS "proc, sysfs, tmpfs, devtmpfs, devpts, mqueue, cgroup, cgroup2"

static bool is_bind_mount(const struct oci_mount *m)
{
	if (m->type && strcmp(m->type, "bind") == 0)
		return true;
	for (size_t i = 0; i < m->options.n; i++)
		if (strcmp(m->options.v[i], "bind") == 0 || strcmp(m->options.v[i], "rbind") == 0)
			return true;
	return false;
}

static bool is_guest_filesystem(const char *type)
{
	for (size_t i = 0; i < ARRAY_SIZE(guest_filesystems); i++)
		if (strcmp(guest_filesystems[i], type) == 0)
			return true;
	return false;
}

static int check_mount(struct oci_json *j, const struct oci_mount *m)
{
	char q[OCI_QUOTE_MAX], q2[OCI_QUOTE_MAX];
	if (is_bind_mount(m))
		return oci_json_fail(j, -ENOTSUP,
				     "bind mount of host path %s on %s is not supported (no "
				     "filesystem is shared with the VM yet)",
				     oci_json_quote(m->source ? m->source : "", q, sizeof(q)),
				     oci_json_quote(m->destination, q2, sizeof(q2)));
	if (!m->type)
		return oci_json_missing(j, "type", "petrel mounts " GUEST_FILESYSTEMS);
	if (!is_guest_filesystem(m->type)) {
		size_t saved = oci_json_push_key(j, "type");
		int r = oci_json_fail(j, -ENOTSUP,
				      "%s is not supported: it needs a host device or directory; "
				      "petrel mounts " GUEST_FILESYSTEMS,
				      oci_json_quote(m->type, q, sizeof(q)));
		oci_json_pop(j, saved);
		return r;
	}
	return 0;
}

int oci_config_check_supported(const struct oci_config *cfg, struct perr *err)
{
	struct oci_json j;
	char q[OCI_QUOTE_MAX];
	int r = 0;
	oci_json_init(&j, "config.json", err);

	for (size_t i = 0; i < cfg->n_mounts && !r; i++) {
		size_t saved = oci_json_push_key(&j, "mounts");
		oci_json_push_index(&j, i);
		r = check_mount(&j, &cfg->mounts[i]);
		oci_json_pop(&j, saved);
	}

	/* A network namespace path is where the runtime puts the VM's tap;
	 * any other namespace would have to be shared with a host process. */
	const struct oci_linux *lx = &cfg->linux_;
	for (size_t i = 0; i < lx->n_namespaces && !r; i++) {
		const struct oci_namespace *ns = &lx->namespaces[i];
		if (!ns->path || ns->type == OCI_NS_NETWORK)
			continue;
		size_t saved = oci_json_push_key(&j, "linux");
		oci_json_push_key(&j, "namespaces");
		oci_json_push_index(&j, i);
		oci_json_push_key(&j, "path");
		r = oci_json_fail(&j, -ENOTSUP,
				  "joining the existing %s namespace %s is not supported (the "
				  "container runs in its own VM)",
				  oci_ns_type_name(ns->type),
				  oci_json_quote(ns->path, q, sizeof(q)));
		oci_json_pop(&j, saved);
	}

	if (!r && lx->seccomp && lx->seccomp->listener_path) {
		size_t saved = oci_json_push_key(&j, "linux");
		oci_json_push_key(&j, "seccomp");
		oci_json_push_key(&j, "listenerPath");
		r = oci_json_fail(&j, -ENOTSUP,
				  "%s: seccomp notifications cannot leave the VM; not supported",
				  oci_json_quote(lx->seccomp->listener_path, q, sizeof(q)));
		oci_json_pop(&j, saved);
	}
	return r;
}
