/*
 * The default QMP backend: the VM's control API (vmm/core/vm_control.h).
 * Kept apart from the server so that the protocol and the server build and
 * test without a VM.
 */
#include "qmp.h"

static void qmp_vm_set_event_hook(void *opaque, vm_event_hook hook, void *hook_opaque)
{
	vm_set_event_hook(opaque, hook, hook_opaque);
}

static enum vm_run_state qmp_vm_get_state(void *opaque)
{
	return vm_get_state(opaque);
}

static int qmp_vm_pause(void *opaque, struct perr *err)
{
	return vm_pause(opaque, err);
}

static int qmp_vm_resume(void *opaque, struct perr *err)
{
	return vm_resume(opaque, err);
}

static void qmp_vm_request_shutdown(void *opaque, enum vm_shutdown_reason reason)
{
	vm_request_shutdown(opaque, reason);
}

static int qmp_vm_request_powerdown(void *opaque, struct perr *err)
{
	return vm_request_powerdown(opaque, err);
}

static int qmp_vm_request_reset(void *opaque, struct perr *err)
{
	return vm_request_reset(opaque, err);
}

static unsigned qmp_vm_query_cpus(void *opaque, struct vm_cpu_info *out, unsigned max)
{
	return vm_query_cpus(opaque, out, max);
}

static const char *qmp_vm_name(void *opaque)
{
	return vm_name(opaque);
}

static int qmp_vm_balloon_query(void *opaque, struct vm_balloon_info *out)
{
	return vm_balloon_query(opaque, out);
}

static int qmp_vm_balloon_set_target(void *opaque, uint64_t target_bytes, struct perr *err)
{
	return vm_balloon_set_target(opaque, target_bytes, err);
}

static struct hotplug *qmp_vm_hotplug(void *opaque)
{
	return vm_hotplug(opaque);
}

static int qmp_vm_snapshot_save(void *opaque, const char *dir, struct perr *err)
{
	return vm_snapshot_save(opaque, dir, err);
}

const struct qmp_backend qmp_vm_backend = {
    .set_event_hook = qmp_vm_set_event_hook,
    .get_state = qmp_vm_get_state,
    .pause = qmp_vm_pause,
    .resume = qmp_vm_resume,
    .request_shutdown = qmp_vm_request_shutdown,
    .request_powerdown = qmp_vm_request_powerdown,
    .request_reset = qmp_vm_request_reset,
    .query_cpus = qmp_vm_query_cpus,
    .name = qmp_vm_name,
    .balloon_query = qmp_vm_balloon_query,
    .balloon_set_target = qmp_vm_balloon_set_target,
    .hotplug = qmp_vm_hotplug,
    .snapshot_save = qmp_vm_snapshot_save,
};

int qmp_server_create(struct eventloop *loop, struct vm *vm, const char *path,
		      struct qmp_server **out, struct perr *err)
{
	return qmp_server_create_backend(loop, &qmp_vm_backend, vm, path, out, err);
}
