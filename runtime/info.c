/* state, list, ps, pause/resume, update, features (lifecycle.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "common/cleanup.h"
#include "runtime/container.h"
#include "runtime/lifecycle.h"
#include "runtime/qmp-client.h"

/* The state as callers see it: the live status, and pid 0 once stopped (runc). */
static void state_refresh(const char *root, struct oci_state *st)
{
	st->status = container_status(root, st);
	if (st->status == OCI_STATUS_STOPPED)
		st->pid = 0;
}

int petrel_state(const char *root, const char *id, FILE *out, struct perr *err)
{
	struct oci_state *st = NULL;
	int rc = container_load(root, id, &st, err);
	if (rc < 0)
		return rc;
	state_refresh(root, st);
	st->has_petrel = false;
	autofree char *json = NULL;
	size_t len = 0;
	rc = oci_state_to_json(st, &json, &len, err);
	if (rc == 0)
		fwrite(json, 1, len, out);
	oci_state_free(st);
	return rc;
}

int petrel_list(const char *root, bool json, bool quiet, FILE *out, struct perr *err)
{
	DIR *d = opendir(root);
	if (!d && errno != ENOENT)
		return perr_set(err, -errno, "--root %s", root);
	if (json)
		fputc('[', out);
	else if (!quiet)
		fprintf(out, "%-12s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE",
			"CREATED", "OWNER");
	bool first = true;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct oci_state *st = NULL;
		struct perr lerr = {0};
		if (container_load(root, de->d_name, &st, &lerr) < 0)
			continue;
		state_refresh(root, st);
		if (json) {
			st->has_petrel = false;
			autofree char *doc = NULL;
			size_t len = 0;
			if (oci_state_to_json(st, &doc, &len, &lerr) == 0) {
				while (len && (doc[len - 1] == '\n'))
					len--;
				fprintf(out, "%s%.*s", first ? "" : ",", (int)len, doc);
				first = false;
			}
		} else if (quiet) {
			fprintf(out, "%s\n", st->id);
		} else {
			char created[64] = "";
			oci_time_format(&st->created, created, sizeof(created));
			fprintf(out, "%-12s %-8d %-10s %-40s %-30s %s\n", st->id, st->pid,
				oci_status_name(st->status), st->bundle ? st->bundle : "", created,
				st->owner && *st->owner ? st->owner : "root");
		}
		oci_state_free(st);
	}
	if (d)
		closedir(d);
	if (json)
		fputs("]\n", out);
	return 0;
}

int petrel_ps(const char *root, const char *id, bool json, FILE *out, struct perr *err)
{
	struct oci_state *st = NULL;
	int rc = container_load(root, id, &st, err);
	if (rc < 0)
		return rc;
	enum oci_status status = container_status(root, st);
	int pid = status == OCI_STATUS_STOPPED ? 0 : st->pid;
	/* The agent has no process listing yet: the host side of a container is
	 * its VMM (exec'd processes have their own petrel processes). */
	if (json) {
		if (pid)
			fprintf(out, "[%d]\n", pid);
		else
			fputs("[]\n", out);
	} else {
		fprintf(out, "PID   CMD\n");
		if (pid)
			fprintf(out, "%-5d petrel-vmm (container %s)\n", pid, id);
	}
	oci_state_free(st);
	return 0;
}

int petrel_pause(const char *root, const char *id, bool pause, struct perr *err)
{
	struct oci_state *st = NULL;
	int rc = container_load(root, id, &st, err);
	if (rc < 0)
		return rc;
	enum oci_status status = container_status(root, st);
	if (status == OCI_STATUS_STOPPED || status == OCI_STATUS_CREATED) {
		rc = perr_setx(err, -EINVAL, CONTAINER_ERR_NOT_RUNNING);
	} else if (pause && status == OCI_STATUS_PAUSED) {
		rc = perr_setx(err, -EINVAL, "container already paused");
	} else if (!pause && status != OCI_STATUS_PAUSED) {
		rc = perr_setx(err, -EINVAL, "container not paused");
	} else {
		char qmp[PATH_MAX];
		container_path(root, id, "qmp.sock", qmp, sizeof(qmp));
		rc = qmp_client_run(qmp, pause ? "stop" : "cont", err);
		if (rc == 0) {
			st->status = pause ? OCI_STATUS_PAUSED : OCI_STATUS_RUNNING;
			rc = container_save(root, st, err);
		}
	}
	oci_state_free(st);
	return rc;
}

static char *slurp(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			if (cap > (1u << 20)) {
				free(buf);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[n] = 0;
	*len = n;
	return buf;
}

int petrel_update(const char *root, const char *id, const char *resources_path, struct perr *err)
{
	struct oci_state *st = NULL;
	int rc = container_load(root, id, &st, err);
	if (rc < 0)
		return rc;
	enum oci_status status = container_status(root, st);
	oci_state_free(st);
	if (status == OCI_STATUS_STOPPED)
		return perr_setx(err, -EINVAL, CONTAINER_ERR_NOT_RUNNING);
	if (!resources_path)
		return perr_setx(
		    err, -EINVAL,
		    "update: give the new limits with --resources FILE (or - for stdin); "
		    "petrel takes no individual limit flags");
	FILE *f = strcmp(resources_path, "-") ? fopen(resources_path, "re") : stdin;
	if (!f)
		return perr_set(err, -errno, "--resources %s", resources_path);
	size_t len = 0;
	autofree char *text = slurp(f, &len);
	if (f != stdin)
		fclose(f);
	if (!text)
		return perr_setx(err, -EINVAL, "--resources: unreadable or larger than 1 MiB");
	char ebuf[256];
	yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
	if (!v || !YAJL_IS_OBJECT(v)) {
		yajl_tree_free(v);
		return perr_setx(err, -EINVAL, "--resources: not a JSON object%s%s", v ? "" : ": ",
				 v ? "" : ebuf);
	}
	/* The VM's size is fixed when it boots: nothing can be changed in place yet
	 * (no memory or vCPU hotplug, no cgroups inside the guest). An empty or
	 * all-null member is a no-op; anything else is refused by name. */
	rc = 0;
	for (size_t i = 0; i < v->u.object.len && rc == 0; i++) {
		yajl_val m = v->u.object.values[i];
		const char *key = v->u.object.keys[i];
		if (YAJL_IS_NULL(m))
			continue;
		if (YAJL_IS_OBJECT(m)) {
			for (size_t j = 0; j < m->u.object.len; j++) {
				if (YAJL_IS_NULL(m->u.object.values[j]))
					continue;
				rc = perr_setx(
				    err, -ENOTSUP,
				    "update: linux.resources.%s.%s cannot be changed on a "
				    "running petrel container (the VM's size is fixed at "
				    "create)",
				    key, m->u.object.keys[j]);
				break;
			}
		} else if (!(YAJL_IS_ARRAY(m) && m->u.array.len == 0)) {
			rc = perr_setx(err, -ENOTSUP,
				       "update: linux.resources.%s cannot be changed on a running "
				       "petrel container",
				       key);
		}
	}
	yajl_tree_free(v);
	return rc;
}

int petrel_features(FILE *out, struct perr *err)
{
	(void)err;
	/* Only what petrel honours (runtime-spec features.md). */
	fputs(
	    "{\n"
	    "  \"ociVersionMin\": \"1.0.0\",\n"
	    "  \"ociVersionMax\": \"1.1.0\",\n"
	    "  \"hooks\": [\"prestart\", \"createRuntime\", \"poststart\", \"poststop\"],\n"
	    "  \"mountOptions\": [\"async\", \"atime\", \"bind\", \"defaults\", \"dev\", "
	    "\"diratime\", \"exec\", \"iversion\", \"lazytime\", \"loud\", \"mand\", "
	    "\"noatime\", \"nodev\", \"nodiratime\", \"noexec\", \"noiversion\", "
	    "\"nolazytime\", \"nomand\", \"norelatime\", \"nostrictatime\", \"nosuid\", "
	    "\"nosymfollow\", \"private\", \"rbind\", \"relatime\", \"ro\", \"rprivate\", "
	    "\"rshared\", \"rslave\", \"runbindable\", \"rw\", \"shared\", \"silent\", "
	    "\"slave\", \"strictatime\", \"suid\", \"symfollow\", \"sync\", \"tmpcopyup\", "
	    "\"unbindable\"],\n"
	    "  \"linux\": {\n"
	    "    \"namespaces\": [\"mount\", \"pid\", \"uts\", \"ipc\", \"cgroup\", \"network\"],\n"
	    "    \"capabilities\": [\"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", "
	    "\"CAP_DAC_READ_SEARCH\", \"CAP_FOWNER\", \"CAP_FSETID\", \"CAP_KILL\", "
	    "\"CAP_SETGID\", \"CAP_SETUID\", \"CAP_SETPCAP\", \"CAP_LINUX_IMMUTABLE\", "
	    "\"CAP_NET_BIND_SERVICE\", \"CAP_NET_BROADCAST\", \"CAP_NET_ADMIN\", "
	    "\"CAP_NET_RAW\", \"CAP_IPC_LOCK\", \"CAP_IPC_OWNER\", \"CAP_SYS_MODULE\", "
	    "\"CAP_SYS_RAWIO\", \"CAP_SYS_CHROOT\", \"CAP_SYS_PTRACE\", \"CAP_SYS_PACCT\", "
	    "\"CAP_SYS_ADMIN\", \"CAP_SYS_BOOT\", \"CAP_SYS_NICE\", \"CAP_SYS_RESOURCE\", "
	    "\"CAP_SYS_TIME\", \"CAP_SYS_TTY_CONFIG\", \"CAP_MKNOD\", \"CAP_LEASE\", "
	    "\"CAP_AUDIT_WRITE\", \"CAP_AUDIT_CONTROL\", \"CAP_SETFCAP\", "
	    "\"CAP_MAC_OVERRIDE\", \"CAP_MAC_ADMIN\", \"CAP_SYSLOG\", \"CAP_WAKE_ALARM\", "
	    "\"CAP_BLOCK_SUSPEND\", \"CAP_AUDIT_READ\", \"CAP_PERFMON\", \"CAP_BPF\", "
	    "\"CAP_CHECKPOINT_RESTORE\"],\n"
	    "    \"cgroup\": {\"v1\": false, \"v2\": false, \"systemd\": false, "
	    "\"systemdUser\": false, \"rdma\": false},\n"
	    "    \"seccomp\": {\"enabled\": false},\n"
	    "    \"apparmor\": {\"enabled\": false},\n"
	    "    \"selinux\": {\"enabled\": false},\n"
	    "    \"intelRdt\": {\"enabled\": false},\n"
	    "    \"mountExtensions\": {\"idmap\": {\"enabled\": false}}\n"
	    "  },\n"
	    "  \"annotations\": {\n"
	    "    \"io.petrel.runtime\": \"microvm\",\n"
	    "    \"io.petrel.version\": \"" PETREL_VERSION "\"\n"
	    "  }\n"
	    "}\n",
	    out);
	return 0;
}
