/*
 * The petrel agent protocol: what the host (petrel, petrel-vmm) and the guest's
 * petrel-agent say to each other over one vsock stream (docs/agent-protocol.md).
 *
 * A stream is a sequence of frames. Every frame starts with a 12-byte header:
 *
 *   0..3   payload length, u32 big-endian, at most AGENT_FRAME_MAX_PAYLOAD
 *   4      frame type (enum agent_frame_type)
 *   5..7   reserved, zero
 *   8..11  process id, u32 big-endian (0 for control messages)
 *
 * AGENT_FRAME_MSG carries one JSON object (struct agent_msg); the stdio frames
 * carry raw bytes, and an empty stdio frame means end of file.
 *
 * Everything here is shared by both peers, and both treat the other as
 * hostile: the decoder bounds every length, count, number and nesting depth.
 */
#ifndef PETREL_AGENT_PROTO_H
#define PETREL_AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define AGENT_PROTO_VERSION 1
#define AGENT_VSOCK_PORT    1024
/* Once listening, the agent connects to the host's port AGENT_READY_PORT and
 * sends nothing: a host waiting for it connects then instead of polling. */
#define AGENT_READY_PORT 1025u

#define AGENT_FRAME_HEADER_SIZE 12
/* Large enough for a config.json-sized create message. */
#define AGENT_FRAME_MAX_PAYLOAD (1u << 20)
/* The most stdio bytes a peer puts in one frame (receivers accept up to the max payload). */
#define AGENT_STDIO_CHUNK (32u << 10)

/* The container's init process always has this id; exec processes get larger ones. */
#define AGENT_INIT_ID 1u

/* Bounds the decoder enforces (the frame size bounds the totals anyway). */
#define AGENT_MAX_ARGS		4096
#define AGENT_MAX_ENV		4096
#define AGENT_MAX_STRING	65536
#define AGENT_MAX_PATH		4096
#define AGENT_MAX_HOSTNAME	64
#define AGENT_MAX_GIDS		256
#define AGENT_MAX_MOUNTS	256
#define AGENT_MAX_MOUNT_OPTIONS 64
#define AGENT_MAX_PATH_LIST	256
#define AGENT_MAX_SYSCTL	256
#define AGENT_MAX_NESTING	16

enum agent_frame_type {
	AGENT_FRAME_MSG = 1,	/* a JSON message; process id 0 */
	AGENT_FRAME_STDIN = 2,	/* host to agent: bytes for the process's stdin; empty = close */
	AGENT_FRAME_STDOUT = 3, /* agent to host: the process's stdout (or its terminal) */
	AGENT_FRAME_STDERR = 4, /* agent to host: the process's stderr */
};

struct agent_frame {
	uint8_t type;
	uint32_t proc;
	uint32_t len;
	const uint8_t *payload; /* inside the reader's buffer, valid until its next call */
};

/* Writes a frame header into out[AGENT_FRAME_HEADER_SIZE]. */
void agent_frame_header_encode(uint8_t *out, uint8_t type, uint32_t proc, uint32_t len);
/* Checks and decodes a header: known type, zero reserved bytes, bounded length,
 * process id 0 exactly for messages. */
int agent_frame_header_decode(const uint8_t *in, struct agent_frame *frame, struct perr *err);

/* Reassembles frames from a byte stream. */
struct agent_reader {
	uint8_t *buf;
	size_t start; /* first unconsumed byte */
	size_t len;   /* end of the buffered bytes */
	size_t cap;
	bool broken; /* a protocol error was seen: the stream cannot be resynchronised */
};

void agent_reader_init(struct agent_reader *rd);
void agent_reader_free(struct agent_reader *rd);
/* Appends bytes (for tests and fuzzing; the peers use agent_reader_fill). */
int agent_reader_feed(struct agent_reader *rd, const void *data, size_t len);
/* One read(2) from fd into the buffer. Returns the byte count, 0 at end of file,
 * or -errno (-EAGAIN when a non-blocking fd has nothing). */
ssize_t agent_reader_fill(struct agent_reader *rd, int fd);
/* 1 and *frame when a whole frame is buffered, 0 when more bytes are needed,
 * -EPROTO (with err set) on a malformed header; the reader stays broken after that. */
int agent_reader_next(struct agent_reader *rd, struct agent_frame *frame, struct perr *err);
/* Bytes of a partial frame still buffered (nonzero at EOF means a truncated stream). */
size_t agent_reader_pending(const struct agent_reader *rd);

/* An output queue for a non-blocking stream. */
struct agent_writer {
	uint8_t *buf;
	size_t start;
	size_t len;
	size_t cap;
};

void agent_writer_init(struct agent_writer *wr);
void agent_writer_free(struct agent_writer *wr);
/* Queues one frame; -EMSGSIZE when the payload is too large, -ENOMEM. */
int agent_writer_frame(struct agent_writer *wr, uint8_t type, uint32_t proc, const void *payload,
		       size_t len);
/* Writes what it can. Returns 0 (check agent_writer_pending) or -errno other than EAGAIN. */
int agent_writer_flush(struct agent_writer *wr, int fd);
size_t agent_writer_pending(const struct agent_writer *wr);

/* ---- messages ---- */

enum agent_msg_type {
	AGENT_MSG_HELLO,	/* both ways, first on a connection: {version, agent?} */
	AGENT_MSG_CREATE,	/* host: the container (struct agent_create) */
	AGENT_MSG_CREATED,	/* reply: {id} of the init process, which waits for start */
	AGENT_MSG_START,	/* host: run the init process */
	AGENT_MSG_STARTED,	/* reply: {id} */
	AGENT_MSG_EXEC,		/* host: {process} to run in the container */
	AGENT_MSG_EXEC_STARTED, /* reply: {id} of the new process */
	AGENT_MSG_SIGNAL,	/* host: {id, signal, all} */
	AGENT_MSG_RESIZE,	/* host: {id, rows, cols} of a process's terminal */
	AGENT_MSG_SHUTDOWN,	/* host: kill everything, sync, reboot the VM */
	AGENT_MSG_OK,		/* reply to signal, resize, shutdown */
	AGENT_MSG_EXIT,		/* agent, unsolicited: {id, status, signal} after all output */
	AGENT_MSG_ERROR,	/* reply to any request: {message} */
	AGENT_MSG_TYPE_COUNT,
};

struct agent_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
};

/* runtime-spec's process object, as far as the agent honours it. */
struct agent_process {
	char **args;
	size_t nargs;
	char **env;
	size_t nenv;
	char *cwd;
	uint32_t uid, gid;
	uint32_t *gids; /* user.additionalGids */
	size_t ngids;
	bool has_umask;
	uint32_t umask;
	bool terminal;
	uint16_t rows, cols; /* consoleSize; 0 when not given */
	struct agent_rlimit *rlimits;
	size_t nrlimits;
	bool has_caps; /* capabilities given: the sets below replace the process's */
	uint64_t cap_bounding, cap_effective, cap_inheritable, cap_permitted, cap_ambient;
	bool no_new_privileges;
	bool has_oom_score_adj;
	int oom_score_adj;
};

struct agent_mount {
	char *destination;
	char *type;
	char *source; /* may be NULL */
	char **options;
	size_t noptions;
};

struct agent_sysctl {
	char *key, *value;
};

enum {
	AGENT_NS_MOUNT = 1 << 0,
	AGENT_NS_PID = 1 << 1,
	AGENT_NS_UTS = 1 << 2,
	AGENT_NS_IPC = 1 << 3,
	AGENT_NS_CGROUP = 1 << 4,
};

struct agent_create {
	char *root_device;  /* e.g. /dev/vda */
	char *root_fstype;  /* e.g. ext4 */
	char *root_options; /* filesystem data for mount(2), may be NULL */
	bool root_readonly;
	char *hostname;	     /* may be NULL */
	unsigned namespaces; /* AGENT_NS_*; the mount namespace is always made */
	struct agent_mount *mounts;
	size_t nmounts;
	char **masked_paths;
	size_t nmasked;
	char **readonly_paths;
	size_t nreadonly;
	struct agent_sysctl *sysctl;
	size_t nsysctl;
	struct agent_process process;
};

#define AGENT_HELLO_SEED_BYTES 32

struct agent_hello {
	uint32_t version;
	char *agent; /* software name and version, may be NULL */
	/* Host to agent, optional: the host's CLOCK_REALTIME when sent (0: absent)
	 * and bytes for the guest's RNG (has_seed). A guest restored from a
	 * snapshot has a stale clock and its siblings' RNG state until it gets them. */
	uint64_t time_ns;
	bool has_seed;
	uint8_t seed[AGENT_HELLO_SEED_BYTES];
};

struct agent_msg {
	enum agent_msg_type type;
	union {
		struct agent_hello hello;
		struct agent_create create;
		struct agent_process exec;
		uint32_t id; /* created, started, exec-started */
		struct {
			uint32_t id;
			int signal;
			bool all; /* every process in the container (id must be the init's) */
		} signal;
		struct {
			uint32_t id;
			uint16_t rows, cols;
		} resize;
		struct {
			uint32_t id;
			int status; /* the exit code, or 128 + signal */
			int signal; /* the killing signal, 0 for a normal exit */
		} exit;
		struct {
			char *message;
		} error;
	} u;
};

/* The host's hello: version, name, its clock and fresh random bytes. */
void agent_hello_init_host(struct agent_msg *m);

/* "hello", "create", … ; NULL for an unknown type. */
const char *agent_msg_type_name(enum agent_msg_type type);

/* Decodes a message payload into *msg (which the caller frees with agent_msg_free,
 * also after a failure). Errors name the JSON field: "create: process.args[2]: …". */
int agent_msg_decode(const void *payload, size_t len, struct agent_msg *msg, struct perr *err);
/* Encodes *msg as JSON into a malloc'd buffer (not NUL-terminated). */
int agent_msg_encode(const struct agent_msg *msg, char **out, size_t *outlen, struct perr *err);
/* Encodes and queues *msg as an AGENT_FRAME_MSG frame. */
int agent_writer_msg(struct agent_writer *wr, const struct agent_msg *msg, struct perr *err);
void agent_msg_free(struct agent_msg *msg);

/* Convenience constructors for the small messages (no allocation but error). */
int agent_writer_error(struct agent_writer *wr, const char *message);

/* "CAP_CHOWN" -> 0 …; -1 when unknown. */
int agent_cap_from_name(const char *name);
const char *agent_cap_name(int cap);
/* "RLIMIT_NOFILE" -> RLIMIT_NOFILE; -1 when unknown. */
int agent_rlimit_from_name(const char *name);
const char *agent_rlimit_name(int resource);

/* A mount's options split as mount(2) wants them. */
struct agent_mount_flags {
	unsigned long flags;	   /* MS_* for the mount itself */
	unsigned long propagation; /* MS_PRIVATE, MS_REC|MS_SHARED, … or 0 */
	bool tmpcopyup;		   /* tmpfs: copy what the directory held into the new tmpfs */
	char *data;		   /* the rest, comma-joined; malloc'd, may be NULL */
};

/* Splits mount options; "bind", "rbind", idmapped and unknown "x-" forms are refused
 * (the agent cannot bind host paths). err names the option. */
int agent_mount_flags_parse(char *const *options, size_t n, struct agent_mount_flags *out,
			    struct perr *err);
void agent_mount_flags_free(struct agent_mount_flags *mf);

/* Connecting from the host: AF_VSOCK (cid, port), or a Firecracker-style hybrid
 * vsock unix socket ("CONNECT <port>\n" / "OK <n>\n"). Return a blocking
 * SOCK_CLOEXEC fd or -errno. */
int agent_connect_vsock(uint32_t cid, uint32_t port, struct perr *err);
int agent_connect_hybrid(const char *uds_path, uint32_t port, struct perr *err);
/* Where the hybrid device brings the agent's announcement: listens on
 * UDS_PATH_<AGENT_READY_PORT> (a stale socket there replaced), non-blocking,
 * the path in path (size bytes). The listening fd or -errno. */
int agent_ready_listen(const char *uds_path, char *path, size_t size, struct perr *err);

#endif
