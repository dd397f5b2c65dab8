/*
 * QMP: the protocol through qmp_session with a fake VM, and the unix socket
 * server with a real event loop in a thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "../../common/cleanup.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/qmp/qmp-internal.h"
#include "../../vmm/qmp/qmp.h"
#include "unit.h"

/* ---- A fake VM ---- */

struct fake_vm {
	enum vm_run_state state;
	vm_event_hook hook;
	void *hook_opaque;
	int shutdown_calls;
	enum vm_shutdown_reason shutdown_reason;
	int powerdown_calls;
	int reset_calls;
	bool fail_pause;
	const char *name;
	unsigned ncpus;
	char snapshot_dir[64];	     /* the last migrate's directory */
	struct eventloop *stop_loop; /* request_shutdown stops it, as the VM does */
};

static void fake_emit(struct fake_vm *vm, enum vm_event_kind kind, enum vm_shutdown_reason reason,
		      bool guest)
{
	struct vm_event ev = {.kind = kind, .reason = reason, .guest = guest};
	if (vm->hook)
		vm->hook(vm->hook_opaque, &ev);
}

static void fake_set_event_hook(void *opaque, vm_event_hook hook, void *hook_opaque)
{
	struct fake_vm *vm = opaque;
	vm->hook = hook;
	vm->hook_opaque = hook_opaque;
}

static enum vm_run_state fake_get_state(void *opaque)
{
	return ((struct fake_vm *)opaque)->state;
}

static int fake_pause(void *opaque, struct perr *err)
{
	struct fake_vm *vm = opaque;
	if (vm->fail_pause)
		return perr_setx(err, -EIO, "vcpu0: cannot pause");
	if (vm->state == VM_STATE_RUNNING) {
		vm->state = VM_STATE_PAUSED;
		fake_emit(vm, VM_EVENT_STOP, 0, false);
	}
	return 0;
}

static int fake_resume(void *opaque, struct perr *err)
{
	struct fake_vm *vm = opaque;
	(void)err;
	if (vm->state == VM_STATE_PAUSED) {
		vm->state = VM_STATE_RUNNING;
		fake_emit(vm, VM_EVENT_RESUME, 0, false);
	}
	return 0;
}

static void fake_request_shutdown(void *opaque, enum vm_shutdown_reason reason)
{
	struct fake_vm *vm = opaque;
	vm->shutdown_calls++;
	vm->shutdown_reason = reason;
	vm->state = VM_STATE_SHUTDOWN;
	fake_emit(vm, VM_EVENT_SHUTDOWN, reason, false);
	if (vm->stop_loop)
		eventloop_stop(vm->stop_loop);
}

static int fake_request_powerdown(void *opaque, struct perr *err)
{
	struct fake_vm *vm = opaque;
	(void)err;
	vm->powerdown_calls++;
	fake_emit(vm, VM_EVENT_POWERDOWN, 0, false);
	return 0;
}

static int fake_request_reset(void *opaque, struct perr *err)
{
	struct fake_vm *vm = opaque;
	(void)err;
	vm->reset_calls++;
	fake_emit(vm, VM_EVENT_RESET, 0, false);
	return 0;
}

static unsigned fake_query_cpus(void *opaque, struct vm_cpu_info *out, unsigned max)
{
	struct fake_vm *vm = opaque;
	for (unsigned i = 0; i < vm->ncpus && i < max; i++)
		out[i] = (struct vm_cpu_info){.cpu_index = i, .thread_id = 1000 + (int)i};
	return vm->ncpus;
}

static const char *fake_name(void *opaque)
{
	return ((struct fake_vm *)opaque)->name;
}

/* As the VM: only a paused VM is saved. */
static int fake_snapshot_save(void *opaque, const char *dir, struct perr *err)
{
	struct fake_vm *vm = opaque;
	if (vm->state != VM_STATE_PAUSED)
		return perr_setx(err, -EBUSY, "the VM must be paused first (QMP stop)");
	snprintf(vm->snapshot_dir, sizeof(vm->snapshot_dir), "%s", dir);
	return 0;
}

static const struct qmp_backend fake_backend = {
    .set_event_hook = fake_set_event_hook,
    .get_state = fake_get_state,
    .pause = fake_pause,
    .resume = fake_resume,
    .request_shutdown = fake_request_shutdown,
    .request_powerdown = fake_request_powerdown,
    .request_reset = fake_request_reset,
    .query_cpus = fake_query_cpus,
    .name = fake_name,
    .snapshot_save = fake_snapshot_save,
};

/* ---- JSON helpers ---- */

static yajl_val jget(yajl_val v, const char *path)
{
	/* path: "error.class" */
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
		v = qmp_arg_get(v, k);
	return v;
}

static const char *jstr(yajl_val v, const char *path)
{
	v = jget(v, path);
	return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static long long jint(yajl_val v, const char *path)
{
	v = jget(v, path);
	return YAJL_IS_INTEGER(v) ? v->u.number.i : -12345;
}

static int jbool(yajl_val v, const char *path)
{
	v = jget(v, path);
	return YAJL_IS_TRUE(v) ? 1 : YAJL_IS_FALSE(v) ? 0 : -1;
}

/* ---- A session wired to a capture buffer ---- */

struct harness {
	struct fake_vm vm;
	struct qmp_session *s;
	char *out;
	size_t out_len, out_pos, out_cap;
	bool fail_writes;
	yajl_val msg; /* the last message taken, freed by the next take */
	bool bad_framing;
};

static int harness_write(void *opaque, const void *buf, size_t len)
{
	struct harness *h = opaque;
	if (h->fail_writes)
		return -EPIPE;
	if (h->out_len + len + 1 > h->out_cap) {
		size_t cap = h->out_cap ? h->out_cap * 2 : 4096;
		while (cap < h->out_len + len + 1)
			cap *= 2;
		char *p = realloc(h->out, cap);
		if (!p)
			return -ENOMEM;
		h->out = p;
		h->out_cap = cap;
	}
	memcpy(h->out + h->out_len, buf, len);
	h->out_len += len;
	h->out[h->out_len] = '\0';
	return 0;
}

static void harness_init(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	h->vm.state = VM_STATE_RUNNING;
	h->vm.ncpus = 2;
	h->s = qmp_session_new(&fake_backend, &h->vm, harness_write, h);
	fake_set_event_hook(&h->vm, NULL, NULL);
}

static void harness_fini(struct harness *h)
{
	qmp_session_free(h->s);
	yajl_tree_free(h->msg);
	free(h->out);
}

/* The next output message, parsed; NULL when there is none. */
static yajl_val take(struct harness *h)
{
	yajl_tree_free(h->msg);
	h->msg = NULL;
	if (h->out_pos >= h->out_len)
		return NULL;
	char *start = h->out + h->out_pos;
	char *end = strstr(start, "\r\n");
	if (!end) {
		h->bad_framing = true;
		return NULL;
	}
	*end = '\0';
	char err[128];
	h->msg = yajl_tree_parse(start, err, sizeof(err));
	*end = '\r';
	if (!h->msg || memchr(start, '\n', (size_t)(end - start)))
		h->bad_framing = true;
	h->out_pos = (size_t)(end - h->out) + 2;
	return h->msg;
}

static bool pending(struct harness *h)
{
	return h->out_pos < h->out_len;
}

static void feed(struct harness *h, const char *text)
{
	qmp_session_feed(h->s, text, strlen(text));
}

/* The VM's events straight into the session, as the server would pass them. */
static void session_event_hook(void *opaque, const struct vm_event *ev)
{
	qmp_session_send_event(opaque, ev, NULL);
}

/* Greeting and negotiation done, output consumed. */
static void harness_ready(struct harness *h)
{
	harness_init(h);
	qmp_session_greet(h->s);
	take(h);
	feed(h, "{\"execute\": \"qmp_capabilities\"}");
	take(h);
}

/* ---- Greeting and negotiation ---- */

UNIT_TEST(test_greeting_reports_version_and_no_capabilities)
{
	struct harness h;
	harness_init(&h);
	UNIT_ASSERT_EQ(qmp_session_greet(h.s), 0);
	UNIT_ASSERT(strstr(h.out, "\r\n") == h.out + h.out_len - 2);
	yajl_val m = take(&h);
	UNIT_ASSERT(m);
	UNIT_ASSERT_EQ(jint(m, "QMP.version.qemu.major"), QMP_QEMU_MAJOR);
	UNIT_ASSERT_EQ(jint(m, "QMP.version.qemu.minor"), QMP_QEMU_MINOR);
	UNIT_ASSERT_EQ(jint(m, "QMP.version.qemu.micro"), QMP_QEMU_MICRO);
	UNIT_ASSERT_CONTAINS(jstr(m, "QMP.version.package"), "petrel-vmm");
	yajl_val caps = jget(m, "QMP.capabilities");
	UNIT_ASSERT(YAJL_IS_ARRAY(caps));
	UNIT_ASSERT_EQ(caps->u.array.len, 0);
	UNIT_ASSERT(!pending(&h));
	harness_fini(&h);
}

UNIT_TEST(test_command_before_negotiation_is_rejected)
{
	struct harness h;
	harness_init(&h);
	feed(&h, "{\"execute\": \"query-status\", \"id\": 1}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "CommandNotFound");
	UNIT_ASSERT_STREQ(jstr(m, "error.desc"),
			  "Expecting capabilities negotiation with 'qmp_capabilities'");
	UNIT_ASSERT_EQ(jint(m, "id"), 1);
	/* Unknown commands get the same answer before negotiation, as in QEMU. */
	feed(&h, "{\"execute\": \"no-such-command\"}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "CommandNotFound");
	UNIT_ASSERT_CONTAINS(jstr(m, "error.desc"), "Expecting capabilities negotiation");
	UNIT_ASSERT(!qmp_session_negotiated(h.s));
	UNIT_ASSERT_EQ(h.vm.shutdown_calls, 0);
	harness_fini(&h);
}

UNIT_TEST(test_negotiation_then_commands_work)
{
	struct harness h;
	harness_init(&h);
	feed(&h, "{\"execute\": \"qmp_capabilities\"}");
	yajl_val m = take(&h);
	UNIT_ASSERT(YAJL_IS_OBJECT(jget(m, "return")));
	UNIT_ASSERT_EQ(jget(m, "return")->u.object.len, 0);
	UNIT_ASSERT(qmp_session_negotiated(h.s));
	feed(&h, "{\"execute\": \"query-status\"}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "return.status"), "running");
	harness_fini(&h);
}

UNIT_TEST(test_qmp_capabilities_twice_is_rejected)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"qmp_capabilities\", \"id\": \"again\"}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "CommandNotFound");
	UNIT_ASSERT_STREQ(jstr(m, "error.desc"),
			  "Capabilities negotiation is already complete, command ignored");
	UNIT_ASSERT_STREQ(jstr(m, "id"), "again");
	harness_fini(&h);
}

UNIT_TEST(test_qmp_capabilities_refuses_oob)
{
	struct harness h;
	harness_init(&h);
	feed(&h, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "GenericError");
	UNIT_ASSERT_STREQ(jstr(m, "error.desc"), "Capability oob not available");
	feed(&h, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"x\"]}}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.desc"), "Parameter 'enable[0]' does not accept value 'x'");
	feed(&h, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": \"oob\"}}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.desc"),
			  "Invalid parameter type for 'enable', expected: array");
	UNIT_ASSERT(!qmp_session_negotiated(h.s));
	feed(&h, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": []}}");
	m = take(&h);
	UNIT_ASSERT(jget(m, "return"));
	harness_fini(&h);
}

/* ---- Replies ---- */

UNIT_TEST(test_id_is_echoed_whatever_its_type)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"query-status\", \"id\": 42}");
	yajl_val m = take(&h);
	UNIT_ASSERT_EQ(jint(m, "id"), 42);
	feed(&h, "{\"id\": \"abc\", \"execute\": \"query-status\"}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "id"), "abc");
	feed(&h, "{\"execute\": \"query-status\", \"id\": {\"seq\": [1, 2.5e3, null, true]}}");
	m = take(&h);
	UNIT_ASSERT_EQ(jint(m, "id.seq"), -12345); /* an array, not an integer */
	yajl_val seq = jget(m, "id.seq");
	UNIT_ASSERT(YAJL_IS_ARRAY(seq) && seq->u.array.len == 4);
	UNIT_ASSERT_STREQ(seq->u.array.values[1]->u.number.r, "2.5e3");
	UNIT_ASSERT(YAJL_IS_NULL(seq->u.array.values[2]));
	UNIT_ASSERT_CONTAINS(h.out, "\"id\":{\"seq\":[1,2.5e3,null,true]}");
	/* Errors echo it too. */
	feed(&h, "{\"execute\": \"nope\", \"id\": [7]}");
	m = take(&h);
	UNIT_ASSERT(YAJL_IS_ARRAY(jget(m, "id")));
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "CommandNotFound");
	/* No id, no "id" member. */
	feed(&h, "{\"execute\": \"query-status\"}");
	m = take(&h);
	UNIT_ASSERT(!jget(m, "id"));
	harness_fini(&h);
}

UNIT_TEST(test_query_status_reports_running_paused_shutdown)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"query-status\"}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "return.status"), "running");
	UNIT_ASSERT_EQ(jbool(m, "return.running"), 1);
	UNIT_ASSERT_EQ(jbool(m, "return.singlestep"), 0);
	h.vm.state = VM_STATE_PAUSED;
	feed(&h, "{\"execute\": \"query-status\"}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "return.status"), "paused");
	UNIT_ASSERT_EQ(jbool(m, "return.running"), 0);
	h.vm.state = VM_STATE_SHUTDOWN;
	feed(&h, "{\"execute\": \"query-status\"}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "return.status"), "shutdown");
	UNIT_ASSERT_EQ(jbool(m, "return.running"), 0);
	harness_fini(&h);
}

UNIT_TEST(test_stop_sends_stop_event_and_status_is_paused)
{
	struct harness h;
	harness_ready(&h);
	fake_set_event_hook(&h.vm, session_event_hook, h.s);
	feed(&h, "{\"execute\": \"stop\", \"id\": 1}");
	/* QEMU's order: the event is emitted while the command runs. */
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "STOP");
	UNIT_ASSERT(!jget(m, "data"));
	UNIT_ASSERT(jint(m, "timestamp.seconds") > 1600000000);
	long long us = jint(m, "timestamp.microseconds");
	UNIT_ASSERT(us >= 0 && us < 1000000);
	m = take(&h);
	UNIT_ASSERT(jget(m, "return"));
	UNIT_ASSERT_EQ(jint(m, "id"), 1);
	feed(&h, "{\"execute\": \"query-status\"}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "return.status"), "paused");
	UNIT_ASSERT_EQ(jbool(m, "return.running"), 0);
	harness_fini(&h);
}

UNIT_TEST(test_cont_sends_resume_event)
{
	struct harness h;
	harness_ready(&h);
	fake_set_event_hook(&h.vm, session_event_hook, h.s);
	h.vm.state = VM_STATE_PAUSED;
	feed(&h, "{\"execute\": \"cont\"}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "RESUME");
	m = take(&h);
	UNIT_ASSERT(jget(m, "return"));
	UNIT_ASSERT_EQ(h.vm.state, VM_STATE_RUNNING);
	harness_fini(&h);
}

UNIT_TEST(test_quit_replies_then_shuts_down)
{
	struct harness h;
	harness_ready(&h);
	fake_set_event_hook(&h.vm, session_event_hook, h.s);
	feed(&h, "{\"execute\": \"quit\", \"id\": \"q\"}");
	UNIT_ASSERT_EQ(h.vm.shutdown_calls, 1);
	UNIT_ASSERT_EQ(h.vm.shutdown_reason, VM_SHUTDOWN_HOST_QMP_QUIT);
	yajl_val m = take(&h);
	UNIT_ASSERT(YAJL_IS_OBJECT(jget(m, "return")));
	UNIT_ASSERT_STREQ(jstr(m, "id"), "q");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "SHUTDOWN");
	UNIT_ASSERT_EQ(jbool(m, "data.guest"), 0);
	UNIT_ASSERT_STREQ(jstr(m, "data.reason"), "host-qmp-quit");
	UNIT_ASSERT(!pending(&h));
	harness_fini(&h);
}

UNIT_TEST(test_system_powerdown_and_reset_call_the_vm)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"system_powerdown\"}{\"execute\": \"system_reset\"}");
	UNIT_ASSERT_EQ(h.vm.powerdown_calls, 1);
	UNIT_ASSERT_EQ(h.vm.reset_calls, 1);
	UNIT_ASSERT(jget(take(&h), "return"));
	UNIT_ASSERT(jget(take(&h), "return"));
	h.vm.state = VM_STATE_SHUTDOWN;
	feed(&h, "{\"execute\": \"system_reset\"}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "GenericError");
	UNIT_ASSERT_EQ(h.vm.reset_calls, 1);
	harness_fini(&h);
}

UNIT_TEST(test_vm_error_becomes_generic_error)
{
	struct harness h;
	harness_ready(&h);
	h.vm.fail_pause = true;
	feed(&h, "{\"execute\": \"stop\", \"id\": 3}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "GenericError");
	UNIT_ASSERT_STREQ(jstr(m, "error.desc"), "vcpu0: cannot pause");
	UNIT_ASSERT_EQ(jint(m, "id"), 3);
	harness_fini(&h);
}

UNIT_TEST(test_query_cpus_fast_lists_every_vcpu)
{
	struct harness h;
	harness_ready(&h);
	h.vm.ncpus = 3;
	feed(&h, "{\"execute\": \"query-cpus-fast\"}");
	yajl_val m = take(&h);
	yajl_val list = jget(m, "return");
	UNIT_ASSERT(YAJL_IS_ARRAY(list));
	UNIT_ASSERT_EQ(list->u.array.len, 3);
	yajl_val cpu = list->u.array.values[2];
	UNIT_ASSERT_EQ(jint(cpu, "cpu-index"), 2);
	UNIT_ASSERT_STREQ(jstr(cpu, "qom-path"), "/machine/unattached/device[2]");
	UNIT_ASSERT_EQ(jint(cpu, "thread-id"), 1002);
	UNIT_ASSERT_STREQ(jstr(cpu, "target"), "x86_64");
	UNIT_ASSERT_EQ(jint(cpu, "props.core-id"), 2);
	UNIT_ASSERT_EQ(jint(cpu, "props.thread-id"), 0);
	UNIT_ASSERT_EQ(jint(cpu, "props.socket-id"), 0);
	harness_fini(&h);
}

UNIT_TEST(test_query_version_matches_greeting)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"query-version\"}");
	yajl_val m = take(&h);
	UNIT_ASSERT_EQ(jint(m, "return.qemu.major"), QMP_QEMU_MAJOR);
	UNIT_ASSERT_EQ(jint(m, "return.qemu.minor"), QMP_QEMU_MINOR);
	UNIT_ASSERT_EQ(jint(m, "return.qemu.micro"), QMP_QEMU_MICRO);
	UNIT_ASSERT_STREQ(jstr(m, "return.package"), "petrel-vmm " PETREL_VERSION);
	harness_fini(&h);
}

UNIT_TEST(test_query_commands_lists_every_command)
{
	static const char *const expected[] = {
	    "qmp_capabilities", "quit",		  "stop",	  "cont",
	    "system_powerdown", "system_reset",	  "query-status", "query-cpus-fast",
	    "query-version",	"query-commands", "query-name",	  "balloon",
	    "query-balloon",	"blockdev-add",	  "blockdev-del", "netdev_add",
	    "netdev_del",	"device_add",	  "device_del",	  "migrate",
	};
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"query-commands\"}");
	yajl_val list = jget(take(&h), "return");
	UNIT_ASSERT(YAJL_IS_ARRAY(list));
	UNIT_ASSERT_EQ(list->u.array.len, ARRAY_SIZE(expected));
	for (size_t i = 0; i < ARRAY_SIZE(expected); i++) {
		bool found = false;
		for (size_t j = 0; j < list->u.array.len; j++) {
			const char *name = jstr(list->u.array.values[j], "name");
			if (name && strcmp(name, expected[i]) == 0)
				found = true;
		}
		if (!found)
			UNIT_FAIL("query-commands lacks %s", expected[i]);
	}
	harness_fini(&h);
}

UNIT_TEST(test_query_name_is_empty_without_a_name)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"query-name\"}");
	yajl_val m = take(&h);
	UNIT_ASSERT(YAJL_IS_OBJECT(jget(m, "return")));
	UNIT_ASSERT_EQ(jget(m, "return")->u.object.len, 0);
	h.vm.name = "web-1";
	feed(&h, "{\"execute\": \"query-name\"}");
	UNIT_ASSERT_STREQ(jstr(take(&h), "return.name"), "web-1");
	harness_fini(&h);
}

/* ---- Errors ---- */

UNIT_TEST(test_unknown_command_is_command_not_found)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"foo\"}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "CommandNotFound");
	UNIT_ASSERT_STREQ(jstr(m, "error.desc"), "The command foo has not been found");
	harness_fini(&h);
}

UNIT_TEST(test_unexpected_argument_is_named)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"stop\", \"arguments\": {\"force\": true}, \"id\": 9}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "GenericError");
	UNIT_ASSERT_STREQ(jstr(m, "error.desc"), "Parameter 'force' is unexpected");
	UNIT_ASSERT_EQ(jint(m, "id"), 9);
	UNIT_ASSERT_EQ(h.vm.state, VM_STATE_RUNNING);
	/* Empty arguments are fine. */
	feed(&h, "{\"execute\": \"query-status\", \"arguments\": {}}");
	UNIT_ASSERT(jget(take(&h), "return"));
	harness_fini(&h);
}

UNIT_TEST(test_migrate_takes_a_file_uri_of_a_paused_vm)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"migrate\"}");
	UNIT_ASSERT_STREQ(jstr(take(&h), "error.desc"), "Parameter 'uri' is missing");
	feed(&h, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"tcp:host:4444\"}}");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "GenericError");
	UNIT_ASSERT(strstr(jstr(m, "error.desc"), "file:DIR") != NULL);
	UNIT_ASSERT(strstr(jstr(m, "error.desc"), "tcp:host:4444") != NULL);
	feed(&h, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:\"}}");
	UNIT_ASSERT(jget(take(&h), "error"));
	/* Running: refused, nothing written. */
	feed(&h, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:/tmp/s\"}}");
	m = take(&h);
	UNIT_ASSERT(strstr(jstr(m, "error.desc"), "paused") != NULL);
	UNIT_ASSERT_STREQ(h.vm.snapshot_dir, "");
	feed(&h, "{\"execute\": \"stop\"}");
	UNIT_ASSERT(jget(take(&h), "return"));
	feed(&h, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:/tmp/s\", "
		 "\"detach\": true}}");
	UNIT_ASSERT(jget(take(&h), "return"));
	UNIT_ASSERT_STREQ(h.vm.snapshot_dir, "/tmp/s");
	harness_fini(&h);
}

UNIT_TEST(test_args_check_names_missing_and_mistyped_parameters)
{
	static const struct qmp_arg spec[] = {
	    {"id", QMP_ARG_STRING, true},
	    {"size", QMP_ARG_INT, false},
	    {"ro", QMP_ARG_BOOL, false},
	    {NULL, 0, false},
	};
	struct qmp_error e;
	yajl_val args;
	char buf[64];

	args = yajl_tree_parse("{\"size\": 4}", buf, sizeof(buf));
	UNIT_ASSERT_EQ(qmp_args_check(spec, false, args, &e), -1);
	UNIT_ASSERT_STREQ(e.desc, "Parameter 'id' is missing");
	yajl_tree_free(args);

	args = yajl_tree_parse("{\"id\": \"d0\", \"size\": \"4\"}", buf, sizeof(buf));
	UNIT_ASSERT_EQ(qmp_args_check(spec, false, args, &e), -1);
	UNIT_ASSERT_STREQ(e.desc, "Invalid parameter type for 'size', expected: integer");
	yajl_tree_free(args);

	args = yajl_tree_parse("{\"id\": \"d0\", \"ro\": 1}", buf, sizeof(buf));
	UNIT_ASSERT_EQ(qmp_args_check(spec, false, args, &e), -1);
	UNIT_ASSERT_STREQ(e.desc, "Invalid parameter type for 'ro', expected: boolean");
	yajl_tree_free(args);

	args = yajl_tree_parse("{\"id\": \"d0\", \"x\": 1}", buf, sizeof(buf));
	UNIT_ASSERT_EQ(qmp_args_check(spec, false, args, &e), -1);
	UNIT_ASSERT_STREQ(e.desc, "Parameter 'x' is unexpected");
	UNIT_ASSERT_EQ(qmp_args_check(spec, true, args, &e), 0);
	yajl_tree_free(args);

	args = yajl_tree_parse("{\"id\": \"d0\", \"size\": 4, \"ro\": true}", buf, sizeof(buf));
	UNIT_ASSERT_EQ(qmp_args_check(spec, false, args, &e), 0);
	UNIT_ASSERT_STREQ(qmp_arg_string(args, "id"), "d0");
	UNIT_ASSERT_EQ(qmp_arg_int(args, "size", -1), 4);
	UNIT_ASSERT_EQ(qmp_arg_bool(args, "ro", false), 1);
	yajl_tree_free(args);
}

UNIT_TEST(test_bad_request_shapes_get_qemu_errors)
{
	static const struct {
		const char *in, *desc;
	} cases[] = {
	    {"[1, 2]", "QMP input must be a JSON object"},
	    {"\"stop\"", "QMP input must be a JSON object"},
	    {"42 ", "QMP input must be a JSON object"},
	    {"{}", "QMP input lacks member 'execute'"},
	    {"{\"id\": 1}", "QMP input lacks member 'execute'"},
	    {"{\"execute\": 1}", "QMP input member 'execute' must be a string"},
	    {"{\"execute\": \"stop\", \"arguments\": []}",
	     "QMP input member 'arguments' must be an object"},
	    {"{\"execute\": \"stop\", \"exec-oob\": \"stop\"}",
	     "QMP input member 'exec-oob' is unexpected"},
	    {"{\"execute\": \"stop\", \"execute\": \"cont\"}",
	     "JSON parse error, duplicate key 'execute'"},
	    {"{\"execute\": \"stop\", \"arguments\": {\"a\": 1, \"a\": 2}}",
	     "JSON parse error, duplicate key 'a'"},
	};
	struct harness h;
	harness_ready(&h);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		feed(&h, cases[i].in);
		yajl_val m = take(&h);
		if (!m)
			UNIT_FAIL("no reply to %s", cases[i].in);
		UNIT_ASSERT_STREQ(jstr(m, "error.class"), "GenericError");
		UNIT_ASSERT_STREQ(jstr(m, "error.desc"), cases[i].desc);
		UNIT_ASSERT(!pending(&h));
	}
	UNIT_ASSERT_EQ(h.vm.state, VM_STATE_RUNNING);
	UNIT_ASSERT(!h.bad_framing);
	harness_fini(&h);
}

/* ---- Framing ---- */

UNIT_TEST(test_malformed_json_gets_error_and_next_command_works)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": stop}\n");
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "GenericError");
	UNIT_ASSERT_CONTAINS(jstr(m, "error.desc"), "JSON parse error, ");
	UNIT_ASSERT(!pending(&h));
	feed(&h, "{\"execute\": \"query-status\", \"id\": 2}");
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "return.status"), "running");
	UNIT_ASSERT_EQ(jint(m, "id"), 2);
	/* Invalid UTF-8 and a stray closer. */
	feed(&h, "{\"execute\": \"\xc3\x28\"}");
	UNIT_ASSERT_CONTAINS(jstr(take(&h), "error.desc"), "JSON parse error");
	feed(&h, "} {\"execute\": \"query-status\"}");
	UNIT_ASSERT_STREQ(jstr(take(&h), "error.desc"), "JSON parse error, unexpected '}'");
	UNIT_ASSERT(jget(take(&h), "return"));
	UNIT_ASSERT(!h.bad_framing);
	harness_fini(&h);
}

UNIT_TEST(test_two_commands_in_one_chunk_get_two_replies)
{
	struct harness h;
	harness_ready(&h);
	feed(&h, "{\"execute\": \"query-status\", \"id\": 1}{\"execute\": \"query-name\", \"id\": "
		 "2}\r\n");
	yajl_val m = take(&h);
	UNIT_ASSERT_EQ(jint(m, "id"), 1);
	UNIT_ASSERT(jget(m, "return.status"));
	m = take(&h);
	UNIT_ASSERT_EQ(jint(m, "id"), 2);
	UNIT_ASSERT(!pending(&h));
	harness_fini(&h);
}

UNIT_TEST(test_command_split_byte_by_byte_is_assembled)
{
	const char *in = "  {\"execute\" : \"query-status\", \"id\": \"a}b\\\"{\"}";
	struct harness h;
	harness_ready(&h);
	for (size_t i = 0; in[i]; i++) {
		qmp_session_feed(h.s, in + i, 1);
		if (in[i + 1])
			UNIT_ASSERT(!pending(&h));
	}
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "return.status"), "running");
	UNIT_ASSERT_STREQ(jstr(m, "id"), "a}b\"{");
	harness_fini(&h);
}

UNIT_TEST(test_oversize_message_is_refused_and_stream_recovers)
{
	struct harness h;
	harness_ready(&h);
	size_t n = QMP_MAX_MESSAGE + 1000;
	char *big = malloc(n + 64);
	UNIT_ASSERT(big);
	int off = snprintf(big, 64, "{\"execute\": \"query-status\", \"id\": \"");
	memset(big + off, 'x', n);
	memcpy(big + off + n, "\"}", 3);
	qmp_session_feed(h.s, big, strlen(big));
	free(big);
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "error.class"), "GenericError");
	UNIT_ASSERT_CONTAINS(jstr(m, "error.desc"), "65536");
	UNIT_ASSERT(!pending(&h));
	feed(&h, "{\"execute\": \"query-status\"}");
	UNIT_ASSERT_STREQ(jstr(take(&h), "return.status"), "running");
	harness_fini(&h);
}

UNIT_TEST(test_deep_nesting_is_refused)
{
	struct harness h;
	harness_ready(&h);
	char in[1024] = "{\"execute\": \"query-status\", \"id\": ";
	size_t off = strlen(in);
	for (int i = 0; i < 100; i++)
		in[off++] = '[';
	for (int i = 0; i < 100; i++)
		in[off++] = ']';
	in[off++] = '}';
	in[off] = '\0';
	feed(&h, in);
	yajl_val m = take(&h);
	UNIT_ASSERT_CONTAINS(jstr(m, "error.desc"), "nesting deeper than 64");
	UNIT_ASSERT(!pending(&h));
	feed(&h, "{\"execute\": \"query-status\"}");
	UNIT_ASSERT(jget(take(&h), "return"));
	harness_fini(&h);
}

UNIT_TEST(test_control_character_discards_a_partial_message)
{
	struct harness h;
	harness_ready(&h);
	/* An unterminated object swallows what follows ... */
	feed(&h, "{\"execute\": \"stop\", \"arguments\": {");
	feed(&h, "{\"execute\": \"query-status\"}");
	UNIT_ASSERT(!pending(&h));
	/* ... until the client sends a control character (QMP spec 2.6). */
	feed(&h, "\x1b");
	yajl_val m = take(&h);
	UNIT_ASSERT_CONTAINS(jstr(m, "error.desc"), "control character");
	feed(&h, "{\"execute\": \"query-status\"}");
	UNIT_ASSERT(jget(take(&h), "return"));
	UNIT_ASSERT_EQ(h.vm.state, VM_STATE_RUNNING);
	/* Between messages it is silent. */
	feed(&h, "\xff\x1b");
	UNIT_ASSERT(!pending(&h));
	harness_fini(&h);
}

/* ---- Events ---- */

UNIT_TEST(test_events_wait_for_negotiation)
{
	struct harness h;
	harness_init(&h);
	qmp_session_greet(h.s);
	take(&h);
	struct vm_event ev = {.kind = VM_EVENT_STOP};
	UNIT_ASSERT_EQ(qmp_session_send_event(h.s, &ev, NULL), 0);
	UNIT_ASSERT(!pending(&h));
	feed(&h, "{\"execute\": \"qmp_capabilities\"}");
	take(&h);
	qmp_session_send_event(h.s, &ev, NULL);
	UNIT_ASSERT_STREQ(jstr(take(&h), "event"), "STOP");
	harness_fini(&h);
}

UNIT_TEST(test_event_shapes_follow_qemu)
{
	struct harness h;
	harness_ready(&h);
	struct timespec ts = {.tv_sec = 1700000000, .tv_nsec = 123456789};
	struct vm_event ev = {
	    .kind = VM_EVENT_SHUTDOWN, .reason = VM_SHUTDOWN_GUEST_RESET, .guest = true};
	qmp_session_send_event(h.s, &ev, &ts);
	yajl_val m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "SHUTDOWN");
	UNIT_ASSERT_EQ(jbool(m, "data.guest"), 1);
	UNIT_ASSERT_STREQ(jstr(m, "data.reason"), "guest-reset");
	UNIT_ASSERT_EQ(jint(m, "timestamp.seconds"), 1700000000);
	UNIT_ASSERT_EQ(jint(m, "timestamp.microseconds"), 123456);

	static const struct {
		enum vm_shutdown_reason reason;
		const char *name;
	} reasons[] = {
	    {VM_SHUTDOWN_HOST_QMP_QUIT, "host-qmp-quit"},
	    {VM_SHUTDOWN_HOST_SIGNAL, "host-signal"},
	    {VM_SHUTDOWN_GUEST_SHUTDOWN, "guest-shutdown"},
	    {VM_SHUTDOWN_GUEST_PANIC, "guest-panic"},
	    {VM_SHUTDOWN_HOST_ERROR, "host-error"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
		ev.reason = reasons[i].reason;
		qmp_session_send_event(h.s, &ev, &ts);
		UNIT_ASSERT_STREQ(jstr(take(&h), "data.reason"), reasons[i].name);
	}

	ev = (struct vm_event){.kind = VM_EVENT_RESET, .guest = true};
	qmp_session_send_event(h.s, &ev, NULL);
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "RESET");
	UNIT_ASSERT_EQ(jbool(m, "data.guest"), 1);
	UNIT_ASSERT_STREQ(jstr(m, "data.reason"), "guest-reset");
	ev.guest = false;
	qmp_session_send_event(h.s, &ev, NULL);
	UNIT_ASSERT_STREQ(jstr(take(&h), "data.reason"), "host-qmp-system-reset");

	ev = (struct vm_event){.kind = VM_EVENT_POWERDOWN};
	qmp_session_send_event(h.s, &ev, NULL);
	m = take(&h);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "POWERDOWN");
	UNIT_ASSERT(!jget(m, "data"));
	ev.kind = VM_EVENT_RESUME;
	qmp_session_send_event(h.s, &ev, NULL);
	UNIT_ASSERT_STREQ(jstr(take(&h), "event"), "RESUME");
	UNIT_ASSERT(!h.bad_framing);
	harness_fini(&h);
}

UNIT_TEST(test_failed_write_ends_the_session)
{
	struct harness h;
	harness_ready(&h);
	h.fail_writes = true;
	UNIT_ASSERT_EQ(qmp_session_feed(h.s, "{\"execute\": \"query-status\"}", 27), -EPIPE);
	h.fail_writes = false;
	UNIT_ASSERT_EQ(qmp_session_feed(h.s, "{\"execute\": \"query-status\"}", 27), -EPIPE);
	UNIT_ASSERT(!pending(&h));
	/* quit still quits: the command was received. */
	harness_fini(&h);
	harness_ready(&h);
	h.fail_writes = true;
	feed(&h, "{\"execute\": \"quit\"}");
	UNIT_ASSERT_EQ(h.vm.shutdown_calls, 1);
	harness_fini(&h);
}

/* ---- The socket server ---- */

struct server_fixture {
	char dir[64];
	char path[128];
	struct eventloop *loop;
	struct qmp_server *srv;
	struct fake_vm vm;
	int stop_fd;
	pthread_t thread;
	bool running;
};

static void fixture_on_stop(void *opaque, uint32_t events)
{
	struct server_fixture *f = opaque;
	(void)events;
	eventloop_stop(f->loop);
}

static void *fixture_loop(void *opaque)
{
	struct server_fixture *f = opaque;
	eventloop_run(f->loop);
	return NULL;
}

/* 0, or -1 with *why set. */
static int fixture_start(struct server_fixture *f, const char **why)
{
	memset(f, 0, sizeof(*f));
	f->vm.state = VM_STATE_RUNNING;
	f->vm.ncpus = 1;
	f->stop_fd = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/petrel-qmp-XXXXXX");
	if (!mkdtemp(f->dir))
		return *why = "mkdtemp", -1;
	snprintf(f->path, sizeof(f->path), "%s/qmp.sock", f->dir);
	if (eventloop_create(&f->loop) < 0)
		return *why = "eventloop_create", -1;
	f->vm.stop_loop = f->loop;
	struct perr err = {0};
	if (qmp_server_create_backend(f->loop, &fake_backend, &f->vm, f->path, &f->srv, &err) < 0)
		return *why = "qmp_server_create_backend", -1;
	f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->stop_fd < 0 || eventloop_add(f->loop, f->stop_fd, EPOLLIN, fixture_on_stop, f) < 0)
		return *why = "stop eventfd", -1;
	if (pthread_create(&f->thread, NULL, fixture_loop, f) != 0)
		return *why = "pthread_create", -1;
	f->running = true;
	return 0;
}

static void fixture_join(struct server_fixture *f)
{
	if (!f->running)
		return;
	uint64_t one = 1;
	if (write(f->stop_fd, &one, sizeof(one)) < 0)
		perror("write");
	pthread_join(f->thread, NULL);
	f->running = false;
}

static void fixture_stop(struct server_fixture *f)
{
	fixture_join(f);
	qmp_server_destroy(f->srv);
	f->srv = NULL;
	if (f->loop && f->stop_fd >= 0)
		eventloop_remove(f->loop, f->stop_fd);
	if (f->stop_fd >= 0)
		close(f->stop_fd);
	eventloop_destroy(f->loop);
	f->loop = NULL;
	unlink(f->path);
	rmdir(f->dir);
}

struct client {
	int fd;
	char buf[1 << 16];
	size_t len;
	yajl_val msg;
};

static int client_connect(struct client *c, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memset(c, 0, sizeof(*c));
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void client_close(struct client *c)
{
	yajl_tree_free(c->msg);
	c->msg = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int client_send(struct client *c, const char *text)
{
	size_t len = strlen(text);
	return send(c->fd, text, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* The next message within timeout_ms; NULL on timeout or EOF (then *eof). */
static yajl_val client_recv(struct client *c, int timeout_ms, bool *eof)
{
	yajl_tree_free(c->msg);
	c->msg = NULL;
	if (eof)
		*eof = false;
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n", 2);
		if (end) {
			*end = '\0';
			char err[128];
			c->msg = yajl_tree_parse(c->buf, err, sizeof(err));
			size_t used = (size_t)(end - c->buf) + 2;
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			return c->msg;
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return NULL;
		if (c->len == sizeof(c->buf))
			return NULL;
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n <= 0) {
			if (eof)
				*eof = true;
			return NULL;
		}
		c->len += (size_t)n;
	}
}

static bool is_greeting(yajl_val m)
{
	return jget(m, "QMP.version.qemu.major") != NULL;
}

UNIT_TEST(test_server_serves_clients_one_after_another)
{
	struct server_fixture f;
	const char *why = NULL;
	struct client c;
	struct stat st;

	if (fixture_start(&f, &why) < 0) {
		fixture_stop(&f);
		UNIT_FAIL("setup: %s", why);
	}
	UNIT_ASSERT(stat(f.path, &st) == 0 && S_ISSOCK(st.st_mode));
	UNIT_ASSERT_EQ(client_connect(&c, f.path), 0);
	UNIT_ASSERT(is_greeting(client_recv(&c, 2000, NULL)));
	client_send(&c, "{\"execute\": \"qmp_capabilities\"}");
	UNIT_ASSERT(jget(client_recv(&c, 2000, NULL), "return"));
	client_send(&c, "{\"execute\": \"stop\", \"id\": 5}");
	yajl_val m = client_recv(&c, 2000, NULL);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "STOP");
	m = client_recv(&c, 2000, NULL);
	UNIT_ASSERT_EQ(jint(m, "id"), 5);
	client_send(&c, "{\"execute\": \"query-status\"}");
	UNIT_ASSERT_STREQ(jstr(client_recv(&c, 2000, NULL), "return.status"), "paused");
	client_close(&c);

	/* A new client starts over: greeting, then negotiation again. */
	UNIT_ASSERT_EQ(client_connect(&c, f.path), 0);
	UNIT_ASSERT(is_greeting(client_recv(&c, 2000, NULL)));
	client_send(&c, "{\"execute\": \"query-status\"}");
	UNIT_ASSERT_STREQ(jstr(client_recv(&c, 2000, NULL), "error.class"), "CommandNotFound");
	client_close(&c);

	fixture_stop(&f);
	UNIT_ASSERT(lstat(f.path, &st) < 0 && errno == ENOENT);
}

UNIT_TEST(test_server_queues_a_second_client_until_the_first_leaves)
{
	struct server_fixture f;
	const char *why = NULL;
	struct client a, b;
	if (fixture_start(&f, &why) < 0) {
		fixture_stop(&f);
		UNIT_FAIL("setup: %s", why);
	}
	UNIT_ASSERT_EQ(client_connect(&a, f.path), 0);
	UNIT_ASSERT(is_greeting(client_recv(&a, 2000, NULL)));
	UNIT_ASSERT_EQ(client_connect(&b, f.path), 0);
	bool eof;
	UNIT_ASSERT(!client_recv(&b, 300, &eof));
	UNIT_ASSERT(!eof);
	client_close(&a);
	UNIT_ASSERT(is_greeting(client_recv(&b, 2000, NULL)));
	client_send(&b, "{\"execute\": \"qmp_capabilities\"}");
	UNIT_ASSERT(jget(client_recv(&b, 2000, NULL), "return"));
	client_close(&b);
	fixture_stop(&f);
}

UNIT_TEST(test_server_delivers_events_from_other_threads)
{
	struct server_fixture f;
	const char *why = NULL;
	struct client c;
	if (fixture_start(&f, &why) < 0) {
		fixture_stop(&f);
		UNIT_FAIL("setup: %s", why);
	}
	UNIT_ASSERT_EQ(client_connect(&c, f.path), 0);
	UNIT_ASSERT(is_greeting(client_recv(&c, 2000, NULL)));
	client_send(&c, "{\"execute\": \"qmp_capabilities\"}");
	UNIT_ASSERT(jget(client_recv(&c, 2000, NULL), "return"));
	/* This thread is not the loop's: the event is queued and the loop woken. */
	fake_emit(&f.vm, VM_EVENT_SHUTDOWN, VM_SHUTDOWN_GUEST_SHUTDOWN, true);
	fake_emit(&f.vm, VM_EVENT_POWERDOWN, 0, false);
	yajl_val m = client_recv(&c, 2000, NULL);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "SHUTDOWN");
	UNIT_ASSERT_STREQ(jstr(m, "data.reason"), "guest-shutdown");
	UNIT_ASSERT_STREQ(jstr(client_recv(&c, 2000, NULL), "event"), "POWERDOWN");
	client_close(&c);
	fixture_stop(&f);
}

UNIT_TEST(test_server_quit_reply_and_shutdown_reach_the_client)
{
	struct server_fixture f;
	const char *why = NULL;
	struct client c;
	if (fixture_start(&f, &why) < 0) {
		fixture_stop(&f);
		UNIT_FAIL("setup: %s", why);
	}
	UNIT_ASSERT_EQ(client_connect(&c, f.path), 0);
	UNIT_ASSERT(is_greeting(client_recv(&c, 2000, NULL)));
	client_send(&c, "{\"execute\": \"qmp_capabilities\"}{\"execute\": \"quit\", \"id\": 1}");
	/* The fake VM stops the loop from request_shutdown, as the VM does. */
	pthread_join(f.thread, NULL);
	f.running = false;
	UNIT_ASSERT_EQ(f.vm.shutdown_calls, 1);
	qmp_server_destroy(f.srv);
	f.srv = NULL;
	UNIT_ASSERT(jget(client_recv(&c, 2000, NULL), "return"));
	yajl_val m = client_recv(&c, 2000, NULL);
	UNIT_ASSERT_EQ(jint(m, "id"), 1);
	UNIT_ASSERT(jget(m, "return"));
	m = client_recv(&c, 2000, NULL);
	UNIT_ASSERT_STREQ(jstr(m, "event"), "SHUTDOWN");
	UNIT_ASSERT_STREQ(jstr(m, "data.reason"), "host-qmp-quit");
	bool eof;
	UNIT_ASSERT(!client_recv(&c, 2000, &eof));
	UNIT_ASSERT(eof);
	client_close(&c);
	fixture_stop(&f);
}

UNIT_TEST(test_server_answers_a_client_that_closed_its_writing_side)
{
	struct server_fixture f;
	const char *why = NULL;
	struct client c;
	if (fixture_start(&f, &why) < 0) {
		fixture_stop(&f);
		UNIT_FAIL("setup: %s", why);
	}
	UNIT_ASSERT_EQ(client_connect(&c, f.path), 0);
	/* As `printf ... | socat - UNIX-CONNECT:...` does. */
	client_send(&c, "{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"query-name\"}\n");
	shutdown(c.fd, SHUT_WR);
	UNIT_ASSERT(is_greeting(client_recv(&c, 2000, NULL)));
	UNIT_ASSERT(jget(client_recv(&c, 2000, NULL), "return"));
	yajl_val m = client_recv(&c, 2000, NULL);
	UNIT_ASSERT(YAJL_IS_OBJECT(jget(m, "return")));
	bool eof;
	UNIT_ASSERT(!client_recv(&c, 2000, &eof));
	UNIT_ASSERT(eof);
	client_close(&c);
	fixture_stop(&f);
}

UNIT_TEST(test_server_drops_a_client_that_does_not_read)
{
	struct server_fixture f;
	const char *why = NULL;
	struct client c;
	if (fixture_start(&f, &why) < 0) {
		fixture_stop(&f);
		UNIT_FAIL("setup: %s", why);
	}
	UNIT_ASSERT_EQ(client_connect(&c, f.path), 0);
	client_send(&c, "{\"execute\": \"qmp_capabilities\"}");
	/* ~700 bytes of reply per 32-byte request, never read: the server must
	 * hang up once its queue passes the bound, and stay responsive. */
	const char *req = "{\"execute\": \"query-commands\"}";
	int flags = fcntl(c.fd, F_GETFL);
	fcntl(c.fd, F_SETFL, flags | O_NONBLOCK);
	size_t sent = 0, reqlen = strlen(req);
	for (int i = 0; i < 20000; i++) {
		ssize_t n = send(c.fd, req, reqlen, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			usleep(1000);
			continue;
		}
		if (n < 0)
			break; /* hung up already */
		sent += (size_t)n;
	}
	UNIT_ASSERT(sent > 0);
	/* Drain: the stream must end (EOF or reset) well before all replies came. */
	fcntl(c.fd, F_SETFL, flags);
	size_t got = 0;
	char buf[65536];
	for (;;) {
		struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
		if (poll(&pfd, 1, 5000) <= 0)
			UNIT_FAIL("the server did not hang up");
		ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	UNIT_ASSERT(got <= QMP_MAX_PENDING_OUTPUT + (1 << 20));
	client_close(&c);
	/* The next client is served. */
	UNIT_ASSERT_EQ(client_connect(&c, f.path), 0);
	UNIT_ASSERT(is_greeting(client_recv(&c, 2000, NULL)));
	client_close(&c);
	fixture_stop(&f);
}

UNIT_TEST(test_server_replaces_a_stale_socket)
{
	char dir[] = "/tmp/petrel-qmp-XXXXXX";
	char path[64];
	UNIT_ASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	/* A socket nobody listens on, as a crashed VMM leaves behind. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	UNIT_ASSERT(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	close(fd);

	struct eventloop *loop;
	struct fake_vm vm = {.state = VM_STATE_RUNNING};
	struct qmp_server *srv = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(eventloop_create(&loop), 0);
	int ret = qmp_server_create_backend(loop, &fake_backend, &vm, path, &srv, &err);
	if (ret < 0)
		UNIT_FAIL("create: %s", err.msg);
	UNIT_ASSERT(vm.hook != NULL);

	/* A live socket is not taken over. */
	struct qmp_server *srv2 = NULL;
	UNIT_ASSERT(qmp_server_create_backend(loop, &fake_backend, &vm, path, &srv2, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "another process listens");

	qmp_server_destroy(srv);
	UNIT_ASSERT(vm.hook == NULL);
	eventloop_destroy(loop);
	struct stat st;
	UNIT_ASSERT(lstat(path, &st) < 0);
	rmdir(dir);
}

UNIT_TEST(test_server_refuses_a_path_that_is_not_a_socket)
{
	char dir[] = "/tmp/petrel-qmp-XXXXXX";
	char path[128], missing[160];
	UNIT_ASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/file", dir);
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	UNIT_ASSERT(fd >= 0);
	close(fd);

	struct eventloop *loop;
	struct fake_vm vm = {.state = VM_STATE_RUNNING};
	struct qmp_server *srv = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(eventloop_create(&loop), 0);
	UNIT_ASSERT(qmp_server_create_backend(loop, &fake_backend, &vm, path, &srv, &err) < 0);
	char expect[200];
	snprintf(expect, sizeof(expect), "%s: exists and is not a socket", path);
	UNIT_ASSERT_STREQ(err.msg, expect);
	struct stat st;
	UNIT_ASSERT(stat(path, &st) == 0 && S_ISREG(st.st_mode));
	UNIT_ASSERT(vm.hook == NULL);

	/* A failed bind leaves nothing either. */
	snprintf(missing, sizeof(missing), "%s/no/such/dir.sock", dir);
	UNIT_ASSERT(qmp_server_create_backend(loop, &fake_backend, &vm, missing, &srv, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "No such file or directory");
	UNIT_ASSERT(vm.hook == NULL);

	eventloop_destroy(loop);
	unlink(path);
	rmdir(dir);
}

UNIT_MAIN("qmp")
