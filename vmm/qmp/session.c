/*
 * One QMP client's protocol: greeting, capabilities negotiation, framing of
 * the input stream into JSON values, dispatch, replies and events.
 *
 * Framing. The input is a stream of JSON values with no delimiter, possibly
 * several per read and split anywhere. A small scanner follows strings and
 * bracket depth to find where each top-level value ends, then yajl validates
 * and parses that one value. A malformed value thus costs one error reply and
 * the next value parses normally. As QEMU documents (qmp-spec, "Forcing the
 * JSON parser into known-good state"), an ASCII control character other than
 * tab, CR and LF (or a 0xFF byte) throws away a half-received value, which
 * lets a client resynchronise after, e.g., an unbalanced '{'.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "../../common/cleanup.h"
#include "qmp-internal.h"

/* ---- The command table ---- */

static int qmp_cmd_qmp_capabilities(struct qmp_session *s, yajl_val args, yajl_gen out,
				    struct qmp_error *err)
{
	if (s->negotiated)
		return qmp_error_set(
		    err, QMP_ERROR_COMMAND_NOT_FOUND,
		    "Capabilities negotiation is already complete, command ignored");
	/* The greeting offers no capability; "oob" is the only one QEMU knows. */
	yajl_val enable = qmp_arg_get(args, "enable");
	for (size_t i = 0; enable && i < enable->u.array.len; i++) {
		yajl_val cap = enable->u.array.values[i];
		if (!YAJL_IS_STRING(cap))
			return qmp_error_set(err, QMP_ERROR_GENERIC,
					     "Invalid parameter type for 'enable[%zu]', expected: "
					     "string",
					     i);
		if (strcmp(cap->u.string, "oob") != 0)
			return qmp_error_set(err, QMP_ERROR_GENERIC,
					     "Parameter 'enable[%zu]' does not accept value '%s'",
					     i, cap->u.string);
		return qmp_error_set(err, QMP_ERROR_GENERIC, "Capability oob not available");
	}
	s->negotiated = true;
	qmp_gen_empty_object(out);
	return 0;
}

static const struct qmp_arg qmp_capabilities_args[] = {
    {"enable", QMP_ARG_ARRAY, false},
    {NULL, 0, false},
};

static const struct qmp_command qmp_control_commands[] = {
    {.name = "qmp_capabilities", .run = qmp_cmd_qmp_capabilities, .args = qmp_capabilities_args},
};

const struct qmp_command_family qmp_family_control = {
    qmp_control_commands,
    ARRAY_SIZE(qmp_control_commands),
};

/* Every command family; a new family (block, device, net, balloon) goes here. */
static const struct qmp_command_family *const qmp_families[] = {
    &qmp_family_control, &qmp_family_run,     &qmp_family_query,
    &qmp_family_balloon, &qmp_family_hotplug, &qmp_family_migrate,
};

const struct qmp_command *qmp_command_find(const char *name)
{
	for (size_t f = 0; f < ARRAY_SIZE(qmp_families); f++)
		for (size_t i = 0; i < qmp_families[f]->n_commands; i++)
			if (strcmp(qmp_families[f]->commands[i].name, name) == 0)
				return &qmp_families[f]->commands[i];
	return NULL;
}

void qmp_command_foreach(void (*fn)(const struct qmp_command *cmd, void *opaque), void *opaque)
{
	for (size_t f = 0; f < ARRAY_SIZE(qmp_families); f++)
		for (size_t i = 0; i < qmp_families[f]->n_commands; i++)
			fn(&qmp_families[f]->commands[i], opaque);
}

/* ---- Output ---- */

static yajl_gen qmp_gen_new(void)
{
	return yajl_gen_alloc(NULL);
}

/* One message per line, CRLF-terminated, as QEMU sends them. */
static void qmp_send(struct qmp_session *s, yajl_gen g)
{
	const unsigned char *buf;
	size_t len;

	if (s->broken || yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		return;
	if (s->write(s->write_opaque, buf, len) < 0 || s->write(s->write_opaque, "\r\n", 2) < 0)
		s->broken = true;
}

static void qmp_reply_error(struct qmp_session *s, yajl_val id, const struct qmp_error *e)
{
	yajl_gen g = qmp_gen_new();
	if (!g)
		return;
	yajl_gen_map_open(g);
	qmp_gen_string(g, "error");
	yajl_gen_map_open(g);
	qmp_gen_key_string(g, "class", qmp_error_class_name(e->cls));
	qmp_gen_key_string(g, "desc", e->desc);
	yajl_gen_map_close(g);
	if (id) {
		qmp_gen_string(g, "id");
		qmp_gen_value(g, id);
	}
	yajl_gen_map_close(g);
	qmp_send(s, g);
	yajl_gen_free(g);
}

/* An error about the input stream itself: no command, so no id to echo. */
static void qmp_reply_input_error(struct qmp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void qmp_reply_input_error(struct qmp_session *s, const char *fmt, ...)
{
	struct qmp_error e = {.cls = QMP_ERROR_GENERIC};
	va_list ap;
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive */
	vsnprintf(e.desc, sizeof(e.desc), fmt, ap);
	va_end(ap);
	qmp_reply_error(s, NULL, &e);
}

int qmp_session_greet(struct qmp_session *s)
{
	yajl_gen g = qmp_gen_new();
	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	qmp_gen_string(g, "QMP");
	yajl_gen_map_open(g);
	qmp_gen_string(g, "version");
	qmp_gen_version(g);
	qmp_gen_string(g, "capabilities");
	yajl_gen_array_open(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	qmp_send(s, g);
	yajl_gen_free(g);
	return s->broken ? -EPIPE : 0;
}

/* ---- Events ---- */

static const char *qmp_event_name(enum vm_event_kind kind)
{
	switch (kind) {
	case VM_EVENT_SHUTDOWN:
		return "SHUTDOWN";
	case VM_EVENT_STOP:
		return "STOP";
	case VM_EVENT_RESUME:
		return "RESUME";
	case VM_EVENT_RESET:
		return "RESET";
	case VM_EVENT_POWERDOWN:
		return "POWERDOWN";
	case VM_EVENT_BALLOON_CHANGE:
		return "BALLOON_CHANGED"; /* StratoVirt's name; QEMU's follows it */
	case VM_EVENT_DEVICE_DELETED:
		return "DEVICE_DELETED";
	}
	return NULL;
}

static int qmp_session_send_named_event(struct qmp_session *s, const char *name,
					const struct vm_event *ev, const struct timespec *ts);

int qmp_session_send_event(struct qmp_session *s, const struct vm_event *ev,
			   const struct timespec *ts)
{
	int ret = qmp_session_send_named_event(s, qmp_event_name(ev->kind), ev, ts);

	/* QEMU (and libvirt, which listens for it) names the balloon event
	 * BALLOON_CHANGE: send both so clients of either VMM see theirs. */
	if (ret == 0 && ev->kind == VM_EVENT_BALLOON_CHANGE)
		ret = qmp_session_send_named_event(s, "BALLOON_CHANGE", ev, ts);
	return ret;
}

static int qmp_session_send_named_event(struct qmp_session *s, const char *name,
					const struct vm_event *ev, const struct timespec *ts)
{
	struct timespec now;

	if (s->broken)
		return -EPIPE;
	/* QEMU delivers no event before negotiation: the client is not ready. */
	if (!s->negotiated || !name)
		return 0;
	if (!ts) {
		clock_gettime(CLOCK_REALTIME, &now);
		ts = &now;
	}
	yajl_gen g = qmp_gen_new();
	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	qmp_gen_key_string(g, "event", name);
	if (ev->kind == VM_EVENT_SHUTDOWN || ev->kind == VM_EVENT_RESET) {
		qmp_gen_string(g, "data");
		yajl_gen_map_open(g);
		qmp_gen_key_bool(g, "guest", ev->guest);
		/* RESET carries QEMU's reset reasons, which the VM does not set. */
		if (ev->kind == VM_EVENT_SHUTDOWN)
			qmp_gen_key_string(g, "reason", vm_shutdown_reason_name(ev->reason));
		else
			qmp_gen_key_string(g, "reason",
					   ev->guest ? "guest-reset" : "host-qmp-system-reset");
		yajl_gen_map_close(g);
	} else if (ev->kind == VM_EVENT_BALLOON_CHANGE) {
		qmp_gen_string(g, "data");
		yajl_gen_map_open(g);
		qmp_gen_key_int(g, "actual", (long long)ev->balloon_actual);
		yajl_gen_map_close(g);
	} else if (ev->kind == VM_EVENT_DEVICE_DELETED) {
		/* QEMU's shape: the id and the QOM path of a -device/device_add device. */
		char path[128];
		const char *id = ev->device_id ? ev->device_id : "";
		snprintf(path, sizeof(path), "/machine/peripheral/%s", id);
		qmp_gen_string(g, "data");
		yajl_gen_map_open(g);
		qmp_gen_key_string(g, "device", id);
		qmp_gen_key_string(g, "path", path);
		yajl_gen_map_close(g);
	}
	qmp_gen_string(g, "timestamp");
	yajl_gen_map_open(g);
	qmp_gen_key_int(g, "seconds", (long long)ts->tv_sec);
	qmp_gen_key_int(g, "microseconds", (long long)(ts->tv_nsec / 1000));
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	qmp_send(s, g);
	yajl_gen_free(g);
	return s->broken ? -EPIPE : 0;
}

/* ---- Dispatch ---- */

static void qmp_dispatch(struct qmp_session *s, yajl_val req)
{
	struct qmp_error e = {.cls = QMP_ERROR_GENERIC};
	yajl_val id = NULL, execute = NULL, args = NULL;

	if (!YAJL_IS_OBJECT(req)) {
		qmp_reply_input_error(s, "QMP input must be a JSON object");
		return;
	}
	/* Found first, so that every later error echoes it. */
	id = qmp_arg_get(req, "id");

	const char *dup = qmp_object_duplicate_key(req);
	if (dup) {
		qmp_error_set(&e, QMP_ERROR_GENERIC, "JSON parse error, duplicate key '%s'", dup);
		goto fail;
	}
	for (size_t i = 0; i < req->u.object.len; i++) {
		const char *key = req->u.object.keys[i];
		yajl_val v = req->u.object.values[i];
		if (strcmp(key, "execute") == 0) {
			if (!YAJL_IS_STRING(v)) {
				qmp_error_set(&e, QMP_ERROR_GENERIC,
					      "QMP input member 'execute' must be a string");
				goto fail;
			}
			execute = v;
		} else if (strcmp(key, "arguments") == 0) {
			if (!YAJL_IS_OBJECT(v)) {
				qmp_error_set(&e, QMP_ERROR_GENERIC,
					      "QMP input member 'arguments' must be an object");
				goto fail;
			}
			args = v;
		} else if (strcmp(key, "id") != 0) {
			/* "exec-oob" included: out-of-band execution is not offered. */
			qmp_error_set(&e, QMP_ERROR_GENERIC, "QMP input member '%s' is unexpected",
				      key);
			goto fail;
		}
	}
	if (!execute) {
		qmp_error_set(&e, QMP_ERROR_GENERIC, "QMP input lacks member 'execute'");
		goto fail;
	}

	const struct qmp_command *cmd = qmp_command_find(execute->u.string);
	if (!s->negotiated && (!cmd || cmd->run != qmp_cmd_qmp_capabilities)) {
		qmp_error_set(&e, QMP_ERROR_COMMAND_NOT_FOUND,
			      "Expecting capabilities negotiation with 'qmp_capabilities'");
		goto fail;
	}
	if (!cmd) {
		qmp_error_set(&e, QMP_ERROR_COMMAND_NOT_FOUND, "The command %s has not been found",
			      execute->u.string);
		goto fail;
	}
	dup = qmp_object_duplicate_key(args);
	if (dup) {
		qmp_error_set(&e, QMP_ERROR_GENERIC, "JSON parse error, duplicate key '%s'", dup);
		goto fail;
	}
	if (qmp_args_check(cmd->args, cmd->allow_extra_args, args, &e) < 0)
		goto fail;

	yajl_gen g = qmp_gen_new();
	if (!g) {
		qmp_error_set(&e, QMP_ERROR_GENERIC, "Out of memory");
		goto fail;
	}
	yajl_gen_map_open(g);
	qmp_gen_string(g, "return");
	if (cmd->run(s, args, g, &e) < 0) {
		yajl_gen_free(g);
		goto fail;
	}
	if (id) {
		qmp_gen_string(g, "id");
		qmp_gen_value(g, id);
	}
	yajl_gen_map_close(g);
	qmp_send(s, g);
	yajl_gen_free(g);
	return;
fail:
	qmp_reply_error(s, id, &e);
}

/* yajl's own parser as the judge of syntax, with its short message. */
static int qmp_json_check(const char *text, size_t len, char *why, size_t why_len)
{
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);
	if (!h) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st != yajl_status_ok) {
		unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
		snprintf(why, why_len, "%s", msg ? (const char *)msg : "invalid JSON");
		if (msg)
			yajl_free_error(h, msg);
		why[strcspn(why, "\r\n")] = '\0';
	}
	yajl_free(h);
	return st == yajl_status_ok ? 0 : -1;
}

static void qmp_handle_message(struct qmp_session *s, const char *text, size_t len)
{
	char why[256];

	if (qmp_json_check(text, len, why, sizeof(why)) < 0) {
		qmp_reply_input_error(s, "JSON parse error, %s", why);
		return;
	}
	yajl_val req = yajl_tree_parse(text, why, sizeof(why));
	if (!req) {
		why[strcspn(why, "\r\n")] = '\0';
		qmp_reply_input_error(s, "JSON parse error, %s", why[0] ? why : "invalid JSON");
		return;
	}
	qmp_dispatch(s, req);
	yajl_tree_free(req);

	/* Even when the reply could not be sent, the command has been accepted. */
	void (*after)(struct qmp_session *) = s->after_reply;
	s->after_reply = NULL;
	if (after)
		after(s);
}

/* ---- Framing ---- */

static bool qmp_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Bytes that never occur in valid JSON text outside strings nor raw inside
 * them: the resynchronisation points QEMU documents. */
static bool qmp_is_sync_byte(unsigned char c)
{
	return (c < 0x20 && !qmp_is_space(c)) || c == 0xff || c == 0xfe;
}

static bool qmp_ends_bare_token(unsigned char c)
{
	return qmp_is_space(c) || c == '{' || c == '}' || c == '[' || c == ']' || c == ',' ||
	       c == ':' || c == '"';
}

static void qmp_frame_reset(struct qmp_session *s)
{
	s->msg_len = 0;
	s->msg_active = false;
	s->msg_discarding = false;
	s->msg_bare = false;
	s->in_string = false;
	s->escaped = false;
	s->depth = 0;
}

static void qmp_frame_discard(struct qmp_session *s, const char *why)
{
	if (!s->msg_discarding)
		qmp_reply_input_error(s, "JSON parse error, %s", why);
	s->msg_discarding = true;
}

static void qmp_frame_append(struct qmp_session *s, unsigned char c)
{
	if (s->msg_discarding)
		return;
	if (s->msg_len >= QMP_MAX_MESSAGE) {
		char why[96];
		snprintf(why, sizeof(why), "message longer than %d bytes, discarded",
			 QMP_MAX_MESSAGE);
		qmp_frame_discard(s, why);
		return;
	}
	if (!s->msg) {
		/* The whole bound at once: 64 KiB per client is cheap, growing is not simpler. */
		s->msg = malloc(QMP_MAX_MESSAGE + 1);
		if (!s->msg) {
			qmp_frame_discard(s, "out of memory, message discarded");
			return;
		}
	}
	s->msg[s->msg_len++] = (char)c;
}

static void qmp_frame_complete(struct qmp_session *s)
{
	if (!s->msg_discarding && s->msg_len) {
		s->msg[s->msg_len] = '\0';
		size_t len = s->msg_len;
		qmp_frame_reset(s);
		qmp_handle_message(s, s->msg, len);
		return;
	}
	qmp_frame_reset(s);
}

/* The first byte of a top-level value. */
static void qmp_frame_start(struct qmp_session *s, unsigned char c)
{
	qmp_frame_reset(s);
	s->msg_active = true;
	if (c == '{' || c == '[')
		s->depth = 1;
	else if (c == '"')
		s->in_string = true;
	else
		s->msg_bare = true;
	qmp_frame_append(s, c);
}

int qmp_session_feed(struct qmp_session *s, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i = 0;

	while (i < len && !s->broken) {
		unsigned char c = p[i];

		if (qmp_is_sync_byte(c)) {
			if (s->msg_active)
				qmp_frame_discard(s, "control character in input, message "
						     "discarded");
			qmp_frame_reset(s);
			i++;
			continue;
		}
		if (!s->msg_active) {
			i++;
			if (qmp_is_space(c))
				continue;
			if (c == '}' || c == ']' || c == ',' || c == ':') {
				qmp_reply_input_error(s, "JSON parse error, unexpected '%c'", c);
				continue;
			}
			qmp_frame_start(s, c);
			continue;
		}
		if (s->msg_bare) {
			/* A number or keyword ends at the first byte that is not part of it,
			 * which then starts (or separates) what follows. */
			if (qmp_ends_bare_token(c)) {
				qmp_frame_complete(s);
				continue;
			}
			qmp_frame_append(s, c);
			i++;
			continue;
		}
		qmp_frame_append(s, c);
		i++;
		if (s->in_string) {
			if (s->escaped)
				s->escaped = false;
			else if (c == '\\')
				s->escaped = true;
			else if (c == '"') {
				s->in_string = false;
				if (s->depth == 0)
					qmp_frame_complete(s);
			}
			continue;
		}
		if (c == '"') {
			s->in_string = true;
		} else if (c == '{' || c == '[') {
			if (++s->depth > QMP_MAX_DEPTH) {
				char why[96];
				snprintf(why, sizeof(why),
					 "nesting deeper than %d levels, discarded", QMP_MAX_DEPTH);
				qmp_frame_discard(s, why);
			}
		} else if (c == '}' || c == ']') {
			if (--s->depth == 0)
				qmp_frame_complete(s);
		}
	}
	return s->broken ? -EPIPE : 0;
}

/* ---- Lifetime ---- */

struct qmp_session *qmp_session_new(const struct qmp_backend *be, void *be_opaque,
				    qmp_write_fn write, void *write_opaque)
{
	struct qmp_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->be = be;
	s->be_opaque = be_opaque;
	s->write = write;
	s->write_opaque = write_opaque;
	return s;
}

void qmp_session_free(struct qmp_session *s)
{
	if (!s)
		return;
	free(s->msg);
	free(s);
}

bool qmp_session_negotiated(const struct qmp_session *s)
{
	return s->negotiated;
}
