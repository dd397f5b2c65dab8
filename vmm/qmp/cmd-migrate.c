/*
 * Snapshots: migrate with a "file:DIR" URI, as StratoVirt has it. The VM must
 * be paused (stop); the snapshot is written before the reply, so the reply
 * means the directory is complete. -incoming file:DIR restores it.
 */
#include "../../common/cleanup.h"
#include "../core/snapshot.h"
#include "qmp-internal.h"

static int qmp_cmd_migrate(struct qmp_session *s, yajl_val args, yajl_gen out,
			   struct qmp_error *err)
{
	const char *uri = qmp_arg_string(args, "uri");
	const char *dir = snapshot_uri_dir(uri);
	if (!dir)
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "Parameter 'uri' expects file:DIR (a snapshot directory); "
				     "got '%.200s'",
				     uri);
	if (!s->be->snapshot_save)
		return qmp_error_set(err, QMP_ERROR_GENERIC, "Snapshots are not supported here");
	struct perr perr = {0};
	if (s->be->snapshot_save(s->be_opaque, dir, &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static const struct qmp_arg qmp_migrate_args[] = {
    {"uri", QMP_ARG_STRING, true},
    {"detach", QMP_ARG_BOOL, false}, /* accepted: the command is synchronous anyway */
    {NULL, 0, false},
};

static const struct qmp_command qmp_migrate_commands[] = {
    {.name = "migrate", .run = qmp_cmd_migrate, .args = qmp_migrate_args},
};

const struct qmp_command_family qmp_family_migrate = {
    qmp_migrate_commands,
    ARRAY_SIZE(qmp_migrate_commands),
};
