/*
 * The balloon: balloon and query-balloon, as QEMU has them. Sizes are bytes
 * of guest RAM the guest should have (balloon) or has (query-balloon), i.e.
 * RAM minus the balloon. The guest's answer comes later, as the
 * BALLOON_CHANGED event, through the VM's event hook.
 */
#include <errno.h>

#include "../../common/cleanup.h"
#include "qmp-internal.h"

/* QEMU's words and class for a VM without a balloon device. */
static int qmp_balloon_info(struct qmp_session *s, struct vm_balloon_info *info,
			    struct qmp_error *err)
{
	if (!s->be->balloon_query || s->be->balloon_query(s->be_opaque, info) < 0)
		return qmp_error_set(err, QMP_ERROR_DEVICE_NOT_ACTIVE,
				     "No balloon device has been activated");
	return 0;
}

static int qmp_cmd_balloon(struct qmp_session *s, yajl_val args, yajl_gen out,
			   struct qmp_error *err)
{
	struct vm_balloon_info info = {0};
	if (qmp_balloon_info(s, &info, err) < 0)
		return -1;
	long long value = qmp_arg_int(args, "value", 0);
	if (value <= 0 || (unsigned long long)value > info.ram_size)
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "Parameter 'value' expects a size in [1, %llu] (bytes of "
				     "guest RAM)",
				     (unsigned long long)info.ram_size);
	struct perr perr = {0};
	if (!s->be->balloon_set_target ||
	    s->be->balloon_set_target(s->be_opaque, (uint64_t)value, &perr) < 0) {
		if (perr.code == -ENODEV || !perr.msg[0])
			return qmp_error_set(err, QMP_ERROR_DEVICE_NOT_ACTIVE,
					     "No balloon device has been activated");
		return qmp_error_from_perr(err, &perr);
	}
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_query_balloon(struct qmp_session *s, yajl_val args, yajl_gen out,
				 struct qmp_error *err)
{
	struct vm_balloon_info info = {0};
	(void)args;
	if (qmp_balloon_info(s, &info, err) < 0)
		return -1;
	yajl_gen_map_open(out);
	qmp_gen_key_int(out, "actual", (long long)info.actual);
	yajl_gen_map_close(out);
	return 0;
}

static const struct qmp_arg qmp_balloon_args[] = {
    {"value", QMP_ARG_INT, true},
    {NULL, 0, false},
};

static const struct qmp_command qmp_balloon_commands[] = {
    {.name = "balloon", .run = qmp_cmd_balloon, .args = qmp_balloon_args},
    {.name = "query-balloon", .run = qmp_cmd_query_balloon},
};

const struct qmp_command_family qmp_family_balloon = {
    qmp_balloon_commands,
    ARRAY_SIZE(qmp_balloon_commands),
};
