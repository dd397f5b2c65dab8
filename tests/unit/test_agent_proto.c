/* The agent protocol: framing, round trips, and what the decoder refuses. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/agent-proto.h"
#include "common/cleanup.h"
#include "tests/unit/unit.h"

/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive in unit.h */
UNIT_MAIN("agent_proto")

/* Decodes a JSON text; returns the decoder's result, *msg owned by the caller. */
static int decode_str(const char *json, struct agent_msg *msg, struct perr *err)
{
	perr_clear(err);
	return agent_msg_decode(json, strlen(json), msg, err);
}

/* Encodes then decodes a message. */
static int round_trip(const struct agent_msg *in, struct agent_msg *out, struct perr *err)
{
	autofree char *json = NULL;
	size_t len;
	int r = agent_msg_encode(in, &json, &len, err);
	if (r < 0)
		return r;
	return agent_msg_decode(json, len, out, err);
}

UNIT_TEST(test_frame_header_round_trip)
{
	uint8_t hdr[AGENT_FRAME_HEADER_SIZE];
	struct agent_frame f;
	struct perr err = {0};
	agent_frame_header_encode(hdr, AGENT_FRAME_STDOUT, 7, 1234);
	UNIT_ASSERT_EQ(hdr[0], 0);
	UNIT_ASSERT_EQ(hdr[2], 0x04);
	UNIT_ASSERT_EQ(hdr[3], 0xd2);
	UNIT_ASSERT_EQ(agent_frame_header_decode(hdr, &f, &err), 0);
	UNIT_ASSERT_EQ(f.type, AGENT_FRAME_STDOUT);
	UNIT_ASSERT_EQ(f.proc, 7);
	UNIT_ASSERT_EQ(f.len, 1234);
}

UNIT_TEST(test_frame_rejects_oversized_payload)
{
	uint8_t hdr[AGENT_FRAME_HEADER_SIZE];
	struct agent_frame f;
	struct perr err = {0};
	agent_frame_header_encode(hdr, AGENT_FRAME_STDIN, 1, AGENT_FRAME_MAX_PAYLOAD + 1);
	UNIT_ASSERT_EQ(agent_frame_header_decode(hdr, &f, &err), -EPROTO);
	UNIT_ASSERT_CONTAINS(err.msg, "exceeds");
}

UNIT_TEST(test_frame_rejects_unknown_type_reserved_bytes_and_bad_process)
{
	uint8_t hdr[AGENT_FRAME_HEADER_SIZE];
	struct agent_frame f;
	struct perr err = {0};
	agent_frame_header_encode(hdr, 9, 1, 1);
	UNIT_ASSERT_EQ(agent_frame_header_decode(hdr, &f, &err), -EPROTO);
	agent_frame_header_encode(hdr, AGENT_FRAME_STDIN, 1, 1);
	hdr[6] = 1;
	UNIT_ASSERT_EQ(agent_frame_header_decode(hdr, &f, &err), -EPROTO);
	agent_frame_header_encode(hdr, AGENT_FRAME_MSG, 3, 10);
	UNIT_ASSERT_EQ(agent_frame_header_decode(hdr, &f, &err), -EPROTO);
	agent_frame_header_encode(hdr, AGENT_FRAME_MSG, 0, 0);
	UNIT_ASSERT_EQ(agent_frame_header_decode(hdr, &f, &err), -EPROTO);
	agent_frame_header_encode(hdr, AGENT_FRAME_STDOUT, 0, 10);
	UNIT_ASSERT_EQ(agent_frame_header_decode(hdr, &f, &err), -EPROTO);
}

UNIT_TEST(test_reader_reassembles_frames_fed_byte_by_byte)
{
	struct agent_writer wr;
	struct agent_reader rd;
	struct perr err = {0};
	agent_writer_init(&wr);
	agent_reader_init(&rd);
	UNIT_ASSERT_EQ(agent_writer_frame(&wr, AGENT_FRAME_STDIN, 1, "hello", 5), 0);
	UNIT_ASSERT_EQ(agent_writer_frame(&wr, AGENT_FRAME_STDIN, 1, NULL, 0), 0);
	UNIT_ASSERT_EQ(agent_writer_frame(&wr, AGENT_FRAME_STDERR, 2, "x", 1), 0);
	size_t total = agent_writer_pending(&wr);
	UNIT_ASSERT_EQ(total, 3 * AGENT_FRAME_HEADER_SIZE + 6);

	struct agent_frame f;
	int got = 0;
	for (size_t i = 0; i < total; i++) {
		UNIT_ASSERT_EQ(agent_reader_feed(&rd, wr.buf + wr.start + i, 1), 0);
		int r;
		while ((r = agent_reader_next(&rd, &f, &err)) == 1) {
			if (got == 0) {
				UNIT_ASSERT_EQ(f.type, AGENT_FRAME_STDIN);
				UNIT_ASSERT_EQ(f.len, 5);
				UNIT_ASSERT(memcmp(f.payload, "hello", 5) == 0);
			} else if (got == 1) {
				UNIT_ASSERT_EQ(f.len, 0);
			} else {
				UNIT_ASSERT_EQ(f.type, AGENT_FRAME_STDERR);
				UNIT_ASSERT_EQ(f.proc, 2);
			}
			got++;
		}
		UNIT_ASSERT_EQ(r, 0);
	}
	UNIT_ASSERT_EQ(got, 3);
	UNIT_ASSERT_EQ(agent_reader_pending(&rd), 0);
	agent_reader_free(&rd);
	agent_writer_free(&wr);
}

UNIT_TEST(test_reader_reports_truncated_stream_as_pending)
{
	struct agent_writer wr;
	struct agent_reader rd;
	struct agent_frame f;
	struct perr err = {0};
	agent_writer_init(&wr);
	agent_reader_init(&rd);
	UNIT_ASSERT_EQ(agent_writer_frame(&wr, AGENT_FRAME_STDIN, 1, "abcdef", 6), 0);
	UNIT_ASSERT_EQ(agent_reader_feed(&rd, wr.buf, agent_writer_pending(&wr) - 2), 0);
	UNIT_ASSERT_EQ(agent_reader_next(&rd, &f, &err), 0);
	UNIT_ASSERT(agent_reader_pending(&rd) > 0);
	agent_reader_free(&rd);
	agent_writer_free(&wr);
}

UNIT_TEST(test_reader_stays_broken_after_bad_header)
{
	struct agent_reader rd;
	struct agent_frame f;
	struct perr err = {0};
	uint8_t junk[AGENT_FRAME_HEADER_SIZE] = {0xff, 0xff, 0xff, 0xff, 1};
	agent_reader_init(&rd);
	UNIT_ASSERT_EQ(agent_reader_feed(&rd, junk, sizeof(junk)), 0);
	UNIT_ASSERT_EQ(agent_reader_next(&rd, &f, &err), -EPROTO);
	UNIT_ASSERT_EQ(agent_reader_next(&rd, &f, &err), -EPROTO);
	agent_reader_free(&rd);
}

UNIT_TEST(test_writer_and_reader_through_a_pipe_with_a_large_frame)
{
	int p[2];
	UNIT_ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	struct agent_writer wr;
	struct agent_reader rd;
	struct agent_frame f;
	struct perr err = {0};
	agent_writer_init(&wr);
	agent_reader_init(&rd);
	size_t big = 300000;
	autofree uint8_t *data = malloc(big);
	UNIT_ASSERT(data != NULL);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 7);
	UNIT_ASSERT_EQ(agent_writer_frame(&wr, AGENT_FRAME_STDOUT, 5, data, big), 0);
	int frames = 0;
	while (frames == 0) {
		UNIT_ASSERT_EQ(agent_writer_flush(&wr, p[1]), 0);
		ssize_t n = agent_reader_fill(&rd, p[0]);
		UNIT_ASSERT(n > 0 || n == -EAGAIN);
		int r = agent_reader_next(&rd, &f, &err);
		UNIT_ASSERT(r >= 0);
		if (r == 1) {
			UNIT_ASSERT_EQ(f.len, big);
			UNIT_ASSERT(memcmp(f.payload, data, big) == 0);
			frames++;
		}
	}
	UNIT_ASSERT_EQ(agent_writer_pending(&wr), 0);
	close(p[0]);
	close(p[1]);
	agent_reader_free(&rd);
	agent_writer_free(&wr);
}

UNIT_TEST(test_writer_refuses_oversized_payload)
{
	struct agent_writer wr;
	agent_writer_init(&wr);
	UNIT_ASSERT_EQ(
	    agent_writer_frame(&wr, AGENT_FRAME_STDOUT, 1, "", AGENT_FRAME_MAX_PAYLOAD + 1),
	    -EMSGSIZE);
	UNIT_ASSERT_EQ(agent_writer_pending(&wr), 0);
	agent_writer_free(&wr);
}

UNIT_TEST(test_hello_round_trip)
{
	struct agent_msg in = {.type = AGENT_MSG_HELLO}, out;
	struct perr err = {0};
	in.u.hello.version = AGENT_PROTO_VERSION;
	in.u.hello.agent = "petrel-agent 0.1.0";
	UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
	UNIT_ASSERT_EQ(out.type, AGENT_MSG_HELLO);
	UNIT_ASSERT_EQ(out.u.hello.version, AGENT_PROTO_VERSION);
	UNIT_ASSERT_STREQ(out.u.hello.agent, "petrel-agent 0.1.0");
	agent_msg_free(&out);
}

UNIT_TEST(test_host_hello_carries_the_clock_and_a_seed)
{
	struct agent_msg in, out, other;
	struct perr err = {0};
	agent_hello_init_host(&in);
	UNIT_ASSERT(in.u.hello.time_ns > 1600000000ull * 1000000000ull);
	UNIT_ASSERT(in.u.hello.has_seed);
	UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
	UNIT_ASSERT_EQ(out.u.hello.time_ns, in.u.hello.time_ns);
	UNIT_ASSERT(out.u.hello.has_seed);
	UNIT_ASSERT(memcmp(out.u.hello.seed, in.u.hello.seed, AGENT_HELLO_SEED_BYTES) == 0);
	agent_msg_free(&out);
	/* Fresh bytes each time: siblings restored from one snapshot diverge. */
	agent_hello_init_host(&other);
	UNIT_ASSERT(memcmp(other.u.hello.seed, in.u.hello.seed, AGENT_HELLO_SEED_BYTES) != 0);
	/* Both are optional: an agent's hello has neither. */
	in.u.hello.time_ns = 0;
	in.u.hello.has_seed = false;
	UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
	UNIT_ASSERT_EQ(out.u.hello.time_ns, 0u);
	UNIT_ASSERT(!out.u.hello.has_seed);
	agent_msg_free(&out);
}

UNIT_TEST(test_create_round_trip_keeps_every_field)
{
	char *args[] = {"sh", "-c", "echo hi"};
	char *env[] = {"PATH=/bin", "A=b=c"};
	uint32_t gids[] = {10, 20};
	struct agent_rlimit rl[] = {{RLIMIT_NOFILE, 1024, 4096},
				    {RLIMIT_CORE, UINT64_MAX, UINT64_MAX}};
	char *tmpfs_opts[] = {"nosuid", "mode=755", "size=65536k"};
	struct agent_mount mounts[] = {
	    {"/dev", "tmpfs", "tmpfs", tmpfs_opts, 3},
	    {"/proc", "proc", NULL, NULL, 0},
	};
	char *masked[] = {"/proc/kcore"};
	char *ro[] = {"/proc/sys", "/proc/bus"};
	struct agent_sysctl sysctl[] = {{"net.ipv4.ip_forward", "1"}};
	struct agent_msg in = {.type = AGENT_MSG_CREATE}, out;
	struct agent_create *c = &in.u.create;
	c->root_device = "/dev/vda";
	c->root_fstype = "ext4";
	c->root_readonly = true;
	c->hostname = "box";
	c->namespaces = AGENT_NS_MOUNT | AGENT_NS_PID | AGENT_NS_UTS;
	c->mounts = mounts;
	c->nmounts = 2;
	c->masked_paths = masked;
	c->nmasked = 1;
	c->readonly_paths = ro;
	c->nreadonly = 2;
	c->sysctl = sysctl;
	c->nsysctl = 1;
	struct agent_process *p = &c->process;
	p->args = args;
	p->nargs = 3;
	p->env = env;
	p->nenv = 2;
	p->cwd = "/tmp";
	p->uid = 1000;
	p->gid = 1001;
	p->gids = gids;
	p->ngids = 2;
	p->has_umask = true;
	p->umask = 022;
	p->terminal = true;
	p->rows = 40;
	p->cols = 120;
	p->rlimits = rl;
	p->nrlimits = 2;
	p->has_caps = true;
	p->cap_bounding = (1ull << 0) | (1ull << 40);
	p->cap_effective = 1ull << 21;
	p->cap_ambient = 1ull << 10;
	p->no_new_privileges = true;
	p->has_oom_score_adj = true;
	p->oom_score_adj = -500;

	struct perr err = {0};
	UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
	struct agent_create *d = &out.u.create;
	UNIT_ASSERT_EQ(out.type, AGENT_MSG_CREATE);
	UNIT_ASSERT_STREQ(d->root_device, "/dev/vda");
	UNIT_ASSERT_STREQ(d->root_fstype, "ext4");
	UNIT_ASSERT(d->root_readonly);
	UNIT_ASSERT_STREQ(d->hostname, "box");
	UNIT_ASSERT_EQ(d->namespaces, AGENT_NS_MOUNT | AGENT_NS_PID | AGENT_NS_UTS);
	UNIT_ASSERT_EQ(d->nmounts, 2);
	UNIT_ASSERT_STREQ(d->mounts[0].destination, "/dev");
	UNIT_ASSERT_STREQ(d->mounts[0].source, "tmpfs");
	UNIT_ASSERT_EQ(d->mounts[0].noptions, 3);
	UNIT_ASSERT_STREQ(d->mounts[0].options[2], "size=65536k");
	UNIT_ASSERT(d->mounts[1].source == NULL);
	UNIT_ASSERT_EQ(d->nmasked, 1);
	UNIT_ASSERT_STREQ(d->readonly_paths[1], "/proc/bus");
	UNIT_ASSERT_EQ(d->nsysctl, 1);
	UNIT_ASSERT_STREQ(d->sysctl[0].key, "net.ipv4.ip_forward");
	UNIT_ASSERT_STREQ(d->sysctl[0].value, "1");
	struct agent_process *q = &d->process;
	UNIT_ASSERT_EQ(q->nargs, 3);
	UNIT_ASSERT_STREQ(q->args[2], "echo hi");
	UNIT_ASSERT(q->args[3] == NULL);
	UNIT_ASSERT_STREQ(q->env[1], "A=b=c");
	UNIT_ASSERT(q->env[2] == NULL);
	UNIT_ASSERT_STREQ(q->cwd, "/tmp");
	UNIT_ASSERT_EQ(q->uid, 1000);
	UNIT_ASSERT_EQ(q->gid, 1001);
	UNIT_ASSERT_EQ(q->ngids, 2);
	UNIT_ASSERT_EQ(q->gids[1], 20);
	UNIT_ASSERT(q->has_umask);
	UNIT_ASSERT_EQ(q->umask, 022);
	UNIT_ASSERT(q->terminal);
	UNIT_ASSERT_EQ(q->rows, 40);
	UNIT_ASSERT_EQ(q->cols, 120);
	UNIT_ASSERT_EQ(q->nrlimits, 2);
	UNIT_ASSERT_EQ(q->rlimits[0].resource, RLIMIT_NOFILE);
	UNIT_ASSERT_EQ(q->rlimits[0].hard, 4096);
	UNIT_ASSERT(q->rlimits[1].soft == UINT64_MAX);
	UNIT_ASSERT(q->has_caps);
	UNIT_ASSERT(q->cap_bounding == ((1ull << 0) | (1ull << 40)));
	UNIT_ASSERT(q->cap_effective == 1ull << 21);
	UNIT_ASSERT(q->cap_permitted == 0);
	UNIT_ASSERT(q->cap_ambient == 1ull << 10);
	UNIT_ASSERT(q->no_new_privileges);
	UNIT_ASSERT(q->has_oom_score_adj);
	UNIT_ASSERT_EQ(q->oom_score_adj, -500);
	agent_msg_free(&out);
}

UNIT_TEST(test_small_messages_round_trip)
{
	struct perr err = {0};
	struct agent_msg in, out;

	in = (struct agent_msg){.type = AGENT_MSG_SIGNAL};
	in.u.signal.id = 3;
	in.u.signal.signal = 9;
	in.u.signal.all = true;
	UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
	UNIT_ASSERT_EQ(out.u.signal.id, 3);
	UNIT_ASSERT_EQ(out.u.signal.signal, 9);
	UNIT_ASSERT(out.u.signal.all);
	agent_msg_free(&out);

	in = (struct agent_msg){.type = AGENT_MSG_RESIZE};
	in.u.resize.id = 1;
	in.u.resize.rows = 50;
	in.u.resize.cols = 200;
	UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
	UNIT_ASSERT_EQ(out.u.resize.rows, 50);
	UNIT_ASSERT_EQ(out.u.resize.cols, 200);
	agent_msg_free(&out);

	in = (struct agent_msg){.type = AGENT_MSG_EXIT};
	in.u.exit.id = 1;
	in.u.exit.status = 137;
	in.u.exit.signal = 9;
	UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
	UNIT_ASSERT_EQ(out.type, AGENT_MSG_EXIT);
	UNIT_ASSERT_EQ(out.u.exit.status, 137);
	UNIT_ASSERT_EQ(out.u.exit.signal, 9);
	agent_msg_free(&out);

	in = (struct agent_msg){.type = AGENT_MSG_EXEC_STARTED, .u.id = 4};
	UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
	UNIT_ASSERT_EQ(out.type, AGENT_MSG_EXEC_STARTED);
	UNIT_ASSERT_EQ(out.u.id, 4);
	agent_msg_free(&out);

	const enum agent_msg_type empty[] = {AGENT_MSG_START, AGENT_MSG_SHUTDOWN, AGENT_MSG_OK};
	for (size_t i = 0; i < ARRAY_SIZE(empty); i++) {
		in = (struct agent_msg){.type = empty[i]};
		UNIT_ASSERT_EQ(round_trip(&in, &out, &err), 0);
		UNIT_ASSERT_EQ(out.type, empty[i]);
		agent_msg_free(&out);
	}
}

UNIT_TEST(test_error_message_with_invalid_utf8_still_encodes)
{
	struct agent_writer wr;
	struct agent_reader rd;
	struct agent_frame f;
	struct agent_msg msg;
	struct perr err = {0};
	agent_writer_init(&wr);
	agent_reader_init(&rd);
	UNIT_ASSERT_EQ(agent_writer_error(&wr, "open /bad\xff\xfe path\n"), 0);
	UNIT_ASSERT_EQ(agent_reader_feed(&rd, wr.buf + wr.start, agent_writer_pending(&wr)), 0);
	UNIT_ASSERT_EQ(agent_reader_next(&rd, &f, &err), 1);
	UNIT_ASSERT_EQ(agent_msg_decode(f.payload, f.len, &msg, &err), 0);
	UNIT_ASSERT_EQ(msg.type, AGENT_MSG_ERROR);
	UNIT_ASSERT_STREQ(msg.u.error.message, "open /bad?? path?");
	agent_msg_free(&msg);
	agent_reader_free(&rd);
	agent_writer_free(&wr);
}

#define CREATE_PREFIX "{\"type\":\"create\",\"root\":{\"device\":\"/dev/vda\"},"

UNIT_TEST(test_create_defaults_fstype_cwd_and_mount_namespace)
{
	struct agent_msg m;
	struct perr err;
	UNIT_ASSERT_EQ(decode_str(CREATE_PREFIX "\"process\":{\"args\":[\"true\"]}}", &m, &err), 0);
	UNIT_ASSERT_STREQ(m.u.create.root_fstype, "ext4");
	UNIT_ASSERT_STREQ(m.u.create.process.cwd, "/");
	UNIT_ASSERT_EQ(m.u.create.namespaces, AGENT_NS_MOUNT);
	UNIT_ASSERT(!m.u.create.process.has_caps);
	agent_msg_free(&m);
}

/* Each bad create names the field it is about. */
static const struct {
	const char *json;
	const char *want;
} bad_creates[] = {
    {CREATE_PREFIX
     "\"mounts\":[{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"/x\"}],"
     "\"process\":{\"args\":[\"true\"]}}",
     "mounts[0] (/etc/hosts): bind mounts of host paths are not supported"},
    {CREATE_PREFIX "\"mounts\":[{\"destination\":\"/data\",\"type\":\"none\",\"source\":\"/x\","
		   "\"options\":[\"rbind\",\"ro\"]}],\"process\":{\"args\":[\"true\"]}}",
     "mounts[0] (/data): bind mounts"},
    {CREATE_PREFIX "\"mounts\":[{\"destination\":\"/mnt\",\"type\":\"nfs\"}],"
		   "\"process\":{\"args\":[\"true\"]}}",
     "mounts[0].type: \"nfs\" is not supported"},
    {CREATE_PREFIX "\"mounts\":[{\"destination\":\"mnt\",\"type\":\"tmpfs\"}],"
		   "\"process\":{\"args\":[\"true\"]}}",
     "mounts[0].destination: \"mnt\" is not an absolute path"},
    {CREATE_PREFIX "\"process\":{\"args\":[\"true\"],\"cwd\":\"tmp\"}}",
     "create: process.cwd: \"tmp\" is not an absolute path"},
    {CREATE_PREFIX "\"process\":{\"args\":[]}}", "process.args: must name a program"},
    {CREATE_PREFIX "\"process\":{}}", "process.args: missing"},
    {CREATE_PREFIX "\"process\":{\"args\":[\"true\"],\"capabilities\":{\"bounding\":"
		   "[\"CAP_CHOWN\",\"CAP_FLY\"]}}}",
     "process.capabilities.bounding[1]: unknown capability \"CAP_FLY\""},
    {CREATE_PREFIX "\"process\":{\"args\":[\"true\"],\"rlimits\":[{\"type\":\"RLIMIT_FOO\","
		   "\"soft\":1,\"hard\":1}]}}",
     "process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\""},
    {CREATE_PREFIX "\"process\":{\"args\":[\"true\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\","
		   "\"soft\":10,\"hard\":1}]}}",
     "process.rlimits[0]: soft limit 10 exceeds hard limit 1"},
    {CREATE_PREFIX "\"process\":{\"args\":[\"true\"],\"user\":{\"uid\":-1}}}",
     "process.user.uid: -1 is not an integer"},
    {CREATE_PREFIX "\"process\":{\"args\":[\"true\"],\"user\":{\"uid\":1.5}}}",
     "process.user.uid: 1.5 is not an integer"},
    {CREATE_PREFIX "\"process\":{\"args\":[\"true\"],\"env\":[\"NOEQUALS\"]}}",
     "process.env[0]: \"NOEQUALS\" is not KEY=value"},
    {CREATE_PREFIX "\"namespaces\":[\"pid\",\"network\"],\"process\":{\"args\":[\"true\"]}}",
     "namespaces[1]: \"network\" is not supported inside the VM"},
    {CREATE_PREFIX "\"hostname\":\"box\",\"process\":{\"args\":[\"true\"]}}",
     "hostname: needs the uts namespace"},
    {CREATE_PREFIX "\"sysctl\":{\"../../x\":\"1\"},\"process\":{\"args\":[\"true\"]}}",
     "sysctl.../../x: \"../../x\" is not a sysctl name"},
    {CREATE_PREFIX "\"maskedPaths\":[\"/ok\",\"rel\"],\"process\":{\"args\":[\"true\"]}}",
     "maskedPaths[1]: \"rel\" is not an absolute path"},
    {"{\"type\":\"create\",\"process\":{\"args\":[\"true\"]}}", "create: root: missing"},
    {CREATE_PREFIX "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"options\":"
		   "[\"nosuid\",\"idmap\"]}],\"process\":{\"args\":[\"true\"]}}",
     "mounts[0] (/proc): options[1]: \"idmap\" is not supported"},
    {CREATE_PREFIX "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"options\":"
		   "[\"tmpcopyup\"]}],\"process\":{\"args\":[\"true\"]}}",
     "mounts[0]: tmpcopyup applies to tmpfs only"},
};

UNIT_TEST(test_bad_creates_are_refused_naming_the_field)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_creates); i++) {
		struct agent_msg m;
		struct perr err;
		int r = decode_str(bad_creates[i].json, &m, &err);
		agent_msg_free(&m);
		if (r == 0)
			UNIT_FAIL("case %zu decoded, expected \"%s\"", i, bad_creates[i].want);
		if (!strstr(err.msg, bad_creates[i].want))
			UNIT_FAIL("case %zu: \"%s\", expected \"%s\"", i, err.msg,
				  bad_creates[i].want);
	}
}

static const struct {
	const char *json;
	const char *want;
} bad_messages[] = {
    {"", "bad length"},
    {"[1]", "not a JSON object"},
    {"{\"type\":\"hello\"", "invalid JSON"},
    {"{\"type\":\"hello\",\"version\":1} {}", "invalid JSON"},
    {"{\"type\":\"fly\"}", "unknown type \"fly\""},
    {"{\"type\":7}", "type: expected a string"},
    {"{\"version\":1}", "type: expected a string"},
    {"{\"type\":\"hello\"}", "hello: version: missing"},
    {"{\"type\":\"signal\",\"id\":1,\"signal\":0}",
     "signal: signal: 0 is not an integer between 1 and 64"},
    {"{\"type\":\"signal\",\"id\":1,\"signal\":65}", "between 1 and 64"},
    {"{\"type\":\"signal\",\"id\":0,\"signal\":9}", "id: 0 names no process"},
    {"{\"type\":\"resize\",\"id\":1,\"rows\":70000,\"cols\":1}", "rows: 70000 is not an integer"},
    {"{\"type\":\"exit\",\"id\":1,\"status\":256}", "status: 256 is not an integer"},
    {"{\"type\":\"exec\",\"process\":{\"args\":\"sh\"}}", "exec: process.args: expected an array"},
    {"{\"type\":\"error\",\"message\":\"a\\u0000b\"}", "\\u0000 in a string"},
    {"{\"type\":\"hello\",\"version\":99999999999999999999}", "is not an integer between 0 and"},
    {"{\"type\":\"hello\",\"version\":1,\"seed\":\"abc\"}", "seed: expected 64 hex digits"},
    {"{\"type\":\"hello\",\"version\":1,\"seed\":\"zz00000000000000000000000000000000000000"
     "000000000000000000000000\"}",
     "seed: expected 64 hex digits"},
    {"{\"type\":\"hello\",\"version\":1,\"time_ns\":-5}", "time_ns: -5 is not an integer"},
};

UNIT_TEST(test_bad_messages_are_refused)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_messages); i++) {
		struct agent_msg m;
		struct perr err;
		int r = decode_str(bad_messages[i].json, &m, &err);
		agent_msg_free(&m);
		if (r == 0)
			UNIT_FAIL("case %zu decoded, expected \"%s\"", i, bad_messages[i].want);
		if (!strstr(err.msg, bad_messages[i].want))
			UNIT_FAIL("case %zu: \"%s\", expected \"%s\"", i, err.msg,
				  bad_messages[i].want);
	}
}

UNIT_TEST(test_decoder_refuses_deep_nesting_and_nul_bytes)
{
	struct agent_msg m;
	struct perr err = {0};
	size_t n = 100000;
	char *deep = malloc(2 * n + 1);
	UNIT_ASSERT(deep != NULL);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	int r = agent_msg_decode(deep, 2 * n, &m, &err);
	free(deep);
	UNIT_ASSERT_EQ(r, -EPROTO);
	UNIT_ASSERT_CONTAINS(err.msg, "nested deeper");
	agent_msg_free(&m);

	/* Brackets inside strings do not count. */
	UNIT_ASSERT_EQ(
	    decode_str("{\"type\":\"error\",\"message\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", &m, &err),
	    0);
	agent_msg_free(&m);

	const char nul[] = "{\"type\":\"ok\"}\0";
	UNIT_ASSERT_EQ(agent_msg_decode(nul, sizeof(nul) - 1, &m, &err), -EPROTO);
	UNIT_ASSERT_CONTAINS(err.msg, "NUL byte");
	agent_msg_free(&m);
}

UNIT_TEST(test_unknown_fields_are_ignored_for_compatibility)
{
	struct agent_msg m;
	struct perr err;
	UNIT_ASSERT_EQ(
	    decode_str("{\"type\":\"hello\",\"version\":2,\"future\":{\"x\":[1]}}", &m, &err), 0);
	UNIT_ASSERT_EQ(m.u.hello.version, 2);
	agent_msg_free(&m);
}

UNIT_TEST(test_mount_flags_split_flags_propagation_and_data)
{
	char *opts[] = {"nosuid",   "noexec",	 "ro",	     "rw",
			"rprivate", "mode=1777", "size=64m", "x-foo"};
	struct agent_mount_flags mf;
	struct perr err = {0};
	UNIT_ASSERT_EQ(agent_mount_flags_parse(opts, ARRAY_SIZE(opts), &mf, &err), 0);
	UNIT_ASSERT_EQ(mf.flags, MS_NOSUID | MS_NOEXEC);
	UNIT_ASSERT_EQ(mf.propagation, MS_REC | MS_PRIVATE);
	UNIT_ASSERT_STREQ(mf.data, "mode=1777,size=64m");
	UNIT_ASSERT(!mf.tmpcopyup);
	agent_mount_flags_free(&mf);

	char *bind[] = {"ro", "rbind"};
	UNIT_ASSERT_EQ(agent_mount_flags_parse(bind, 2, &mf, &err), -ENOTSUP);
	UNIT_ASSERT_CONTAINS(err.msg, "options[1]: \"rbind\": bind mounts of host paths");
	agent_mount_flags_free(&mf);
}

UNIT_TEST(test_cap_and_rlimit_names)
{
	UNIT_ASSERT_EQ(agent_cap_from_name("CAP_SYS_ADMIN"), 21);
	UNIT_ASSERT_EQ(agent_cap_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	UNIT_ASSERT_EQ(agent_cap_from_name("cap_sys_admin"), -1);
	UNIT_ASSERT_STREQ(agent_cap_name(13), "CAP_NET_RAW");
	UNIT_ASSERT(agent_cap_name(41) == NULL);
	UNIT_ASSERT_EQ(agent_rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE);
	UNIT_ASSERT_STREQ(agent_rlimit_name(RLIMIT_RTTIME), "RLIMIT_RTTIME");
}

/* A hybrid-vsock backend stand-in: answers one CONNECT with `reply` and then `after`. */
static pid_t fake_hybrid_backend(const char *path, const char *reply, const void *after,
				 size_t after_len)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 1) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int c = accept(lfd, NULL, NULL);
		char line[64];
		size_t n = 0;
		while (n < sizeof(line) - 1 && read(c, line + n, 1) == 1 && line[n] != '\n')
			n++;
		line[n] = '\0';
		if (strcmp(line, "CONNECT 1024") != 0)
			_exit(1);
		if (write(c, reply, strlen(reply)) < 0 ||
		    (after_len && write(c, after, after_len) < 0))
			_exit(1);
		_exit(0);
	}
	close(lfd);
	return pid;
}

UNIT_TEST(test_hybrid_connect_hands_over_the_stream_after_ok)
{
	char dir[] = "/tmp/agent-proto-XXXXXX", path[64];
	UNIT_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/vsock", dir);
	uint8_t frame[AGENT_FRAME_HEADER_SIZE + 2];
	agent_frame_header_encode(frame, AGENT_FRAME_STDOUT, 1, 2);
	memcpy(frame + AGENT_FRAME_HEADER_SIZE, "hi", 2);
	pid_t pid = fake_hybrid_backend(path, "OK 1073741824\n", frame, sizeof(frame));
	UNIT_ASSERT(pid > 0);
	struct perr err = {0};
	int fd = agent_connect_hybrid(path, AGENT_VSOCK_PORT, &err);
	UNIT_ASSERT(fd >= 0);
	/* The bytes right after the OK line are the first frame, not part of the handshake. */
	struct agent_reader rd;
	struct agent_frame f;
	agent_reader_init(&rd);
	int r = 0;
	while (r == 0 && agent_reader_fill(&rd, fd) > 0)
		r = agent_reader_next(&rd, &f, &err);
	UNIT_ASSERT_EQ(r, 1);
	UNIT_ASSERT_EQ(f.len, 2);
	UNIT_ASSERT(memcmp(f.payload, "hi", 2) == 0);
	agent_reader_free(&rd);
	close(fd);
	int st;
	waitpid(pid, &st, 0);
	UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unlink(path);
	rmdir(dir);
}

UNIT_TEST(test_hybrid_connect_reports_refusal_and_bad_replies)
{
	char dir[] = "/tmp/agent-proto-XXXXXX", path[64];
	UNIT_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/vsock", dir);
	struct perr err = {0};
	int st;

	pid_t pid = fake_hybrid_backend(path, "", NULL, 0);
	UNIT_ASSERT(pid > 0);
	UNIT_ASSERT_EQ(agent_connect_hybrid(path, AGENT_VSOCK_PORT, &err), -ECONNREFUSED);
	UNIT_ASSERT_CONTAINS(err.msg, "connection closed after CONNECT 1024");
	waitpid(pid, &st, 0);
	unlink(path);

	pid = fake_hybrid_backend(path, "NOPE\n", NULL, 0);
	UNIT_ASSERT(pid > 0);
	UNIT_ASSERT_EQ(agent_connect_hybrid(path, AGENT_VSOCK_PORT, &err), -EPROTO);
	UNIT_ASSERT_CONTAINS(err.msg, "unexpected CONNECT reply \"NOPE\"");
	waitpid(pid, &st, 0);
	unlink(path);

	UNIT_ASSERT(agent_connect_hybrid(path, AGENT_VSOCK_PORT, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "connect to");
	rmdir(dir);
}
