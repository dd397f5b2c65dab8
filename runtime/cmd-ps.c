/* petrel ps [--format table|json] ID: the host processes that stand for the
 * container's processes (the VMM, and one per running exec). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "runtime/commands.h"
#include "runtime/container.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int petrel_ps(const char *root, const char *id, bool json, FILE *out, struct perr *err)
{
	struct oci_state *st = NULL;
	int rc = container_load(root, id, &st, err);
	if (rc < 0)
		return rc;
	autofree int *pids = NULL;
	size_t n = 0;
	/* The guest's processes have no host pids: each is stood for by a host
	 * process (the init by the VMM, an exec by its petrel exec process). */
	if (container_status(root, st) != OCI_STATUS_STOPPED)
		rc = container_host_pids(root, st, &pids, &n, err);
	oci_state_free(st);
	if (rc < 0)
		return rc;
	if (json) {
		fputc('[', out);
		for (size_t i = 0; i < n; i++)
			fprintf(out, "%s%d", i ? "," : "", pids[i]);
		fputs("]\n", out);
		return 0;
	}
	fprintf(out, "PID     CMD\n");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%-7d %s\n", pids[i],
			i == 0 ? "petrel-vmm (the container's init)" : "petrel exec");
	return 0;
}

int cmd_ps(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {{.name = "format", .short_name = 'f', .has_value = true}};
	const char *id;
	char **rest;
	size_t n_rest;
	/* runc passes what follows the id to ps(1); petrel has no ps of its own. */
	int rc = cmd_parse(flags, ARRAY_SIZE(flags), argc, argv, false, &id, &rest, &n_rest, err);
	if (rc < 0)
		return rc;
	const char *fmt = flags[0].set ? flags[0].value : "table";
	if (strcmp(fmt, "table") != 0 && strcmp(fmt, "json") != 0)
		return perr_setx(err, -EINVAL, "ps: --format \"%s\": allowed: table, json", fmt);
	if (n_rest && !strcmp(fmt, "json"))
		return perr_setx(err, -EINVAL, "ps: ps options cannot be used with --format json");
	if (n_rest)
		return perr_setx(err, -ENOTSUP, "ps: ps(1) options (\"%s\") are not supported",
				 rest[0]);
	rc = petrel_ps(cli->root, id, !strcmp(fmt, "json"), stdout, err);
	return rc < 0 ? rc : 0;
}
