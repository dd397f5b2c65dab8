/*
 * The petrel agent protocol: framing, message encoding and decoding
 * (docs/agent-protocol.md). Shared by the host and petrel-agent; each side
 * treats the other's bytes as hostile.
 */
#include "agent-proto.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "cleanup.h"

/*
 * perr_setx that evaluates to `code` itself: the static analyzer does not follow
 * variadic calls, and needs to see that every error path returns a negative value.
 */
#define proto_error(err, code, ...) (perr_setx((err), (code), __VA_ARGS__), (code))

/* ---- frames ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void agent_frame_header_encode(uint8_t *out, uint8_t type, uint32_t proc, uint32_t len)
{
	put_be32(out, len);
	out[4] = type;
	out[5] = out[6] = out[7] = 0;
	put_be32(out + 8, proc);
}

int agent_frame_header_decode(const uint8_t *in, struct agent_frame *frame, struct perr *err)
{
	uint32_t len = get_be32(in);
	uint8_t type = in[4];
	uint32_t proc = get_be32(in + 8);

	if (type < AGENT_FRAME_MSG || type > AGENT_FRAME_STDERR)
		return proto_error(err, -EPROTO, "frame: unknown type %u", type);
	if (in[5] || in[6] || in[7])
		return proto_error(err, -EPROTO, "frame: reserved header bytes are not zero");
	if (len > AGENT_FRAME_MAX_PAYLOAD)
		return proto_error(err, -EPROTO, "frame: payload of %" PRIu32 " bytes exceeds %u",
				   len, AGENT_FRAME_MAX_PAYLOAD);
	if (type == AGENT_FRAME_MSG && proc != 0)
		return proto_error(err, -EPROTO, "frame: a message frame names process %" PRIu32,
				   proc);
	if (type == AGENT_FRAME_MSG && len == 0)
		return proto_error(err, -EPROTO, "frame: empty message");
	if (type != AGENT_FRAME_MSG && proc == 0)
		return proto_error(err, -EPROTO, "frame: a stdio frame names process 0");
	frame->type = type;
	frame->proc = proc;
	frame->len = len;
	frame->payload = NULL;
	return 0;
}

#define READER_CHUNK (64u << 10)

void agent_reader_init(struct agent_reader *rd)
{
	memset(rd, 0, sizeof(*rd));
}

void agent_reader_free(struct agent_reader *rd)
{
	free(rd->buf);
	memset(rd, 0, sizeof(*rd));
}

/* Moves the unconsumed bytes to the front and makes room for `want` more. */
static int reader_make_room(struct agent_reader *rd, size_t want)
{
	size_t have = rd->len - rd->start;
	if (rd->start > 0) {
		memmove(rd->buf, rd->buf + rd->start, have);
		rd->start = 0;
		rd->len = have;
	}
	if (rd->cap - rd->len >= want)
		return 0;
	size_t cap = rd->len + want;
	uint8_t *p = realloc(rd->buf, cap);
	if (!p)
		return -ENOMEM;
	rd->buf = p;
	rd->cap = cap;
	return 0;
}

/* How many bytes to ask for: at least a chunk, or the rest of the current frame. */
static size_t reader_want(const struct agent_reader *rd)
{
	size_t have = rd->len - rd->start;
	size_t want = READER_CHUNK;
	if (have >= AGENT_FRAME_HEADER_SIZE) {
		uint32_t plen = get_be32(rd->buf + rd->start);
		if (plen <= AGENT_FRAME_MAX_PAYLOAD) {
			size_t total = AGENT_FRAME_HEADER_SIZE + (size_t)plen;
			if (total > have && total - have > want)
				want = total - have;
		}
	}
	return want;
}

int agent_reader_feed(struct agent_reader *rd, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	int r = reader_make_room(rd, len);
	if (r < 0)
		return r;
	memcpy(rd->buf + rd->len, data, len);
	rd->len += len;
	return 0;
}

ssize_t agent_reader_fill(struct agent_reader *rd, int fd)
{
	int r = reader_make_room(rd, reader_want(rd));
	if (r < 0)
		return r;
	ssize_t n;
	do
		n = read(fd, rd->buf + rd->len, rd->cap - rd->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	rd->len += (size_t)n;
	return n;
}

int agent_reader_next(struct agent_reader *rd, struct agent_frame *frame, struct perr *err)
{
	if (rd->broken)
		return proto_error(err, -EPROTO, "stream already failed");
	size_t have = rd->len - rd->start;
	if (have < AGENT_FRAME_HEADER_SIZE)
		return 0;
	int r = agent_frame_header_decode(rd->buf + rd->start, frame, err);
	if (r < 0) {
		rd->broken = true;
		return r;
	}
	if (have - AGENT_FRAME_HEADER_SIZE < frame->len)
		return 0;
	frame->payload = rd->buf + rd->start + AGENT_FRAME_HEADER_SIZE;
	rd->start += AGENT_FRAME_HEADER_SIZE + frame->len;
	return 1;
}

size_t agent_reader_pending(const struct agent_reader *rd)
{
	return rd->len - rd->start;
}

void agent_writer_init(struct agent_writer *wr)
{
	memset(wr, 0, sizeof(*wr));
}

void agent_writer_free(struct agent_writer *wr)
{
	free(wr->buf);
	memset(wr, 0, sizeof(*wr));
}

/* Makes room for len more bytes at the end of the queue. */
static int writer_reserve(struct agent_writer *wr, size_t len)
{
	if (wr->start == wr->len)
		wr->start = wr->len = 0;
	if (wr->cap - wr->len < len && wr->start > 0) {
		memmove(wr->buf, wr->buf + wr->start, wr->len - wr->start);
		wr->len -= wr->start;
		wr->start = 0;
	}
	if (wr->cap - wr->len >= len)
		return 0;
	size_t cap = wr->cap ? wr->cap : 4096;
	while (cap - wr->len < len)
		cap *= 2;
	uint8_t *p = realloc(wr->buf, cap);
	if (!p)
		return -ENOMEM;
	wr->buf = p;
	wr->cap = cap;
	return 0;
}

int agent_writer_frame(struct agent_writer *wr, uint8_t type, uint32_t proc, const void *payload,
		       size_t len)
{
	if (len > AGENT_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	int r = writer_reserve(wr, AGENT_FRAME_HEADER_SIZE + len);
	if (r < 0)
		return r;
	agent_frame_header_encode(wr->buf + wr->len, type, proc, (uint32_t)len);
	if (len)
		memcpy(wr->buf + wr->len + AGENT_FRAME_HEADER_SIZE, payload, len);
	wr->len += AGENT_FRAME_HEADER_SIZE + len;
	return 0;
}

int agent_writer_flush(struct agent_writer *wr, int fd)
{
	while (wr->start < wr->len) {
		ssize_t n =
		    send(fd, wr->buf + wr->start, wr->len - wr->start, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, wr->buf + wr->start, wr->len - wr->start);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		wr->start += (size_t)n;
	}
	wr->start = wr->len = 0;
	return 0;
}

size_t agent_writer_pending(const struct agent_writer *wr)
{
	return wr->len - wr->start;
}

/* ---- names ---- */

static const char *const msg_type_names[AGENT_MSG_TYPE_COUNT] = {
    [AGENT_MSG_HELLO] = "hello",
    [AGENT_MSG_CREATE] = "create",
    [AGENT_MSG_CREATED] = "created",
    [AGENT_MSG_START] = "start",
    [AGENT_MSG_STARTED] = "started",
    [AGENT_MSG_EXEC] = "exec",
    [AGENT_MSG_EXEC_STARTED] = "exec-started",
    [AGENT_MSG_SIGNAL] = "signal",
    [AGENT_MSG_RESIZE] = "resize",
    [AGENT_MSG_SHUTDOWN] = "shutdown",
    [AGENT_MSG_OK] = "ok",
    [AGENT_MSG_EXIT] = "exit",
    [AGENT_MSG_ERROR] = "error",
};

void agent_hello_init_host(struct agent_msg *m)
{
	*m = (struct agent_msg){.type = AGENT_MSG_HELLO};
	m->u.hello.version = AGENT_PROTO_VERSION;
	m->u.hello.agent = "petrel " PETREL_VERSION;
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now) == 0 && now.tv_sec > 0)
		m->u.hello.time_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	m->u.hello.has_seed = getrandom(m->u.hello.seed, sizeof(m->u.hello.seed), GRND_NONBLOCK) ==
			      (ssize_t)sizeof(m->u.hello.seed);
}

const char *agent_msg_type_name(enum agent_msg_type type)
{
	if ((unsigned)type >= AGENT_MSG_TYPE_COUNT)
		return NULL;
	return msg_type_names[type];
}

/* Linux capability numbers, include/uapi/linux/capability.h. */
static const char *const cap_names[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

int agent_cap_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcmp(cap_names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *agent_cap_name(int cap)
{
	if (cap < 0 || (size_t)cap >= ARRAY_SIZE(cap_names))
		return NULL;
	return cap_names[cap];
}

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},		  {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},	  {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},	  {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},	  {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},	  {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},	  {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},	  {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

int agent_rlimit_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (strcmp(rlimit_names[i].name, name) == 0)
			return rlimit_names[i].resource;
	return -1;
}

const char *agent_rlimit_name(int resource)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (rlimit_names[i].resource == resource)
			return rlimit_names[i].name;
	return NULL;
}

/* ---- mount options ---- */

enum mount_opt_kind { MOPT_SET, MOPT_CLEAR, MOPT_PROPAGATION, MOPT_REFUSE, MOPT_TMPCOPYUP };

static const struct {
	const char *name;
	enum mount_opt_kind kind;
	unsigned long flag;
} mount_opts[] = {
    {"defaults", MOPT_SET, 0},
    {"ro", MOPT_SET, MS_RDONLY},
    {"rw", MOPT_CLEAR, MS_RDONLY},
    {"nosuid", MOPT_SET, MS_NOSUID},
    {"suid", MOPT_CLEAR, MS_NOSUID},
    {"nodev", MOPT_SET, MS_NODEV},
    {"dev", MOPT_CLEAR, MS_NODEV},
    {"noexec", MOPT_SET, MS_NOEXEC},
    {"exec", MOPT_CLEAR, MS_NOEXEC},
    {"sync", MOPT_SET, MS_SYNCHRONOUS},
    {"async", MOPT_CLEAR, MS_SYNCHRONOUS},
    {"dirsync", MOPT_SET, MS_DIRSYNC},
    {"mand", MOPT_SET, MS_MANDLOCK},
    {"nomand", MOPT_CLEAR, MS_MANDLOCK},
    {"noatime", MOPT_SET, MS_NOATIME},
    {"atime", MOPT_CLEAR, MS_NOATIME},
    {"nodiratime", MOPT_SET, MS_NODIRATIME},
    {"diratime", MOPT_CLEAR, MS_NODIRATIME},
    {"relatime", MOPT_SET, MS_RELATIME},
    {"norelatime", MOPT_CLEAR, MS_RELATIME},
    {"strictatime", MOPT_SET, MS_STRICTATIME},
    {"nostrictatime", MOPT_CLEAR, MS_STRICTATIME},
    {"nosymfollow", MOPT_SET, MS_NOSYMFOLLOW},
    {"symfollow", MOPT_CLEAR, MS_NOSYMFOLLOW},
    {"silent", MOPT_SET, MS_SILENT},
    {"loud", MOPT_CLEAR, MS_SILENT},
    {"private", MOPT_PROPAGATION, MS_PRIVATE},
    {"rprivate", MOPT_PROPAGATION, MS_REC | MS_PRIVATE},
    {"shared", MOPT_PROPAGATION, MS_SHARED},
    {"rshared", MOPT_PROPAGATION, MS_REC | MS_SHARED},
    {"slave", MOPT_PROPAGATION, MS_SLAVE},
    {"rslave", MOPT_PROPAGATION, MS_REC | MS_SLAVE},
    {"unbindable", MOPT_PROPAGATION, MS_UNBINDABLE},
    {"runbindable", MOPT_PROPAGATION, MS_REC | MS_UNBINDABLE},
    {"bind", MOPT_REFUSE, 0},
    {"rbind", MOPT_REFUSE, 0},
    {"remount", MOPT_REFUSE, 0},
    {"idmap", MOPT_REFUSE, 0},
    {"ridmap", MOPT_REFUSE, 0},
    {"tmpcopyup", MOPT_TMPCOPYUP, 0},
};

/* mount(2) takes at most a page of data. */
#define MOUNT_DATA_MAX 4095

int agent_mount_flags_parse(char *const *options, size_t n, struct agent_mount_flags *out,
			    struct perr *err)
{
	memset(out, 0, sizeof(*out));
	size_t data_len = 0;
	for (size_t i = 0; i < n; i++) {
		const char *o = options[i];
		size_t k;
		for (k = 0; k < ARRAY_SIZE(mount_opts); k++)
			if (strcmp(mount_opts[k].name, o) == 0)
				break;
		if (k < ARRAY_SIZE(mount_opts)) {
			switch (mount_opts[k].kind) {
			case MOPT_SET:
				out->flags |= mount_opts[k].flag;
				break;
			case MOPT_CLEAR:
				out->flags &= ~mount_opts[k].flag;
				break;
			case MOPT_PROPAGATION:
				out->propagation = mount_opts[k].flag;
				break;
			case MOPT_TMPCOPYUP:
				out->tmpcopyup = true;
				break;
			case MOPT_REFUSE:
				agent_mount_flags_free(out);
				if (strcmp(o, "bind") == 0 || strcmp(o, "rbind") == 0)
					return proto_error(err, -ENOTSUP,
							   "options[%zu]: \"%s\": bind mounts of "
							   "host paths are not "
							   "supported (no shared filesystem yet)",
							   i, o);
				return proto_error(err, -ENOTSUP,
						   "options[%zu]: \"%s\" is not supported", i, o);
			}
			continue;
		}
		/* mount(8) keeps x-* options for userspace helpers; the kernel never sees them. */
		if (strncmp(o, "x-", 2) == 0)
			continue;
		size_t olen = strlen(o);
		if (olen == 0) {
			agent_mount_flags_free(out);
			return proto_error(err, -EINVAL, "options[%zu]: empty option", i);
		}
		size_t need = data_len + (data_len ? 1 : 0) + olen;
		if (need > MOUNT_DATA_MAX) {
			agent_mount_flags_free(out);
			return proto_error(err, -E2BIG,
					   "options[%zu]: filesystem options exceed %d bytes", i,
					   MOUNT_DATA_MAX);
		}
		char *p = realloc(out->data, need + 1);
		if (!p) {
			agent_mount_flags_free(out);
			return proto_error(err, -ENOMEM, "options: out of memory");
		}
		out->data = p;
		if (data_len)
			p[data_len++] = ',';
		memcpy(p + data_len, o, olen + 1);
		data_len += olen;
	}
	return 0;
}

void agent_mount_flags_free(struct agent_mount_flags *mf)
{
	free(mf->data);
	mf->data = NULL;
}

/* ---- decoding ---- */

/*
 * yajl_tree frees values recursively and cannot be told to stop at a depth, and it
 * turns "\u0000" into a NUL that would silently cut a C string short: refuse both
 * before parsing.
 */
static int json_prescan(const char *s, size_t len, struct perr *err)
{
	int depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\0')
			return proto_error(err, -EPROTO, "NUL byte in a message");
		if (in_string) {
			if (c == '\\') {
				if (i + 5 < len && s[i + 1] == 'u' &&
				    memcmp(s + i + 2, "0000", 4) == 0)
					return proto_error(err, -EPROTO, "\\u0000 in a string");
				i++;
			} else if (c == '"') {
				in_string = false;
			}
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > AGENT_MAX_NESTING)
				return proto_error(err, -EPROTO, "JSON nested deeper than %d",
						   AGENT_MAX_NESTING);
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return 0;
}

static yajl_val obj_get(yajl_val obj, const char *key)
{
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0) {
			yajl_val v = obj->u.object.values[i];
			return YAJL_IS_NULL(v) ? NULL : v;
		}
	return NULL;
}

/* Joins a JSON path for error messages: "process" + "args" -> "process.args".
 * A path too long for the buffer is cut short: it only ever appears in a message. */
static void path_join(char *out, size_t size, const char *base, const char *key)
{
	int n = snprintf(out, size, "%s.%s", base, key);
	if (n < 0)
		out[0] = '\0';
}

static void path_index(char *out, size_t size, const char *base, size_t i)
{
	int n = snprintf(out, size, "%s[%zu]", base, i);
	if (n < 0)
		out[0] = '\0';
}

#define PATH_BUF 192

static int dec_u64(yajl_val v, const char *path, uint64_t max, uint64_t *out, struct perr *err)
{
	if (!YAJL_IS_NUMBER(v) || !v->u.number.r)
		return proto_error(err, -EINVAL, "%s: expected an integer between 0 and %" PRIu64,
				   path, max);
	errno = 0;
	char *end;
	unsigned long long x = strtoull(v->u.number.r, &end, 10);
	/* strtoull accepts "-1" as a huge number: only digits are a non-negative integer. */
	if (v->u.number.r[0] < '0' || v->u.number.r[0] > '9' || errno || *end || x > max)
		return proto_error(err, -ERANGE,
				   "%s: %.32s is not an integer between 0 and %" PRIu64, path,
				   v->u.number.r, max);
	*out = x;
	return 0;
}

static int dec_u32(yajl_val v, const char *path, uint32_t max, uint32_t *out, struct perr *err)
{
	uint64_t x = 0;
	int r = dec_u64(v, path, max, &x, err);
	if (r == 0)
		*out = (uint32_t)x;
	return r;
}

static int dec_int(yajl_val v, const char *path, int min, int max, int *out, struct perr *err)
{
	if (!YAJL_IS_NUMBER(v) || !v->u.number.r)
		return proto_error(err, -EINVAL, "%s: expected an integer between %d and %d", path,
				   min, max);
	errno = 0;
	char *end;
	long long x = strtoll(v->u.number.r, &end, 10);
	if (errno || *end || end == v->u.number.r || x < min || x > max)
		return proto_error(err, -ERANGE, "%s: %.32s is not an integer between %d and %d",
				   path, v->u.number.r, min, max);
	*out = (int)x;
	return 0;
}

static int dec_bool(yajl_val v, const char *path, bool *out, struct perr *err)
{
	if (YAJL_IS_TRUE(v))
		*out = true;
	else if (YAJL_IS_FALSE(v))
		*out = false;
	else
		return proto_error(err, -EINVAL, "%s: expected true or false", path);
	return 0;
}

static int dec_string(yajl_val v, const char *path, size_t max, char **out, struct perr *err)
{
	if (!YAJL_IS_STRING(v))
		return proto_error(err, -EINVAL, "%s: expected a string", path);
	size_t len = strlen(v->u.string);
	if (len > max)
		return proto_error(err, -E2BIG, "%s: string of %zu bytes exceeds %zu", path, len,
				   max);
	char *s = strdup(v->u.string);
	if (!s)
		return proto_error(err, -ENOMEM, "%s: out of memory", path);
	free(*out);
	*out = s;
	return 0;
}

/* Exactly size bytes as 2*size lowercase or uppercase hex digits. */
static int dec_hex(yajl_val v, const char *path, uint8_t *out, size_t size, struct perr *err)
{
	if (!YAJL_IS_STRING(v) || strlen(v->u.string) != 2 * size)
		return proto_error(err, -EINVAL, "%s: expected %zu hex digits", path, 2 * size);
	for (size_t i = 0; i < size; i++) {
		unsigned x;
		char pair[3] = {v->u.string[2 * i], v->u.string[2 * i + 1], 0};
		char *end;
		if (!isxdigit((unsigned char)pair[0]) || !isxdigit((unsigned char)pair[1]))
			return proto_error(err, -EINVAL, "%s: expected %zu hex digits", path,
					   2 * size);
		x = (unsigned)strtoul(pair, &end, 16);
		out[i] = (uint8_t)x;
	}
	return 0;
}

static int dec_abs_path(yajl_val v, const char *path, char **out, struct perr *err)
{
	int r = dec_string(v, path, AGENT_MAX_PATH, out, err);
	if (r < 0)
		return r;
	if ((*out)[0] != '/')
		return proto_error(err, -EINVAL, "%s: \"%s\" is not an absolute path", path, *out);
	return 0;
}

static void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A NULL-terminated array of strings, each checked by `check` when given. */
static int dec_strv(yajl_val v, const char *path, size_t max_n, size_t max_len, char ***out,
		    size_t *n_out, int (*check)(const char *s, const char *path, struct perr *err),
		    struct perr *err)
{
	if (!YAJL_IS_ARRAY(v))
		return proto_error(err, -EINVAL, "%s: expected an array of strings", path);
	size_t n = v->u.array.len;
	if (n > max_n)
		return proto_error(err, -E2BIG, "%s: %zu entries exceed %zu", path, n, max_n);
	char **arr = calloc(n + 1, sizeof(*arr));
	if (!arr)
		return proto_error(err, -ENOMEM, "%s: out of memory", path);
	for (size_t i = 0; i < n; i++) {
		char p[PATH_BUF];
		path_index(p, sizeof(p), path, i);
		int r = dec_string(v->u.array.values[i], p, max_len, &arr[i], err);
		if (r == 0 && check)
			r = check(arr[i], p, err);
		if (r < 0) {
			strv_free(arr, n);
			return r;
		}
	}
	strv_free(*out, *n_out);
	*out = arr;
	*n_out = n;
	return 0;
}

static int check_env(const char *s, const char *path, struct perr *err)
{
	const char *eq = strchr(s, '=');
	if (!eq || eq == s)
		return proto_error(err, -EINVAL, "%s: \"%.64s\" is not KEY=value", path, s);
	return 0;
}

static int check_abs(const char *s, const char *path, struct perr *err)
{
	if (s[0] != '/')
		return proto_error(err, -EINVAL, "%s: \"%.64s\" is not an absolute path", path, s);
	return 0;
}

static int dec_caps(yajl_val v, const char *path, uint64_t *mask, struct perr *err)
{
	if (!YAJL_IS_ARRAY(v))
		return proto_error(err, -EINVAL, "%s: expected an array of capability names", path);
	if (v->u.array.len > 64)
		return proto_error(err, -E2BIG, "%s: too many entries", path);
	*mask = 0;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		if (!YAJL_IS_STRING(e))
			return proto_error(err, -EINVAL, "%s[%zu]: expected a capability name",
					   path, i);
		int cap = agent_cap_from_name(e->u.string);
		if (cap < 0)
			return proto_error(err, -EINVAL, "%s[%zu]: unknown capability \"%.64s\"",
					   path, i, e->u.string);
		*mask |= 1ull << cap;
	}
	return 0;
}

static void process_free(struct agent_process *p)
{
	strv_free(p->args, p->nargs);
	strv_free(p->env, p->nenv);
	free(p->cwd);
	free(p->gids);
	free(p->rlimits);
	memset(p, 0, sizeof(*p));
}

static int dec_user(yajl_val v, const char *path, struct agent_process *p, struct perr *err)
{
	char q[PATH_BUF];
	if (!YAJL_IS_OBJECT(v))
		return proto_error(err, -EINVAL, "%s: expected an object", path);
	yajl_val f;
	int r = 0;
	if ((f = obj_get(v, "uid"))) {
		path_join(q, sizeof(q), path, "uid");
		r = dec_u32(f, q, UINT32_MAX - 1, &p->uid, err);
	}
	if (r == 0 && (f = obj_get(v, "gid"))) {
		path_join(q, sizeof(q), path, "gid");
		r = dec_u32(f, q, UINT32_MAX - 1, &p->gid, err);
	}
	if (r == 0 && (f = obj_get(v, "umask"))) {
		path_join(q, sizeof(q), path, "umask");
		r = dec_u32(f, q, 0777, &p->umask, err);
		p->has_umask = r == 0;
	}
	if (r == 0 && (f = obj_get(v, "additionalGids"))) {
		path_join(q, sizeof(q), path, "additionalGids");
		if (!YAJL_IS_ARRAY(f))
			return proto_error(err, -EINVAL, "%s: expected an array of integers", q);
		if (f->u.array.len > AGENT_MAX_GIDS)
			return proto_error(err, -E2BIG, "%s: %zu entries exceed %d", q,
					   f->u.array.len, AGENT_MAX_GIDS);
		p->gids = calloc(f->u.array.len + 1, sizeof(*p->gids));
		if (!p->gids)
			return proto_error(err, -ENOMEM, "%s: out of memory", q);
		p->ngids = f->u.array.len;
		for (size_t i = 0; r == 0 && i < f->u.array.len; i++) {
			char qi[PATH_BUF];
			path_index(qi, sizeof(qi), q, i);
			r = dec_u32(f->u.array.values[i], qi, UINT32_MAX - 1, &p->gids[i], err);
		}
	}
	return r;
}

static int dec_rlimits(yajl_val v, const char *path, struct agent_process *p, struct perr *err)
{
	if (!YAJL_IS_ARRAY(v))
		return proto_error(err, -EINVAL, "%s: expected an array", path);
	size_t n = v->u.array.len;
	if (n > ARRAY_SIZE(rlimit_names))
		return proto_error(err, -E2BIG, "%s: %zu entries, at most one per limit", path, n);
	p->rlimits = calloc(n + 1, sizeof(*p->rlimits));
	if (!p->rlimits)
		return proto_error(err, -ENOMEM, "%s: out of memory", path);
	p->nrlimits = n;
	for (size_t i = 0; i < n; i++) {
		yajl_val e = v->u.array.values[i], f;
		char q[PATH_BUF], qf[PATH_BUF];
		path_index(q, sizeof(q), path, i);
		if (!YAJL_IS_OBJECT(e))
			return proto_error(err, -EINVAL, "%s: expected an object", q);
		path_join(qf, sizeof(qf), q, "type");
		f = obj_get(e, "type");
		if (!YAJL_IS_STRING(f))
			return proto_error(err, -EINVAL,
					   "%s: expected a string like \"RLIMIT_NOFILE\"", qf);
		int res = agent_rlimit_from_name(f->u.string);
		if (res < 0)
			return proto_error(err, -EINVAL, "%s: unknown rlimit \"%.64s\"", qf,
					   f->u.string);
		for (size_t j = 0; j < i; j++)
			if (p->rlimits[j].resource == res)
				return proto_error(err, -EINVAL, "%s: %s given twice", qf,
						   f->u.string);
		p->rlimits[i].resource = res;
		path_join(qf, sizeof(qf), q, "soft");
		int r = dec_u64(obj_get(e, "soft"), qf, UINT64_MAX, &p->rlimits[i].soft, err);
		if (r < 0)
			return r;
		path_join(qf, sizeof(qf), q, "hard");
		r = dec_u64(obj_get(e, "hard"), qf, UINT64_MAX, &p->rlimits[i].hard, err);
		if (r < 0)
			return r;
		if (p->rlimits[i].soft > p->rlimits[i].hard)
			return proto_error(err, -EINVAL,
					   "%s: soft limit %" PRIu64 " exceeds hard limit %" PRIu64,
					   q, p->rlimits[i].soft, p->rlimits[i].hard);
	}
	return 0;
}

static int dec_process(yajl_val v, const char *path, struct agent_process *p, struct perr *err)
{
	char q[PATH_BUF];
	yajl_val f;
	int r;

	if (!YAJL_IS_OBJECT(v))
		return proto_error(err, -EINVAL, "%s: expected an object", path);

	path_join(q, sizeof(q), path, "args");
	if (!(f = obj_get(v, "args")))
		return proto_error(err, -EINVAL, "%s: missing", q);
	r = dec_strv(f, q, AGENT_MAX_ARGS, AGENT_MAX_STRING, &p->args, &p->nargs, NULL, err);
	if (r < 0)
		return r;
	if (p->nargs == 0 || p->args[0][0] == '\0')
		return proto_error(err, -EINVAL, "%s: must name a program", q);

	if ((f = obj_get(v, "env"))) {
		path_join(q, sizeof(q), path, "env");
		r = dec_strv(f, q, AGENT_MAX_ENV, AGENT_MAX_STRING, &p->env, &p->nenv, check_env,
			     err);
		if (r < 0)
			return r;
	}
	path_join(q, sizeof(q), path, "cwd");
	if ((f = obj_get(v, "cwd")))
		r = dec_abs_path(f, q, &p->cwd, err);
	else if (!(p->cwd = strdup("/")))
		r = proto_error(err, -ENOMEM, "%s: out of memory", q);
	if (r < 0)
		return r;
	if ((f = obj_get(v, "user"))) {
		path_join(q, sizeof(q), path, "user");
		if ((r = dec_user(f, q, p, err)) < 0)
			return r;
	}
	if ((f = obj_get(v, "terminal"))) {
		path_join(q, sizeof(q), path, "terminal");
		if ((r = dec_bool(f, q, &p->terminal, err)) < 0)
			return r;
	}
	if ((f = obj_get(v, "consoleSize"))) {
		path_join(q, sizeof(q), path, "consoleSize");
		if (!YAJL_IS_OBJECT(f))
			return proto_error(err, -EINVAL, "%s: expected an object", q);
		uint32_t h = 0, w = 0;
		char qq[PATH_BUF];
		path_join(qq, sizeof(qq), q, "height");
		if ((r = dec_u32(obj_get(f, "height"), qq, UINT16_MAX, &h, err)) < 0)
			return r;
		path_join(qq, sizeof(qq), q, "width");
		if ((r = dec_u32(obj_get(f, "width"), qq, UINT16_MAX, &w, err)) < 0)
			return r;
		p->rows = (uint16_t)h;
		p->cols = (uint16_t)w;
	}
	if ((f = obj_get(v, "rlimits"))) {
		path_join(q, sizeof(q), path, "rlimits");
		if ((r = dec_rlimits(f, q, p, err)) < 0)
			return r;
	}
	if ((f = obj_get(v, "capabilities"))) {
		path_join(q, sizeof(q), path, "capabilities");
		if (!YAJL_IS_OBJECT(f))
			return proto_error(err, -EINVAL, "%s: expected an object", q);
		static const char *const sets[] = {"bounding", "effective", "inheritable",
						   "permitted", "ambient"};
		uint64_t *masks[] = {&p->cap_bounding, &p->cap_effective, &p->cap_inheritable,
				     &p->cap_permitted, &p->cap_ambient};
		p->has_caps = true;
		for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
			yajl_val s = obj_get(f, sets[i]);
			char qq[PATH_BUF];
			path_join(qq, sizeof(qq), q, sets[i]);
			*masks[i] = 0;
			if (s && (r = dec_caps(s, qq, masks[i], err)) < 0)
				return r;
		}
	}
	if ((f = obj_get(v, "noNewPrivileges"))) {
		path_join(q, sizeof(q), path, "noNewPrivileges");
		if ((r = dec_bool(f, q, &p->no_new_privileges, err)) < 0)
			return r;
	}
	if ((f = obj_get(v, "oomScoreAdj"))) {
		path_join(q, sizeof(q), path, "oomScoreAdj");
		if ((r = dec_int(f, q, -1000, 1000, &p->oom_score_adj, err)) < 0)
			return r;
		p->has_oom_score_adj = true;
	}
	return 0;
}

/* Kernel filesystems the agent can mount inside the VM; everything else needs host files. */
static const char *const mount_types[] = {"tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup2"};

static int dec_mounts(yajl_val v, const char *path, struct agent_create *c, struct perr *err)
{
	if (!YAJL_IS_ARRAY(v))
		return proto_error(err, -EINVAL, "%s: expected an array", path);
	size_t n = v->u.array.len;
	if (n > AGENT_MAX_MOUNTS)
		return proto_error(err, -E2BIG, "%s: %zu entries exceed %d", path, n,
				   AGENT_MAX_MOUNTS);
	c->mounts = calloc(n + 1, sizeof(*c->mounts));
	if (!c->mounts)
		return proto_error(err, -ENOMEM, "%s: out of memory", path);
	c->nmounts = n;
	for (size_t i = 0; i < n; i++) {
		struct agent_mount *m = &c->mounts[i];
		yajl_val e = v->u.array.values[i], f;
		char q[PATH_BUF], qf[PATH_BUF];
		int r;
		path_index(q, sizeof(q), path, i);
		if (!YAJL_IS_OBJECT(e))
			return proto_error(err, -EINVAL, "%s: expected an object", q);
		path_join(qf, sizeof(qf), q, "destination");
		if (!(f = obj_get(e, "destination")))
			return proto_error(err, -EINVAL, "%s: missing", qf);
		if ((r = dec_abs_path(f, qf, &m->destination, err)) < 0)
			return r;
		if ((f = obj_get(e, "source"))) {
			path_join(qf, sizeof(qf), q, "source");
			if ((r = dec_string(f, qf, AGENT_MAX_PATH, &m->source, err)) < 0)
				return r;
		}
		if ((f = obj_get(e, "options"))) {
			path_join(qf, sizeof(qf), q, "options");
			r = dec_strv(f, qf, AGENT_MAX_MOUNT_OPTIONS, 256, &m->options, &m->noptions,
				     NULL, err);
			if (r < 0)
				return r;
		}
		path_join(qf, sizeof(qf), q, "type");
		if ((f = obj_get(e, "type"))) {
			if ((r = dec_string(f, qf, 64, &m->type, err)) < 0)
				return r;
		}
		if (!m->type || strcmp(m->type, "bind") == 0 || strcmp(m->type, "none") == 0) {
			bool bind = m->type != NULL;
			for (size_t k = 0; k < m->noptions; k++)
				bind |= strcmp(m->options[k], "bind") == 0 ||
					strcmp(m->options[k], "rbind") == 0;
			if (bind)
				return proto_error(
				    err, -ENOTSUP,
				    "%s (%s): bind mounts of host paths are not supported (petrel "
				    "has no shared filesystem yet)",
				    q, m->destination);
			return proto_error(err, -EINVAL, "%s: missing", qf);
		}
		size_t k;
		for (k = 0; k < ARRAY_SIZE(mount_types); k++)
			if (strcmp(m->type, mount_types[k]) == 0)
				break;
		if (k == ARRAY_SIZE(mount_types))
			return proto_error(
			    err, -ENOTSUP,
			    "%s: \"%s\" is not supported (the agent mounts tmpfs, proc, sysfs, "
			    "devpts, mqueue and cgroup2)",
			    qf, m->type);
		struct agent_mount_flags mf;
		if (agent_mount_flags_parse(m->options, m->noptions, &mf, err) < 0)
			return perr_wrap(err, "%s (%s)", q, m->destination);
		agent_mount_flags_free(&mf);
		if (mf.tmpcopyup && strcmp(m->type, "tmpfs") != 0)
			return proto_error(err, -EINVAL, "%s: tmpcopyup applies to tmpfs only", q);
	}
	return 0;
}

static const struct {
	const char *name;
	unsigned flag;
} ns_names[] = {
    {"mount", AGENT_NS_MOUNT}, {"pid", AGENT_NS_PID},	    {"uts", AGENT_NS_UTS},
    {"ipc", AGENT_NS_IPC},     {"cgroup", AGENT_NS_CGROUP},
};

static int dec_namespaces(yajl_val v, const char *path, unsigned *out, struct perr *err)
{
	if (!YAJL_IS_ARRAY(v))
		return proto_error(err, -EINVAL, "%s: expected an array of namespace names", path);
	if (v->u.array.len > 16)
		return proto_error(err, -E2BIG, "%s: too many entries", path);
	*out = AGENT_NS_MOUNT;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		if (!YAJL_IS_STRING(e))
			return proto_error(err, -EINVAL, "%s[%zu]: expected a namespace name", path,
					   i);
		size_t k;
		for (k = 0; k < ARRAY_SIZE(ns_names); k++)
			if (strcmp(ns_names[k].name, e->u.string) == 0)
				break;
		if (k == ARRAY_SIZE(ns_names))
			return proto_error(
			    err, -ENOTSUP,
			    "%s[%zu]: \"%.32s\" is not supported inside the VM (mount, pid, uts, "
			    "ipc and cgroup are)",
			    path, i, e->u.string);
		*out |= ns_names[k].flag;
	}
	return 0;
}

static int check_sysctl_key(const char *key, const char *path, struct perr *err)
{
	/* Written below /proc/sys: no way out of it. */
	if (!key[0] || key[0] == '.' || key[0] == '/' || strstr(key, "..") || strstr(key, "//"))
		return proto_error(err, -EINVAL, "%s: \"%.64s\" is not a sysctl name", path, key);
	return 0;
}

static int dec_sysctl(yajl_val v, const char *path, struct agent_create *c, struct perr *err)
{
	if (!YAJL_IS_OBJECT(v))
		return proto_error(err, -EINVAL, "%s: expected an object of strings", path);
	size_t n = v->u.object.len;
	if (n > AGENT_MAX_SYSCTL)
		return proto_error(err, -E2BIG, "%s: %zu entries exceed %d", path, n,
				   AGENT_MAX_SYSCTL);
	c->sysctl = calloc(n + 1, sizeof(*c->sysctl));
	if (!c->sysctl)
		return proto_error(err, -ENOMEM, "%s: out of memory", path);
	c->nsysctl = n;
	for (size_t i = 0; i < n; i++) {
		const char *key = v->u.object.keys[i];
		char q[PATH_BUF];
		snprintf(q, sizeof(q), "%s.%.64s", path, key);
		if (strlen(key) > 256)
			return proto_error(err, -E2BIG, "%s: name too long", path);
		int r = check_sysctl_key(key, q, err);
		if (r < 0)
			return r;
		if (!(c->sysctl[i].key = strdup(key)))
			return proto_error(err, -ENOMEM, "%s: out of memory", path);
		if ((r = dec_string(v->u.object.values[i], q, 4096, &c->sysctl[i].value, err)) < 0)
			return r;
	}
	return 0;
}

static int dec_root(yajl_val v, const char *path, struct agent_create *c, struct perr *err)
{
	char q[PATH_BUF];
	yajl_val f;
	int r;
	if (!YAJL_IS_OBJECT(v))
		return proto_error(err, -EINVAL, "%s: expected an object", path);
	path_join(q, sizeof(q), path, "device");
	if (!(f = obj_get(v, "device")))
		return proto_error(err, -EINVAL, "%s: missing", q);
	if ((r = dec_abs_path(f, q, &c->root_device, err)) < 0)
		return r;
	path_join(q, sizeof(q), path, "fstype");
	if ((f = obj_get(v, "fstype")))
		r = dec_string(f, q, 64, &c->root_fstype, err);
	else if (!(c->root_fstype = strdup("ext4")))
		r = proto_error(err, -ENOMEM, "%s: out of memory", q);
	if (r < 0)
		return r;
	if ((f = obj_get(v, "options"))) {
		path_join(q, sizeof(q), path, "options");
		if ((r = dec_string(f, q, MOUNT_DATA_MAX, &c->root_options, err)) < 0)
			return r;
	}
	if ((f = obj_get(v, "readonly"))) {
		path_join(q, sizeof(q), path, "readonly");
		if ((r = dec_bool(f, q, &c->root_readonly, err)) < 0)
			return r;
	}
	return 0;
}

static int check_hostname(const char *s, const char *path, struct perr *err)
{
	for (const char *p = s; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x21 || *p == 0x7f)
			return proto_error(err, -EINVAL, "%s: \"%.64s\" is not a valid hostname",
					   path, s);
	return 0;
}

static int dec_create(yajl_val v, struct agent_create *c, struct perr *err)
{
	yajl_val f;
	int r;
	if (!(f = obj_get(v, "root")))
		return proto_error(err, -EINVAL, "root: missing");
	if ((r = dec_root(f, "root", c, err)) < 0)
		return r;
	if ((f = obj_get(v, "hostname"))) {
		if ((r = dec_string(f, "hostname", AGENT_MAX_HOSTNAME, &c->hostname, err)) < 0)
			return r;
		if ((r = check_hostname(c->hostname, "hostname", err)) < 0)
			return r;
	}
	c->namespaces = AGENT_NS_MOUNT;
	if ((f = obj_get(v, "namespaces")) &&
	    (r = dec_namespaces(f, "namespaces", &c->namespaces, err)) < 0)
		return r;
	if (c->hostname && !(c->namespaces & AGENT_NS_UTS))
		return proto_error(err, -EINVAL, "hostname: needs the uts namespace");
	if ((f = obj_get(v, "mounts")) && (r = dec_mounts(f, "mounts", c, err)) < 0)
		return r;
	if ((f = obj_get(v, "maskedPaths")) &&
	    (r = dec_strv(f, "maskedPaths", AGENT_MAX_PATH_LIST, AGENT_MAX_PATH, &c->masked_paths,
			  &c->nmasked, check_abs, err)) < 0)
		return r;
	if ((f = obj_get(v, "readonlyPaths")) &&
	    (r = dec_strv(f, "readonlyPaths", AGENT_MAX_PATH_LIST, AGENT_MAX_PATH,
			  &c->readonly_paths, &c->nreadonly, check_abs, err)) < 0)
		return r;
	if ((f = obj_get(v, "sysctl")) && (r = dec_sysctl(f, "sysctl", c, err)) < 0)
		return r;
	if (!(f = obj_get(v, "process")))
		return proto_error(err, -EINVAL, "process: missing");
	return dec_process(f, "process", &c->process, err);
}

static void create_free(struct agent_create *c)
{
	free(c->root_device);
	free(c->root_fstype);
	free(c->root_options);
	free(c->hostname);
	for (size_t i = 0; i < c->nmounts; i++) {
		free(c->mounts[i].destination);
		free(c->mounts[i].type);
		free(c->mounts[i].source);
		strv_free(c->mounts[i].options, c->mounts[i].noptions);
	}
	free(c->mounts);
	strv_free(c->masked_paths, c->nmasked);
	strv_free(c->readonly_paths, c->nreadonly);
	for (size_t i = 0; i < c->nsysctl; i++) {
		free(c->sysctl[i].key);
		free(c->sysctl[i].value);
	}
	free(c->sysctl);
	process_free(&c->process);
	memset(c, 0, sizeof(*c));
}

void agent_msg_free(struct agent_msg *msg)
{
	switch (msg->type) {
	case AGENT_MSG_HELLO:
		free(msg->u.hello.agent);
		break;
	case AGENT_MSG_CREATE:
		create_free(&msg->u.create);
		break;
	case AGENT_MSG_EXEC:
		process_free(&msg->u.exec);
		break;
	case AGENT_MSG_ERROR:
		free(msg->u.error.message);
		break;
	default:
		break;
	}
	memset(msg, 0, sizeof(*msg));
}

static int dec_id(yajl_val v, uint32_t *id, struct perr *err)
{
	yajl_val f = obj_get(v, "id");
	if (!f)
		return proto_error(err, -EINVAL, "id: missing");
	int r = dec_u32(f, "id", UINT32_MAX, id, err);
	if (r == 0 && *id == 0)
		return proto_error(err, -EINVAL, "id: 0 names no process");
	return r;
}

static int dec_body(yajl_val root, struct agent_msg *msg, struct perr *err)
{
	yajl_val f;
	int r = 0;
	switch (msg->type) {
	case AGENT_MSG_HELLO:
		if (!(f = obj_get(root, "version")))
			return proto_error(err, -EINVAL, "version: missing");
		if ((r = dec_u32(f, "version", UINT32_MAX, &msg->u.hello.version, err)) < 0)
			return r;
		if ((f = obj_get(root, "agent")) &&
		    (r = dec_string(f, "agent", 256, &msg->u.hello.agent, err)) < 0)
			return r;
		if ((f = obj_get(root, "time_ns")) &&
		    (r = dec_u64(f, "time_ns", INT64_MAX, &msg->u.hello.time_ns, err)) < 0)
			return r;
		if ((f = obj_get(root, "seed"))) {
			if ((r = dec_hex(f, "seed", msg->u.hello.seed, sizeof(msg->u.hello.seed),
					 err)) < 0)
				return r;
			msg->u.hello.has_seed = true;
		}
		return r;
	case AGENT_MSG_CREATE:
		return dec_create(root, &msg->u.create, err);
	case AGENT_MSG_EXEC:
		if (!(f = obj_get(root, "process")))
			return proto_error(err, -EINVAL, "process: missing");
		return dec_process(f, "process", &msg->u.exec, err);
	case AGENT_MSG_CREATED:
	case AGENT_MSG_STARTED:
	case AGENT_MSG_EXEC_STARTED:
		return dec_id(root, &msg->u.id, err);
	case AGENT_MSG_SIGNAL:
		if ((r = dec_id(root, &msg->u.signal.id, err)) < 0)
			return r;
		if (!(f = obj_get(root, "signal")))
			return proto_error(err, -EINVAL, "signal: missing");
		if ((r = dec_int(f, "signal", 1, 64, &msg->u.signal.signal, err)) < 0)
			return r;
		if ((f = obj_get(root, "all")))
			r = dec_bool(f, "all", &msg->u.signal.all, err);
		return r;
	case AGENT_MSG_RESIZE: {
		uint32_t rows = 0, cols = 0;
		if ((r = dec_id(root, &msg->u.resize.id, err)) < 0)
			return r;
		if ((r = dec_u32(obj_get(root, "rows"), "rows", UINT16_MAX, &rows, err)) < 0)
			return r;
		if ((r = dec_u32(obj_get(root, "cols"), "cols", UINT16_MAX, &cols, err)) < 0)
			return r;
		msg->u.resize.rows = (uint16_t)rows;
		msg->u.resize.cols = (uint16_t)cols;
		return 0;
	}
	case AGENT_MSG_EXIT:
		if ((r = dec_id(root, &msg->u.exit.id, err)) < 0)
			return r;
		if ((r = dec_int(obj_get(root, "status"), "status", 0, 255, &msg->u.exit.status,
				 err)) < 0)
			return r;
		if ((f = obj_get(root, "signal")))
			r = dec_int(f, "signal", 0, 64, &msg->u.exit.signal, err);
		return r;
	case AGENT_MSG_ERROR:
		if (!(f = obj_get(root, "message")))
			return proto_error(err, -EINVAL, "message: missing");
		return dec_string(f, "message", 4096, &msg->u.error.message, err);
	case AGENT_MSG_START:
	case AGENT_MSG_SHUTDOWN:
	case AGENT_MSG_OK:
	case AGENT_MSG_TYPE_COUNT:
		return 0;
	}
	return 0;
}

int agent_msg_decode(const void *payload, size_t len, struct agent_msg *msg, struct perr *err)
{
	memset(msg, 0, sizeof(*msg));
	msg->type = AGENT_MSG_OK; /* owns nothing until the type is known */
	if (len == 0 || len > AGENT_FRAME_MAX_PAYLOAD)
		return proto_error(err, -EPROTO, "message: bad length %zu", len);
	int r = json_prescan(payload, len, err);
	if (r < 0)
		return perr_wrap(err, "message");
	char *text = malloc(len + 1);
	if (!text)
		return proto_error(err, -ENOMEM, "message: out of memory");
	memcpy(text, payload, len);
	text[len] = '\0';

	/* The tree owns copies of everything: the text can go right away. */
	char yerr[128] = "";
	yajl_val root = yajl_tree_parse(text, yerr, sizeof(yerr));
	free(text);
	if (!root) {
		/* yajl's message spans lines; the first one says what is wrong. */
		yerr[strcspn(yerr, "\n")] = '\0';
		return proto_error(err, -EPROTO, "message: invalid JSON: %s",
				   yerr[0] ? yerr : "parse error");
	}
	if (!YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		return proto_error(err, -EPROTO, "message: not a JSON object");
	}
	yajl_val t = obj_get(root, "type");
	if (!YAJL_IS_STRING(t)) {
		yajl_tree_free(root);
		return proto_error(err, -EPROTO, "message: type: expected a string");
	}
	int type = -1;
	for (int i = 0; i < AGENT_MSG_TYPE_COUNT; i++)
		if (strcmp(msg_type_names[i], t->u.string) == 0)
			type = i;
	if (type < 0) {
		r = proto_error(err, -EPROTO, "message: type: unknown type \"%.32s\"", t->u.string);
		yajl_tree_free(root);
		return r;
	}
	msg->type = (enum agent_msg_type)type;
	r = dec_body(root, msg, err);
	if (r < 0)
		perr_wrap(err, "%s", msg_type_names[type]);
	yajl_tree_free(root);
	return r;
}

/* ---- encoding ---- */

struct enc {
	yajl_gen g;
	yajl_gen_status st;
};

static void enc_str(struct enc *e, const char *s)
{
	if (e->st == yajl_gen_status_ok)
		e->st = yajl_gen_string(e->g, (const unsigned char *)s, strlen(s));
}

static void enc_u64(struct enc *e, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRIu64, v);
	if (e->st == yajl_gen_status_ok)
		e->st = yajl_gen_number(e->g, b, (size_t)n);
}

static void enc_int(struct enc *e, int v)
{
	if (e->st == yajl_gen_status_ok)
		e->st = yajl_gen_integer(e->g, v);
}

static void enc_bool(struct enc *e, bool v)
{
	if (e->st == yajl_gen_status_ok)
		e->st = yajl_gen_bool(e->g, v);
}

static void enc_open(struct enc *e, bool map)
{
	if (e->st == yajl_gen_status_ok)
		e->st = map ? yajl_gen_map_open(e->g) : yajl_gen_array_open(e->g);
}

static void enc_close(struct enc *e, bool map)
{
	if (e->st == yajl_gen_status_ok)
		e->st = map ? yajl_gen_map_close(e->g) : yajl_gen_array_close(e->g);
}

static void enc_strv(struct enc *e, const char *key, char *const *v, size_t n)
{
	enc_str(e, key);
	enc_open(e, false);
	for (size_t i = 0; i < n; i++)
		enc_str(e, v[i]);
	enc_close(e, false);
}

static void enc_caps(struct enc *e, const char *key, uint64_t mask)
{
	enc_str(e, key);
	enc_open(e, false);
	for (int c = 0; c < 64; c++)
		if (mask & (1ull << c)) {
			const char *name = agent_cap_name(c);
			if (!name) {
				e->st = yajl_gen_invalid_string;
				return;
			}
			enc_str(e, name);
		}
	enc_close(e, false);
}

static void enc_process(struct enc *e, const struct agent_process *p)
{
	enc_open(e, true);
	enc_strv(e, "args", p->args, p->nargs);
	enc_strv(e, "env", p->env, p->nenv);
	if (p->cwd) {
		enc_str(e, "cwd");
		enc_str(e, p->cwd);
	}
	enc_str(e, "user");
	enc_open(e, true);
	enc_str(e, "uid");
	enc_u64(e, p->uid);
	enc_str(e, "gid");
	enc_u64(e, p->gid);
	if (p->has_umask) {
		enc_str(e, "umask");
		enc_u64(e, p->umask);
	}
	enc_str(e, "additionalGids");
	enc_open(e, false);
	for (size_t i = 0; i < p->ngids; i++)
		enc_u64(e, p->gids[i]);
	enc_close(e, false);
	enc_close(e, true);
	enc_str(e, "terminal");
	enc_bool(e, p->terminal);
	if (p->rows || p->cols) {
		enc_str(e, "consoleSize");
		enc_open(e, true);
		enc_str(e, "height");
		enc_u64(e, p->rows);
		enc_str(e, "width");
		enc_u64(e, p->cols);
		enc_close(e, true);
	}
	if (p->nrlimits) {
		enc_str(e, "rlimits");
		enc_open(e, false);
		for (size_t i = 0; i < p->nrlimits; i++) {
			const char *name = agent_rlimit_name(p->rlimits[i].resource);
			if (!name) {
				e->st = yajl_gen_invalid_string;
				return;
			}
			enc_open(e, true);
			enc_str(e, "type");
			enc_str(e, name);
			enc_str(e, "soft");
			enc_u64(e, p->rlimits[i].soft);
			enc_str(e, "hard");
			enc_u64(e, p->rlimits[i].hard);
			enc_close(e, true);
		}
		enc_close(e, false);
	}
	if (p->has_caps) {
		enc_str(e, "capabilities");
		enc_open(e, true);
		enc_caps(e, "bounding", p->cap_bounding);
		enc_caps(e, "effective", p->cap_effective);
		enc_caps(e, "inheritable", p->cap_inheritable);
		enc_caps(e, "permitted", p->cap_permitted);
		enc_caps(e, "ambient", p->cap_ambient);
		enc_close(e, true);
	}
	enc_str(e, "noNewPrivileges");
	enc_bool(e, p->no_new_privileges);
	if (p->has_oom_score_adj) {
		enc_str(e, "oomScoreAdj");
		enc_int(e, p->oom_score_adj);
	}
	enc_close(e, true);
}

static void enc_create(struct enc *e, const struct agent_create *c)
{
	enc_str(e, "root");
	enc_open(e, true);
	enc_str(e, "device");
	enc_str(e, c->root_device ? c->root_device : "");
	if (c->root_fstype) {
		enc_str(e, "fstype");
		enc_str(e, c->root_fstype);
	}
	if (c->root_options) {
		enc_str(e, "options");
		enc_str(e, c->root_options);
	}
	enc_str(e, "readonly");
	enc_bool(e, c->root_readonly);
	enc_close(e, true);
	if (c->hostname) {
		enc_str(e, "hostname");
		enc_str(e, c->hostname);
	}
	enc_str(e, "namespaces");
	enc_open(e, false);
	for (size_t i = 0; i < ARRAY_SIZE(ns_names); i++)
		if (c->namespaces & ns_names[i].flag)
			enc_str(e, ns_names[i].name);
	enc_close(e, false);
	enc_str(e, "mounts");
	enc_open(e, false);
	for (size_t i = 0; i < c->nmounts; i++) {
		const struct agent_mount *m = &c->mounts[i];
		enc_open(e, true);
		enc_str(e, "destination");
		enc_str(e, m->destination ? m->destination : "");
		enc_str(e, "type");
		enc_str(e, m->type ? m->type : "");
		if (m->source) {
			enc_str(e, "source");
			enc_str(e, m->source);
		}
		enc_strv(e, "options", m->options, m->noptions);
		enc_close(e, true);
	}
	enc_close(e, false);
	enc_strv(e, "maskedPaths", c->masked_paths, c->nmasked);
	enc_strv(e, "readonlyPaths", c->readonly_paths, c->nreadonly);
	if (c->nsysctl) {
		enc_str(e, "sysctl");
		enc_open(e, true);
		for (size_t i = 0; i < c->nsysctl; i++) {
			enc_str(e, c->sysctl[i].key);
			enc_str(e, c->sysctl[i].value);
		}
		enc_close(e, true);
	}
	enc_str(e, "process");
	enc_process(e, &c->process);
}

int agent_msg_encode(const struct agent_msg *msg, char **out, size_t *outlen, struct perr *err)
{
	const char *tname = agent_msg_type_name(msg->type);
	if (!tname)
		return proto_error(err, -EINVAL, "message: unknown type %d", (int)msg->type);
	struct enc e = {.g = yajl_gen_alloc(NULL), .st = yajl_gen_status_ok};
	if (!e.g)
		return proto_error(err, -ENOMEM, "%s: out of memory", tname);
	/* Never emit bytes the peer's decoder would refuse. */
	yajl_gen_config(e.g, yajl_gen_validate_utf8, 1);
	enc_open(&e, true);
	enc_str(&e, "type");
	enc_str(&e, tname);
	switch (msg->type) {
	case AGENT_MSG_HELLO:
		enc_str(&e, "version");
		enc_u64(&e, msg->u.hello.version);
		if (msg->u.hello.agent) {
			enc_str(&e, "agent");
			enc_str(&e, msg->u.hello.agent);
		}
		if (msg->u.hello.time_ns) {
			enc_str(&e, "time_ns");
			enc_u64(&e, msg->u.hello.time_ns);
		}
		if (msg->u.hello.has_seed) {
			char hex[2 * AGENT_HELLO_SEED_BYTES + 1];
			for (size_t i = 0; i < AGENT_HELLO_SEED_BYTES; i++)
				snprintf(hex + 2 * i, 3, "%02x", msg->u.hello.seed[i]);
			enc_str(&e, "seed");
			enc_str(&e, hex);
		}
		break;
	case AGENT_MSG_CREATE:
		enc_create(&e, &msg->u.create);
		break;
	case AGENT_MSG_EXEC:
		enc_str(&e, "process");
		enc_process(&e, &msg->u.exec);
		break;
	case AGENT_MSG_CREATED:
	case AGENT_MSG_STARTED:
	case AGENT_MSG_EXEC_STARTED:
		enc_str(&e, "id");
		enc_u64(&e, msg->u.id);
		break;
	case AGENT_MSG_SIGNAL:
		enc_str(&e, "id");
		enc_u64(&e, msg->u.signal.id);
		enc_str(&e, "signal");
		enc_int(&e, msg->u.signal.signal);
		enc_str(&e, "all");
		enc_bool(&e, msg->u.signal.all);
		break;
	case AGENT_MSG_RESIZE:
		enc_str(&e, "id");
		enc_u64(&e, msg->u.resize.id);
		enc_str(&e, "rows");
		enc_u64(&e, msg->u.resize.rows);
		enc_str(&e, "cols");
		enc_u64(&e, msg->u.resize.cols);
		break;
	case AGENT_MSG_EXIT:
		enc_str(&e, "id");
		enc_u64(&e, msg->u.exit.id);
		enc_str(&e, "status");
		enc_int(&e, msg->u.exit.status);
		enc_str(&e, "signal");
		enc_int(&e, msg->u.exit.signal);
		break;
	case AGENT_MSG_ERROR:
		enc_str(&e, "message");
		enc_str(&e, msg->u.error.message ? msg->u.error.message : "");
		break;
	case AGENT_MSG_START:
	case AGENT_MSG_SHUTDOWN:
	case AGENT_MSG_OK:
	case AGENT_MSG_TYPE_COUNT:
		break;
	}
	enc_close(&e, true);
	if (e.st != yajl_gen_status_ok) {
		yajl_gen_free(e.g);
		return proto_error(err, -EINVAL,
				   "%s: cannot encode (invalid UTF-8 or unknown name)", tname);
	}
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(e.g, &buf, &len);
	if (len > AGENT_FRAME_MAX_PAYLOAD) {
		yajl_gen_free(e.g);
		return proto_error(err, -EMSGSIZE, "%s: %zu bytes exceed the frame limit of %u",
				   tname, len, AGENT_FRAME_MAX_PAYLOAD);
	}
	char *copy = malloc(len ? len : 1);
	if (!copy) {
		yajl_gen_free(e.g);
		return proto_error(err, -ENOMEM, "%s: out of memory", tname);
	}
	memcpy(copy, buf, len);
	yajl_gen_free(e.g);
	*out = copy;
	*outlen = len;
	return 0;
}

int agent_writer_msg(struct agent_writer *wr, const struct agent_msg *msg, struct perr *err)
{
	char *json = NULL;
	size_t len = 0;
	int r = agent_msg_encode(msg, &json, &len, err);
	if (r < 0)
		return r;
	r = agent_writer_frame(wr, AGENT_FRAME_MSG, 0, json, len);
	free(json);
	if (r < 0)
		return perr_set(err, r, "%s", agent_msg_type_name(msg->type));
	return 0;
}

/* Replaces what is not UTF-8 (and control characters) so an error always encodes. */
static void sanitize_utf8(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = 0;
		if (*p < 0x80)
			n = 1;
		else if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
			n = 2;
		else if ((*p & 0xf0) == 0xe0)
			n = 3;
		else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
			n = 4;
		bool ok = n > 0;
		for (size_t i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		/* Overlong three-byte forms and surrogates. */
		if (ok && n == 3 &&
		    ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
			ok = false;
		if (ok && n == 4 &&
		    ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))
			ok = false;
		if (!ok || (n == 1 && *p < 0x20 && *p != '\t')) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

int agent_writer_error(struct agent_writer *wr, const char *message)
{
	char *copy = strndup(message, 4000);
	if (!copy)
		return -ENOMEM;
	sanitize_utf8(copy);
	struct agent_msg msg = {.type = AGENT_MSG_ERROR, .u.error.message = copy};
	int r = agent_writer_msg(wr, &msg, NULL);
	free(copy);
	return r;
}

/* ---- connecting from the host ---- */

int agent_connect_vsock(uint32_t cid, uint32_t port, struct perr *err)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return perr_set(err, -errno, "vsock socket");
	struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = -errno;
		close(fd);
		return perr_set(err, e, "connect to vsock cid %" PRIu32 " port %" PRIu32, cid,
				port);
	}
	return fd;
}

int agent_ready_listen(const char *uds_path, char *path, size_t size, struct perr *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int n = snprintf(path, size, "%s_%u", uds_path, AGENT_READY_PORT);
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(addr.sun_path))
		return proto_error(err, -ENAMETOOLONG, "%s_%u: longer than a socket address",
				   uds_path, AGENT_READY_PORT);
	memcpy(addr.sun_path, path, (size_t)n + 1);
	autoclose int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return perr_set(err, -errno, "unix socket");
	unlink(path); /* a stale one from a killed VMM of the same container */
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 4) < 0) {
		int e = -errno;
		unlink(path);
		return perr_set(err, e, "listen on %s", path);
	}
	return steal_fd(&fd);
}

int agent_connect_hybrid(const char *uds_path, uint32_t port, struct perr *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(uds_path) >= sizeof(addr.sun_path))
		return proto_error(err, -ENAMETOOLONG, "%s: socket path too long", uds_path);
	memcpy(addr.sun_path, uds_path, strlen(uds_path) + 1);
	autoclose int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return perr_set(err, -errno, "unix socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return perr_set(err, -errno, "connect to %s", uds_path);
	char line[64];
	int n = snprintf(line, sizeof(line), "CONNECT %" PRIu32 "\n", port);
	if (write(fd, line, (size_t)n) != n)
		return perr_set(err, -errno, "%s: write CONNECT", uds_path);
	/* Byte by byte: whatever follows the reply line is already the guest's stream. */
	size_t len = 0;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = poll(&pfd, 1, 10000);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return proto_error(err, -ETIMEDOUT, "%s: no reply to CONNECT %" PRIu32,
					   uds_path, port);
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return perr_set(err, -errno, "%s: read CONNECT reply", uds_path);
		if (r == 0)
			return proto_error(err, -ECONNREFUSED,
					   "%s: connection closed after CONNECT %" PRIu32
					   " (is the agent listening?)",
					   uds_path, port);
		if (c == '\n')
			break;
		if (len == sizeof(line) - 1)
			return proto_error(err, -EPROTO, "%s: CONNECT reply too long", uds_path);
		line[len++] = c;
	}
	line[len] = '\0';
	if (strncmp(line, "OK ", 3) != 0)
		return proto_error(err, -EPROTO, "%s: unexpected CONNECT reply \"%.32s\"", uds_path,
				   line);
	return steal_fd(&fd);
}
