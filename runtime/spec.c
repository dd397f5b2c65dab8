/* config.json -> create message, file copies and VM size (spec.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/hugepages.h"
#include "runtime/spec.h"

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int strv_copy(const struct oci_strv *in, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!in->v)
		return 0;
	char **v = calloc(in->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		if (!(v[i] = strdup(in->v[i]))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return -ENOMEM;
		}
	}
	*out = v;
	*n = in->n;
	return 0;
}

int spec_process_to_agent(const struct oci_process *p, struct agent_process *out, struct perr *err)
{
	memset(out, 0, sizeof(*out));
	if (strv_copy(&p->args, &out->args, &out->nargs) < 0 ||
	    strv_copy(&p->env, &out->env, &out->nenv) < 0)
		return perr_set(err, -ENOMEM, "process");
	out->cwd = xstrdup(p->cwd ? p->cwd : "/");
	out->uid = p->user.uid;
	out->gid = p->user.gid;
	out->has_umask = p->user.has_umask;
	out->umask = p->user.umask;
	if (p->user.n_additional_gids) {
		out->gids = calloc(p->user.n_additional_gids, sizeof(*out->gids));
		if (!out->gids)
			return perr_set(err, -ENOMEM, "process");
		memcpy(out->gids, p->user.additional_gids,
		       p->user.n_additional_gids * sizeof(*out->gids));
		out->ngids = p->user.n_additional_gids;
	}
	out->terminal = p->terminal;
	if (p->has_console_size) {
		out->rows = (uint16_t)p->console_height;
		out->cols = (uint16_t)p->console_width;
	}
	if (p->n_rlimits) {
		out->rlimits = calloc(p->n_rlimits, sizeof(*out->rlimits));
		if (!out->rlimits)
			return perr_set(err, -ENOMEM, "process");
		for (size_t i = 0; i < p->n_rlimits; i++)
			out->rlimits[i] = (struct agent_rlimit){
			    p->rlimits[i].resource, p->rlimits[i].soft, p->rlimits[i].hard};
		out->nrlimits = p->n_rlimits;
	}
	if (p->capabilities.present) {
		out->has_caps = true;
		out->cap_bounding = p->capabilities.bounding.mask;
		out->cap_effective = p->capabilities.effective.mask;
		out->cap_inheritable = p->capabilities.inheritable.mask;
		out->cap_permitted = p->capabilities.permitted.mask;
		out->cap_ambient = p->capabilities.ambient.mask;
	}
	out->no_new_privileges = p->no_new_privileges;
	out->has_oom_score_adj = p->has_oom_score_adj;
	out->oom_score_adj = p->oom_score_adj;
	return 0;
}

static bool mount_is_bind(const struct oci_mount *m)
{
	if (m->type && !strcmp(m->type, "bind"))
		return true;
	for (size_t i = 0; i < m->options.n; i++)
		if (!strcmp(m->options.v[i], "bind") || !strcmp(m->options.v[i], "rbind"))
			return true;
	return false;
}

enum bind_kind { BIND_COPY, BIND_SHM_TMPFS };

/* What petrel does with a bind mount it can honour; an error for the rest. */
static int classify_bind(const struct oci_mount *m, size_t i, enum bind_kind *kind,
			 struct perr *err)
{
	struct stat st;
	const char *src = m->source ? m->source : "";
	if (stat(src, &st) < 0)
		return perr_set(err, -errno, "config.json: mounts[%zu]: bind mount source \"%s\"",
				i, src);
	if (S_ISREG(st.st_mode) && st.st_size <= SPEC_COPY_MAX_BYTES) {
		*kind = BIND_COPY;
		return 0;
	}
	if (S_ISDIR(st.st_mode) && !strcmp(m->destination, "/dev/shm")) {
		*kind = BIND_SHM_TMPFS; /* podman's per-container shm: the guest has its own */
		return 0;
	}
	return perr_setx(err, -ENOTSUP,
			 "config.json: mounts[%zu]: bind mount of host %s \"%s\" on \"%s\" is not "
			 "supported (no filesystem is shared with the VM yet; petrel copies only "
			 "regular files up to %u bytes into the container's disk)",
			 i, S_ISDIR(st.st_mode) ? "directory" : "path", src, m->destination,
			 SPEC_COPY_MAX_BYTES);
}

static int add_mount(struct agent_create *c, const char *dest, const char *type, const char *src,
		     const struct oci_strv *opts)
{
	struct agent_mount *nm = realloc(c->mounts, (c->nmounts + 1) * sizeof(*nm));
	if (!nm)
		return -ENOMEM;
	c->mounts = nm;
	struct agent_mount *am = &c->mounts[c->nmounts++];
	memset(am, 0, sizeof(*am));
	am->destination = xstrdup(dest);
	am->type = xstrdup(type);
	am->source = xstrdup(src ? src : type);
	if (opts && strv_copy(opts, &am->options, &am->noptions) < 0)
		return -ENOMEM;
	return am->destination && am->type && am->source ? 0 : -ENOMEM;
}

static int add_copy(struct spec_plan *plan, const struct oci_mount *m)
{
	struct spec_file_copy *nc = realloc(plan->copies, (plan->n_copies + 1) * sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	plan->copies = nc;
	nc[plan->n_copies].source = xstrdup(m->source);
	nc[plan->n_copies].destination = xstrdup(m->destination);
	plan->n_copies++;
	return 0;
}

static int build_mounts(const struct oci_config *cfg, struct spec_plan *plan, struct perr *err)
{
	struct agent_create *c = &plan->create.u.create;
	static char *shm_opts_v[] = {"nosuid", "nodev", "noexec", "mode=1777", "size=65536k", NULL};
	static const struct oci_strv shm_opts = {5, shm_opts_v};
	/* The check below sees the binds petrel handles as harmless tmpfs mounts, so
	 * that its messages keep the mounts' indexes. */
	struct oci_mount *checked = calloc(cfg->n_mounts ? cfg->n_mounts : 1, sizeof(*checked));
	if (!checked)
		return perr_set(err, -ENOMEM, "mounts");
	int rc = 0;
	for (size_t i = 0; i < cfg->n_mounts && rc == 0; i++) {
		const struct oci_mount *m = &cfg->mounts[i];
		checked[i] = *m;
		if (!mount_is_bind(m))
			continue;
		enum bind_kind kind = BIND_COPY;
		rc = classify_bind(m, i, &kind, err);
		if (rc < 0)
			break;
		checked[i].type = "tmpfs";
		checked[i].options = (struct oci_strv){0, NULL};
		if (kind == BIND_COPY && add_copy(plan, m) < 0)
			rc = perr_set(err, -ENOMEM, "mounts");
	}
	if (rc == 0) {
		struct oci_config shallow = *cfg;
		shallow.mounts = checked;
		rc = oci_config_check_supported(&shallow, err);
	}
	free(checked);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct oci_mount *m = &cfg->mounts[i];
		int r = 0;
		if (mount_is_bind(m)) {
			struct stat st;
			if (!strcmp(m->destination, "/dev/shm") && m->source &&
			    stat(m->source, &st) == 0 && S_ISDIR(st.st_mode))
				r = add_mount(c, "/dev/shm", "tmpfs", "shm", &shm_opts);
			if (r < 0)
				return perr_set(err, -ENOMEM, "mounts");
			continue;
		}
		const char *type = m->type;
		/* The guest mounts the unified hierarchy: cgroup v1 asks for it too. */
		if (type && !strcmp(type, "cgroup"))
			type = "cgroup2";
		r = add_mount(c, m->destination, type, m->source, &m->options);
		if (r < 0)
			return perr_set(err, -ENOMEM, "mounts");
	}
	return 0;
}

static int annotation_u(const struct oci_config *cfg, const char *key, unsigned max, unsigned *out,
			struct perr *err)
{
	const char *v = oci_annotation(cfg, key);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || *end || end == v || n < 1 || n > max)
		return perr_setx(
		    err, -EINVAL,
		    "config.json: annotations[\"%s\"]: \"%s\" is not a number in 1..%u", key, v,
		    max);
	*out = (unsigned)n;
	return 1;
}

static int annotation_path(const struct oci_config *cfg, const char *key, char *dst, size_t size,
			   struct perr *err)
{
	const char *v = oci_annotation(cfg, key);
	if (!v)
		return 0;
	if (v[0] != '/' || strlen(v) >= size)
		return perr_setx(err, -EINVAL,
				 "config.json: annotations[\"%s\"]: \"%s\" is not an absolute path",
				 key, v);
	if (access(v, R_OK) < 0)
		return perr_set(err, -errno, "config.json: annotations[\"%s\"]: %s", key, v);
	snprintf(dst, size, "%s", v);
	return 1;
}

static int plan_size(const struct oci_config *cfg, const struct petrel_conf *conf,
		     struct spec_plan *plan, struct perr *err)
{
	const struct oci_resources *res = cfg->linux_.has_resources ? &cfg->linux_.resources : NULL;
	plan->cpus = conf->cpus;
	if (res && res->cpu.quota.set && res->cpu.quota.value > 0) {
		uint64_t period =
		    res->cpu.period.set && res->cpu.period.value ? res->cpu.period.value : 100000;
		uint64_t n = ((uint64_t)res->cpu.quota.value + period - 1) / period;
		plan->cpus = n < 1 ? 1 : n > 254 ? 254 : (unsigned)n;
	}
	int rc = annotation_u(cfg, SPEC_ANN_CPUS, 254, &plan->cpus, err);
	if (rc < 0)
		return rc;

	plan->memory = conf->memory;
	if (res && res->memory.limit.set && res->memory.limit.value > 0) {
		uint64_t m = (uint64_t)res->memory.limit.value + conf->memory_overhead;
		plan->memory = m < SPEC_MIN_MEMORY ? SPEC_MIN_MEMORY : m;
	}
	const char *mem = oci_annotation(cfg, SPEC_ANN_MEMORY);
	if (mem && petrel_parse_size(mem, &plan->memory) < 0)
		return perr_setx(err, -EINVAL,
				 "config.json: annotations[\"%s\"]: \"%s\" is not a size (512, "
				 "512M, 1G)",
				 SPEC_ANN_MEMORY, mem);
	if (plan->memory < SPEC_MIN_MEMORY)
		return perr_setx(err, -EINVAL,
				 "config.json: annotations[\"%s\"]: \"%s\" is below the minimum of "
				 "256 MiB",
				 SPEC_ANN_MEMORY, mem ? mem : "");
	plan->memory = (plan->memory + (1ull << 20) - 1) & ~((1ull << 20) - 1);

	const char *machine = oci_annotation(cfg, SPEC_ANN_MACHINE);
	if (!machine)
		machine = conf->machine;
	if (strcmp(machine, "microvm") != 0)
		return perr_setx(
		    err, -EINVAL,
		    "config.json: annotations[\"%s\"]: machine \"%s\" is not supported; "
		    "allowed: microvm",
		    SPEC_ANN_MACHINE, machine);
	snprintf(plan->machine, sizeof(plan->machine), "%s", machine);
	const char *huge = oci_annotation(cfg, SPEC_ANN_HUGEPAGES);
	if (huge) {
		if (hugepages_parse(huge, &plan->hugepage_size) < 0)
			return perr_setx(
			    err, -EINVAL,
			    "config.json: annotations[\"%s\"]: \"%s\" is not a huge page "
			    "size; allowed: 2M, 1G",
			    SPEC_ANN_HUGEPAGES, huge);
		/* -mem-path wants whole pages. */
		plan->memory = (plan->memory + plan->hugepage_size - 1) / plan->hugepage_size *
			       plan->hugepage_size;
	}
	return 0;
}

static int plan_guest(const struct oci_config *cfg, const struct petrel_conf *conf,
		      struct spec_plan *plan, struct perr *err)
{
	int rc = annotation_path(cfg, SPEC_ANN_KERNEL, plan->kernel, sizeof(plan->kernel), err);
	if (rc < 0)
		return rc;
	if (!rc)
		snprintf(plan->kernel, sizeof(plan->kernel), "%s", conf->kernel);
	rc = annotation_path(cfg, SPEC_ANN_INITRD, plan->initrd, sizeof(plan->initrd), err);
	if (rc < 0)
		return rc;
	if (!rc)
		snprintf(plan->initrd, sizeof(plan->initrd), "%s", conf->initrd);
	if (!plan->kernel[0])
		return perr_setx(err, -ENOENT,
				 "no guest kernel: set kernel in %s or the annotation %s",
				 conf->path[0] ? conf->path : PETREL_CONF_DEFAULT, SPEC_ANN_KERNEL);
	if (!plan->initrd[0])
		return perr_setx(err, -ENOENT,
				 "no agent initramfs: set initrd in %s or the annotation %s",
				 conf->path[0] ? conf->path : PETREL_CONF_DEFAULT, SPEC_ANN_INITRD);
	return 0;
}

static int plan_root(const struct oci_config *cfg, const char *bundle, struct spec_plan *plan,
		     struct perr *err)
{
	int rc = annotation_path(cfg, SPEC_ANN_ROOTFS, plan->rootfs_image,
				 sizeof(plan->rootfs_image), err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		const char *p = cfg->root.path;
		int n = p[0] == '/' ? snprintf(plan->rootfs_dir, sizeof(plan->rootfs_dir), "%s", p)
				    : snprintf(plan->rootfs_dir, sizeof(plan->rootfs_dir), "%s/%s",
					       bundle, p);
		if (n < 0 || (size_t)n >= sizeof(plan->rootfs_dir))
			return perr_setx(err, -ENAMETOOLONG, "config.json: root.path: too long");
		struct stat st;
		if (stat(plan->rootfs_dir, &st) < 0)
			return perr_set(err, -errno, "config.json: root.path: %s",
					plan->rootfs_dir);
		if (!S_ISDIR(st.st_mode))
			return perr_setx(err, -ENOTDIR,
					 "config.json: root.path: %s is not a directory",
					 plan->rootfs_dir);
	}
	struct agent_create *c = &plan->create.u.create;
	c->root_device = strdup("/dev/vda");
	c->root_fstype = strdup("ext4");
	c->root_readonly = cfg->root.readonly;
	return c->root_device && c->root_fstype ? 0 : perr_set(err, -ENOMEM, "root");
}

static int plan_namespaces(const struct oci_config *cfg, struct agent_create *c)
{
	/* network, user and time stay with the VM: it is the isolation boundary. */
	c->namespaces = AGENT_NS_MOUNT;
	for (size_t i = 0; i < cfg->linux_.n_namespaces; i++) {
		switch (cfg->linux_.namespaces[i].type) {
		case OCI_NS_PID:
			c->namespaces |= AGENT_NS_PID;
			break;
		case OCI_NS_UTS:
			c->namespaces |= AGENT_NS_UTS;
			break;
		case OCI_NS_IPC:
			c->namespaces |= AGENT_NS_IPC;
			break;
		case OCI_NS_CGROUP:
			c->namespaces |= AGENT_NS_CGROUP;
			break;
		default:
			break;
		}
	}
	if (cfg->hostname && cfg->hostname[0] && (c->namespaces & AGENT_NS_UTS))
		c->hostname = strdup(cfg->hostname);
	return 0;
}

int spec_plan_build(const struct oci_config *cfg, const char *bundle,
		    const struct petrel_conf *conf, struct spec_plan *plan, struct perr *err)
{
	memset(plan, 0, sizeof(*plan));
	plan->create.type = AGENT_MSG_CREATE;
	struct agent_create *c = &plan->create.u.create;
	/* Hooks that run inside the container's namespaces would run in the guest,
	 * where the host's hook binaries are not. */
	if (oci_hooks(cfg, OCI_HOOK_CREATE_CONTAINER)->n)
		return perr_setx(
		    err, -ENOTSUP,
		    "config.json: hooks.createContainer: not supported (these hooks run "
		    "in the container's namespaces, which are inside the VM)");
	if (oci_hooks(cfg, OCI_HOOK_START_CONTAINER)->n)
		return perr_setx(
		    err, -ENOTSUP,
		    "config.json: hooks.startContainer: not supported (these hooks run "
		    "in the container's namespaces, which are inside the VM)");
	int rc;
	if ((rc = plan_size(cfg, conf, plan, err)) < 0 ||
	    (rc = plan_guest(cfg, conf, plan, err)) < 0 ||
	    (rc = plan_root(cfg, bundle, plan, err)) < 0 || (rc = build_mounts(cfg, plan, err)) < 0)
		return rc;
	plan_namespaces(cfg, c);
	if (strv_copy(&cfg->linux_.masked_paths, &c->masked_paths, &c->nmasked) < 0 ||
	    strv_copy(&cfg->linux_.readonly_paths, &c->readonly_paths, &c->nreadonly) < 0)
		return perr_set(err, -ENOMEM, "paths");
	if (cfg->linux_.sysctl.n) {
		c->sysctl = calloc(cfg->linux_.sysctl.n, sizeof(*c->sysctl));
		if (!c->sysctl)
			return perr_set(err, -ENOMEM, "sysctl");
		for (size_t i = 0; i < cfg->linux_.sysctl.n; i++) {
			c->sysctl[i].key = xstrdup(cfg->linux_.sysctl.items[i].key);
			c->sysctl[i].value = xstrdup(cfg->linux_.sysctl.items[i].value);
		}
		c->nsysctl = cfg->linux_.sysctl.n;
	}
	return spec_process_to_agent(&cfg->process, &c->process, err);
}

void spec_plan_free(struct spec_plan *plan)
{
	agent_msg_free(&plan->create);
	for (size_t i = 0; i < plan->n_copies; i++) {
		free(plan->copies[i].source);
		free(plan->copies[i].destination);
	}
	free(plan->copies);
	plan->copies = NULL;
	plan->n_copies = 0;
}
