/*
 * Queries: query-status, query-cpus-fast, query-version, query-commands,
 * query-name. Shapes follow QEMU's QAPI schema so that existing clients
 * (libvirt, kata's govmm, qmp-shell) read them unchanged.
 */
#include "../../common/cleanup.h"
#include "qmp-internal.h"

/* More than the VMM allows (VMM_MAX_CPUS); extra vCPUs would not be listed. */
#define QMP_MAX_CPUS 256

static int qmp_cmd_query_status(struct qmp_session *s, yajl_val args, yajl_gen out,
				struct qmp_error *err)
{
	(void)args;
	(void)err;
	enum vm_run_state state = s->be->get_state(s->be_opaque);
	const char *status = "running";
	if (state == VM_STATE_PAUSED)
		status = "paused";
	else if (state == VM_STATE_SHUTDOWN)
		status = "shutdown";

	yajl_gen_map_open(out);
	qmp_gen_key_string(out, "status", status);
	qmp_gen_key_bool(out, "running", state == VM_STATE_RUNNING);
	/* Deprecated in QEMU but still sent by 7.x; clients may expect it. */
	qmp_gen_key_bool(out, "singlestep", false);
	yajl_gen_map_close(out);
	return 0;
}

/*
 * x86 topology as QEMU 7 lays out "-smp N": one socket of N cores with one
 * thread each, so core-id is the vCPU index. qom-path matches QEMU's
 * unattached CPU devices.
 */
static int qmp_cmd_query_cpus_fast(struct qmp_session *s, yajl_val args, yajl_gen out,
				   struct qmp_error *err)
{
	struct vm_cpu_info cpus[QMP_MAX_CPUS];
	(void)args;
	(void)err;
	unsigned n = s->be->query_cpus(s->be_opaque, cpus, QMP_MAX_CPUS);
	if (n > QMP_MAX_CPUS)
		n = QMP_MAX_CPUS;

	yajl_gen_array_open(out);
	for (unsigned i = 0; i < n; i++) {
		char qom_path[64];
		snprintf(qom_path, sizeof(qom_path), "/machine/unattached/device[%u]",
			 cpus[i].cpu_index);
		yajl_gen_map_open(out);
		qmp_gen_key_int(out, "cpu-index", cpus[i].cpu_index);
		qmp_gen_key_string(out, "qom-path", qom_path);
		qmp_gen_key_int(out, "thread-id", cpus[i].thread_id);
		qmp_gen_key_string(out, "target", "x86_64");
		qmp_gen_string(out, "props");
		yajl_gen_map_open(out);
		qmp_gen_key_int(out, "core-id", cpus[i].cpu_index);
		qmp_gen_key_int(out, "thread-id", 0);
		qmp_gen_key_int(out, "socket-id", 0);
		yajl_gen_map_close(out);
		yajl_gen_map_close(out);
	}
	yajl_gen_array_close(out);
	return 0;
}

static int qmp_cmd_query_version(struct qmp_session *s, yajl_val args, yajl_gen out,
				 struct qmp_error *err)
{
	(void)s;
	(void)args;
	(void)err;
	qmp_gen_version(out);
	return 0;
}

static void qmp_list_command(const struct qmp_command *cmd, void *opaque)
{
	yajl_gen out = opaque;
	yajl_gen_map_open(out);
	qmp_gen_key_string(out, "name", cmd->name);
	yajl_gen_map_close(out);
}

static int qmp_cmd_query_commands(struct qmp_session *s, yajl_val args, yajl_gen out,
				  struct qmp_error *err)
{
	(void)s;
	(void)args;
	(void)err;
	yajl_gen_array_open(out);
	qmp_command_foreach(qmp_list_command, out);
	yajl_gen_array_close(out);
	return 0;
}

/* {} when the VM has no -name, as QEMU answers. */
static int qmp_cmd_query_name(struct qmp_session *s, yajl_val args, yajl_gen out,
			      struct qmp_error *err)
{
	(void)args;
	(void)err;
	const char *name = s->be->name ? s->be->name(s->be_opaque) : NULL;
	yajl_gen_map_open(out);
	if (name && name[0])
		qmp_gen_key_string(out, "name", name);
	yajl_gen_map_close(out);
	return 0;
}

static const struct qmp_command qmp_query_commands[] = {
    {.name = "query-status", .run = qmp_cmd_query_status},
    {.name = "query-cpus-fast", .run = qmp_cmd_query_cpus_fast},
    {.name = "query-version", .run = qmp_cmd_query_version},
    {.name = "query-commands", .run = qmp_cmd_query_commands},
    {.name = "query-name", .run = qmp_cmd_query_name},
};

const struct qmp_command_family qmp_family_query = {
    qmp_query_commands,
    ARRAY_SIZE(qmp_query_commands),
};
