/* state, list, pause/resume (lifecycle.h); ps, update and features are in
 * their cmd-*.c files. */
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

int petrel_pause(const char *root, const char *id, bool pause, struct perr *err)
{
	struct oci_state *st = NULL;
	autoclose int lock = -1;
	int rc = container_lock_existing(root, id, &lock, err);
	if (rc < 0)
		return rc;
	rc = container_load(root, id, &st, err);
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
