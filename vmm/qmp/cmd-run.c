/*
 * Run control: quit, stop, cont, system_powerdown, system_reset. The state
 * change itself is the VM's; the events that follow (STOP, RESUME, SHUTDOWN,
 * POWERDOWN, RESET) come back through the VM's event hook.
 */
#include "../../common/cleanup.h"
#include "qmp-internal.h"

static int qmp_check_not_shut_down(struct qmp_session *s, struct qmp_error *err)
{
	if (s->be->get_state(s->be_opaque) == VM_STATE_SHUTDOWN)
		return qmp_error_set(err, QMP_ERROR_GENERIC, "The VM is shutting down");
	return 0;
}

static void qmp_quit_after_reply(struct qmp_session *s)
{
	s->be->request_shutdown(s->be_opaque, VM_SHUTDOWN_HOST_QMP_QUIT);
}

/* The reply goes out first, then the VM shuts down (SHUTDOWN follows it). */
static int qmp_cmd_quit(struct qmp_session *s, yajl_val args, yajl_gen out, struct qmp_error *err)
{
	(void)args;
	(void)err;
	s->after_reply = qmp_quit_after_reply;
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_stop(struct qmp_session *s, yajl_val args, yajl_gen out, struct qmp_error *err)
{
	struct perr perr = {0};
	(void)args;
	if (qmp_check_not_shut_down(s, err) < 0)
		return -1;
	if (s->be->pause(s->be_opaque, &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_cont(struct qmp_session *s, yajl_val args, yajl_gen out, struct qmp_error *err)
{
	struct perr perr = {0};
	(void)args;
	if (qmp_check_not_shut_down(s, err) < 0)
		return -1;
	if (s->be->resume(s->be_opaque, &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_system_powerdown(struct qmp_session *s, yajl_val args, yajl_gen out,
				    struct qmp_error *err)
{
	struct perr perr = {0};
	(void)args;
	if (qmp_check_not_shut_down(s, err) < 0)
		return -1;
	if (s->be->request_powerdown(s->be_opaque, &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_system_reset(struct qmp_session *s, yajl_val args, yajl_gen out,
				struct qmp_error *err)
{
	struct perr perr = {0};
	(void)args;
	if (qmp_check_not_shut_down(s, err) < 0)
		return -1;
	if (s->be->request_reset(s->be_opaque, &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static const struct qmp_command qmp_run_commands[] = {
    {.name = "quit", .run = qmp_cmd_quit},
    {.name = "stop", .run = qmp_cmd_stop},
    {.name = "cont", .run = qmp_cmd_cont},
    {.name = "system_powerdown", .run = qmp_cmd_system_powerdown},
    {.name = "system_reset", .run = qmp_cmd_system_reset},
};

const struct qmp_command_family qmp_family_run = {
    qmp_run_commands,
    ARRAY_SIZE(qmp_run_commands),
};
