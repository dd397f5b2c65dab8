/*
 * libFuzzer target: arbitrary bytes into a QMP session with a fake VM.
 *
 * Input layout: byte 0 chooses whether to negotiate first (bit 0) and the
 * chunk size the rest is fed in (bits 1-7, 1..128 bytes), so that messages
 * split at every possible place. After a chunk whose first byte is a
 * multiple of 5 the VM emits an event. Invariants checked beyond "no crash,
 * no leak": every output message is one JSON object on one CRLF-ended line.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "../../vmm/qmp/qmp.h"

#define FUZZ_MAX_OUTPUT 262144 /* 256 KiB */

struct fuzz_vm {
	enum vm_run_state state;
	struct qmp_session *session;
	char *out;
	size_t out_len;
};

static void fuzz_emit(struct fuzz_vm *vm, enum vm_event_kind kind, enum vm_shutdown_reason reason)
{
	struct vm_event ev = {.kind = kind, .reason = reason, .guest = (kind & 1) != 0};
	if (vm->session)
		qmp_session_send_event(vm->session, &ev, NULL);
}

static void fuzz_set_event_hook(void *opaque, vm_event_hook hook, void *hook_opaque)
{
	(void)opaque;
	(void)hook;
	(void)hook_opaque;
}

static enum vm_run_state fuzz_get_state(void *opaque)
{
	return ((struct fuzz_vm *)opaque)->state;
}

static int fuzz_pause(void *opaque, struct perr *err)
{
	struct fuzz_vm *vm = opaque;
	(void)err;
	if (vm->state == VM_STATE_RUNNING) {
		vm->state = VM_STATE_PAUSED;
		fuzz_emit(vm, VM_EVENT_STOP, 0);
	}
	return 0;
}

static int fuzz_resume(void *opaque, struct perr *err)
{
	struct fuzz_vm *vm = opaque;
	if (vm->state != VM_STATE_PAUSED)
		return perr_setx(err, -EINVAL, "not paused");
	vm->state = VM_STATE_RUNNING;
	fuzz_emit(vm, VM_EVENT_RESUME, 0);
	return 0;
}

static void fuzz_request_shutdown(void *opaque, enum vm_shutdown_reason reason)
{
	struct fuzz_vm *vm = opaque;
	vm->state = VM_STATE_SHUTDOWN;
	fuzz_emit(vm, VM_EVENT_SHUTDOWN, reason);
}

static int fuzz_request_powerdown(void *opaque, struct perr *err)
{
	(void)err;
	fuzz_emit(opaque, VM_EVENT_POWERDOWN, 0);
	return 0;
}

static int fuzz_request_reset(void *opaque, struct perr *err)
{
	(void)err;
	fuzz_emit(opaque, VM_EVENT_RESET, 0);
	return 0;
}

static unsigned fuzz_query_cpus(void *opaque, struct vm_cpu_info *out, unsigned max)
{
	(void)opaque;
	for (unsigned i = 0; i < 4 && i < max; i++)
		out[i] = (struct vm_cpu_info){.cpu_index = i, .thread_id = 100 + (int)i};
	return 4;
}

static const char *fuzz_name(void *opaque)
{
	(void)opaque;
	return "fuzz";
}

static const struct qmp_backend fuzz_backend = {
    .set_event_hook = fuzz_set_event_hook,
    .get_state = fuzz_get_state,
    .pause = fuzz_pause,
    .resume = fuzz_resume,
    .request_shutdown = fuzz_request_shutdown,
    .request_powerdown = fuzz_request_powerdown,
    .request_reset = fuzz_request_reset,
    .query_cpus = fuzz_query_cpus,
    .name = fuzz_name,
};

/* Like a client that stops reading: beyond the bound, writes fail. */
static int fuzz_write(void *opaque, const void *buf, size_t len)
{
	struct fuzz_vm *vm = opaque;
	if (vm->out_len + len > FUZZ_MAX_OUTPUT)
		return -ENOBUFS;
	memcpy(vm->out + vm->out_len, buf, len);
	vm->out_len += len;
	return 0;
}

static void fuzz_check_output(const struct fuzz_vm *vm)
{
	size_t pos = 0;
	while (pos < vm->out_len) {
		const char *start = vm->out + pos;
		const char *end = memmem(start, vm->out_len - pos, "\r\n", 2);
		if (!end) {
			/* Only a write refused half-way may leave a partial line. */
			if (vm->out_len + 2 <= FUZZ_MAX_OUTPUT)
				__builtin_trap();
			return;
		}
		size_t len = (size_t)(end - start);
		char *line = malloc(len + 1);
		if (!line)
			return;
		memcpy(line, start, len);
		line[len] = '\0';
		if (memchr(line, '\n', len) || memchr(line, '\r', len))
			__builtin_trap();
		yajl_val v = yajl_tree_parse(line, NULL, 0);
		if (!YAJL_IS_OBJECT(v))
			__builtin_trap();
		yajl_tree_free(v);
		free(line);
		pos += len + 2;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char negotiate[] = "{\"execute\":\"qmp_capabilities\"}";
	struct fuzz_vm vm = {.state = VM_STATE_RUNNING};

	if (size < 1)
		return 0;
	vm.out = malloc(FUZZ_MAX_OUTPUT);
	if (!vm.out)
		return 0;
	vm.session = qmp_session_new(&fuzz_backend, &vm, fuzz_write, &vm);
	if (!vm.session) {
		free(vm.out);
		return 0;
	}
	qmp_session_greet(vm.session);
	if (data[0] & 1)
		qmp_session_feed(vm.session, negotiate, sizeof(negotiate) - 1);
	size_t chunk = (size_t)(data[0] >> 1) + 1;
	data++;
	size--;
	while (size) {
		size_t n = size < chunk ? size : chunk;
		qmp_session_feed(vm.session, data, n);
		if (data[0] % 5 == 0)
			fuzz_emit(&vm, (enum vm_event_kind)(data[0] % 5 + (n % 5)) % 5,
				  (enum vm_shutdown_reason)(n % 6));
		data += n;
		size -= n;
	}
	qmp_session_free(vm.session);
	fuzz_check_output(&vm);
	free(vm.out);
	return 0;
}
