/* The runtime's host-side pieces for seccomp, locking, cgroups, ps and update:
 * the seccomp profile's trip into the create message, the per-container lock,
 * cgroupsPath resolution and the host limits, and the exec registry. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "common/agent-proto.h"
#include "common/cleanup.h"
#include "oci/oci.h"
#include "oci/seccomp.h"
#include "runtime/cgroup.h"
#include "runtime/container.h"
#include "runtime/relay.h"
#include "tests/unit/unit.h"
#include "vmm/core/eventloop.h"

/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive in unit.h */
UNIT_MAIN("runtime_gaps")

static struct oci_config *parse(const char *json, struct perr *err)
{
	struct oci_config *cfg = NULL;
	if (oci_config_parse(json, strlen(json), &cfg, err) < 0)
		return NULL;
	return cfg;
}

#define CFG_HEAD                                                                      \
	"{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"}, \"process\": " \
	"{\"args\": [\"sh\"], \"cwd\": \"/\"}, \"linux\": {"

UNIT_TEST(test_seccomp_profile_is_added_to_the_create_message)
{
	struct perr err = {0};
	struct oci_config *cfg = parse(
	    CFG_HEAD "\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
		     "[\"SCMP_ARCH_X86_64\"], \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"], "
		     "\"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\"], \"action\": "
		     "\"SCMP_ACT_ERRNO\", \"errnoRet\": 1, \"args\": [{\"index\": 1, \"value\": "
		     "18446744073709551615, \"op\": \"SCMP_CMP_MASKED_EQ\", \"valueTwo\": 2}]}]}}}",
	    &err);
	UNIT_ASSERT(cfg);
	UNIT_ASSERT(cfg->linux_.seccomp);
	const char *msg = "{\"type\":\"create\",\"root\":{\"device\":\"/dev/vda\"}}";
	char *out = NULL;
	size_t len = 0;
	UNIT_ASSERT_EQ(
	    oci_seccomp_add_to_message(cfg->linux_.seccomp, msg, strlen(msg), &out, &len, &err), 0);
	UNIT_ASSERT_EQ(strlen(out), len);
	char ebuf[128];
	yajl_val v = yajl_tree_parse(out, ebuf, sizeof(ebuf));
	UNIT_ASSERT(v);
	const char *type[] = {"type", NULL}, *def[] = {"seccomp", "defaultAction", NULL};
	UNIT_ASSERT_STREQ(YAJL_GET_STRING(yajl_tree_get(v, type, yajl_t_string)), "create");
	UNIT_ASSERT_STREQ(YAJL_GET_STRING(yajl_tree_get(v, def, yajl_t_string)), "SCMP_ACT_ALLOW");
	UNIT_ASSERT_CONTAINS(out, "\"errnoRet\":1");
	UNIT_ASSERT_CONTAINS(out, "\"value\":18446744073709551615");
	UNIT_ASSERT_CONTAINS(out, "\"names\":[\"mkdir\",\"mkdirat\"]");
	UNIT_ASSERT_CONTAINS(out, "\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"]");
	yajl_tree_free(v);
	free(out);
	oci_config_free(cfg);
}

UNIT_TEST(test_seccomp_unknown_action_names_its_json_path)
{
	struct perr err = {0};
	struct oci_config *cfg =
	    parse(CFG_HEAD "\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": "
			   "[{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_FLY\"}]}}}",
		  &err);
	UNIT_ASSERT(!cfg);
	UNIT_ASSERT_CONTAINS(err.msg, "linux.seccomp.syscalls[0].action");
	UNIT_ASSERT_CONTAINS(err.msg, "SCMP_ACT_FLY");
}

UNIT_TEST(test_seccomp_wait_killable_flag_is_refused_by_index)
{
	struct perr err = {0};
	struct oci_config *cfg =
	    parse(CFG_HEAD "\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": "
			   "[\"SECCOMP_FILTER_FLAG_LOG\", "
			   "\"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\"]}}}",
		  &err);
	UNIT_ASSERT(cfg);
	char *out = NULL;
	size_t len = 0;
	UNIT_ASSERT_EQ(oci_seccomp_add_to_message(cfg->linux_.seccomp, "{}", 2, &out, &len, &err),
		       -ENOTSUP);
	UNIT_ASSERT_CONTAINS(err.msg, "linux.seccomp.flags[1]");
	oci_config_free(cfg);
}

UNIT_TEST(test_seccomp_added_to_an_empty_object_has_no_stray_comma)
{
	struct perr err = {0};
	struct oci_config *cfg =
	    parse(CFG_HEAD "\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ERRNO\"}}}", &err);
	UNIT_ASSERT(cfg);
	char *out = NULL;
	size_t len = 0;
	UNIT_ASSERT_EQ(oci_seccomp_add_to_message(cfg->linux_.seccomp, "{}", 2, &out, &len, &err),
		       0);
	UNIT_ASSERT(!strncmp(out, "{\"seccomp\":{", 12));
	free(out);
	oci_config_free(cfg);
}

UNIT_TEST(test_cgroup_cgroupfs_paths_resolve_under_sys_fs_cgroup)
{
	char out[4096];
	struct perr err = {0};
	UNIT_ASSERT_EQ(
	    cgroup_resolve("/libpod_parent/libpod-abc", false, "abc", out, sizeof(out), &err), 0);
	UNIT_ASSERT_STREQ(out, "/sys/fs/cgroup/libpod_parent/libpod-abc");
	UNIT_ASSERT_EQ(cgroup_resolve("machine/x", false, "x", out, sizeof(out), &err), 0);
	UNIT_ASSERT_STREQ(out, "/sys/fs/cgroup/machine/x");
	UNIT_ASSERT(cgroup_resolve("/a/../../etc", false, "x", out, sizeof(out), &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "linux.cgroupsPath");
	UNIT_ASSERT(cgroup_resolve("/", false, "x", out, sizeof(out), &err) < 0);
}

UNIT_TEST(test_cgroup_systemd_form_maps_to_nested_slices_and_a_scope)
{
	char out[4096];
	struct perr err = {0};
	UNIT_ASSERT_EQ(
	    cgroup_resolve("machine.slice:libpod:abc", true, "abc", out, sizeof(out), &err), 0);
	UNIT_ASSERT_STREQ(out, "/sys/fs/cgroup/machine.slice/libpod-abc.scope");
	UNIT_ASSERT_EQ(cgroup_resolve("a-b-c.slice:p:n", true, "n", out, sizeof(out), &err), 0);
	UNIT_ASSERT_STREQ(out, "/sys/fs/cgroup/a.slice/a-b.slice/a-b-c.slice/p-n.scope");
	UNIT_ASSERT_EQ(cgroup_resolve(":crio:id1", true, "id1", out, sizeof(out), &err), 0);
	UNIT_ASSERT_STREQ(out, "/sys/fs/cgroup/system.slice/crio-id1.scope");
	UNIT_ASSERT(cgroup_resolve("notaslice:p:n", true, "n", out, sizeof(out), &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "slice");
	UNIT_ASSERT(cgroup_resolve("a.slice:p", true, "n", out, sizeof(out), &err) < 0);
}

UNIT_TEST(test_cgroup_limits_follow_the_vm_not_the_container)
{
	struct oci_resources res;
	memset(&res, 0, sizeof(res));
	res.memory.limit.set = true;
	res.memory.limit.value = 256 << 20;
	res.cpu.quota.set = true;
	res.cpu.quota.value = 50000;
	res.cpu.period.set = true;
	res.cpu.period.value = 100000;
	res.cpu.shares.set = true;
	res.cpu.shares.value = 1024;
	res.pids.limit.set = true;
	res.pids.limit.value = 5;
	struct cgroup_limits l;
	cgroup_limits_from_resources(&res, 384ull << 20, &l);
	UNIT_ASSERT_EQ(l.memory_max, (384ull << 20) + CGROUP_VMM_OVERHEAD);
	UNIT_ASSERT(l.has_cpu_quota);
	UNIT_ASSERT_EQ(l.cpu_quota, 50000);
	UNIT_ASSERT_EQ(l.cpu_period, 100000);
	UNIT_ASSERT_EQ(l.cpu_weight, 39); /* runc: 1 + (1022 * 9999) / 262142 */
	cgroup_limits_from_resources(NULL, 384ull << 20, &l);
	UNIT_ASSERT_EQ(l.memory_max, 0);
}

UNIT_TEST(test_cgroup_record_round_trip)
{
	char dir[] = "/tmp/petrel-cg.XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	struct perr err = {0};
	char path[4096];
	uint64_t mem = 0;
	bool made = false;
	UNIT_ASSERT_EQ(cgroup_record_load(dir, path, sizeof(path), &mem, &made), -ENOENT);
	UNIT_ASSERT_EQ(cgroup_record_save(dir, "/sys/fs/cgroup/x", 123456789, true, &err), 0);
	UNIT_ASSERT_EQ(cgroup_record_load(dir, path, sizeof(path), &mem, &made), 0);
	UNIT_ASSERT_STREQ(path, "/sys/fs/cgroup/x");
	UNIT_ASSERT_EQ(mem, 123456789);
	UNIT_ASSERT(made);
	UNIT_ASSERT_EQ(cgroup_record_save(dir, "", 42, false, &err), 0);
	UNIT_ASSERT_EQ(cgroup_record_load(dir, path, sizeof(path), &mem, &made), 0);
	UNIT_ASSERT_STREQ(path, "");
	UNIT_ASSERT(!made);
	char f[4200];
	snprintf(f, sizeof(f), "%s/cgroup", dir);
	unlink(f);
	rmdir(dir);
}

UNIT_TEST(test_lock_serialises_two_processes_on_one_id)
{
	char root[] = "/tmp/petrel-lock.XXXXXX";
	UNIT_ASSERT(mkdtemp(root));
	struct perr err = {0};
	int fd = -1;
	UNIT_ASSERT_EQ(container_lock(root, "c1", &fd, &err), 0);
	int p[2];
	UNIT_ASSERT_EQ(pipe(p), 0);
	pid_t child = fork();
	UNIT_ASSERT(child >= 0);
	if (child == 0) {
		/* As after exec (the fd is close-on-exec): the child holds no lock. */
		close(fd);
		struct perr cerr = {0};
		int cfd = -1;
		int rc = container_lock(root, "c1", &cfd, &cerr);
		char b = rc == 0 ? 'L' : 'E';
		if (write(p[1], &b, 1) != 1)
			_exit(2);
		_exit(0);
	}
	/* The child waits while we hold the lock. */
	struct timespec ts = {0, 200 * 1000000L};
	nanosleep(&ts, NULL);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	char b = 0;
	UNIT_ASSERT_EQ(read(p[0], &b, 1), -1);
	/* delete removes the lock file while holding it: the waiter must notice. */
	container_lock_remove(root, "c1");
	close(fd);
	int status = 0;
	waitpid(child, &status, 0);
	UNIT_ASSERT_EQ(read(p[0], &b, 1), 1);
	UNIT_ASSERT_EQ(b, 'L');
	/* Another id is independent. */
	int fd2 = -1;
	UNIT_ASSERT_EQ(container_lock(root, "c2", &fd2, &err), 0);
	container_lock_remove(root, "c2");
	close(fd2);
	container_lock_remove(root, "c1");
	close(p[0]);
	close(p[1]);
	UNIT_ASSERT_EQ(rmdir(root), 0); /* nothing left, .locks included */
}

UNIT_TEST(test_lock_existing_refuses_a_missing_container_without_leaving_files)
{
	char root[] = "/tmp/petrel-lock.XXXXXX";
	UNIT_ASSERT(mkdtemp(root));
	struct perr err = {0};
	int fd = -1;
	UNIT_ASSERT_EQ(container_lock_existing(root, "nope", &fd, &err), -ENOENT);
	UNIT_ASSERT_STREQ(err.msg, CONTAINER_ERR_NOT_EXIST);
	UNIT_ASSERT_EQ(container_lock_existing(root, ".bad", &fd, &err), -EINVAL);
	UNIT_ASSERT_EQ(rmdir(root), 0);
}

UNIT_TEST(test_host_pids_list_the_vmm_then_live_registered_execs)
{
	char root[] = "/tmp/petrel-ps.XXXXXX";
	UNIT_ASSERT(mkdtemp(root));
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/c1", root);
	UNIT_ASSERT_EQ(mkdir(dir, 0700), 0);
	struct oci_state st;
	memset(&st, 0, sizeof(st));
	st.id = "c1";
	st.pid = getpid(); /* stands in for the VMM */
	st.has_petrel = true;
	st.petrel.vmm_pid = getpid();
	UNIT_ASSERT_EQ(proc_start_time(getpid(), &st.petrel.vmm_start_time, NULL), 0);
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	UNIT_ASSERT(child > 0);
	struct perr err = {0};
	UNIT_ASSERT_EQ(container_exec_register(root, "c1", child, &err), 0);
	/* A stale entry: a pid that does not run with that start time. */
	char stale[4300];
	snprintf(stale, sizeof(stale), "%s/execs/%d", dir, (int)getppid());
	int sfd = open(stale, O_WRONLY | O_CREAT, 0600);
	UNIT_ASSERT(sfd >= 0);
	UNIT_ASSERT_EQ(write(sfd, "1", 1), 1);
	close(sfd);
	int *pids = NULL;
	size_t n = 0;
	UNIT_ASSERT_EQ(container_host_pids(root, &st, &pids, &n, &err), 0);
	UNIT_ASSERT_EQ(n, 2);
	UNIT_ASSERT_EQ(pids[0], getpid());
	UNIT_ASSERT_EQ(pids[1], child);
	free(pids);
	container_exec_unregister(root, "c1", child);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	UNIT_ASSERT_EQ(container_host_pids(root, &st, &pids, &n, &err), 0);
	UNIT_ASSERT_EQ(n, 1);
	free(pids);
	UNIT_ASSERT_EQ(remove_tree(root, &err), 0);
}

/* ---- output back-pressure in the relay (runtime/relay.c) ---- */

#define BP_TOTAL (6u << 20)

static uint8_t bp_byte(size_t i)
{
	return (uint8_t)(i % 251);
}

/* A fake agent: hello, exec-started, BP_TOTAL bytes of stdout, exit 0. */
static void __attribute__((noreturn)) bp_agent(int fd)
{
	struct agent_reader rd;
	struct agent_writer wr;
	agent_reader_init(&rd);
	agent_writer_init(&wr);
	struct perr err = {0};
	int frames = 0;
	while (frames < 2) { /* hello, then the exec request */
		struct agent_frame fr;
		int r = agent_reader_next(&rd, &fr, &err);
		if (r < 0)
			_exit(91);
		if (r > 0) {
			frames++;
			continue;
		}
		if (agent_reader_fill(&rd, fd) <= 0)
			_exit(92);
	}
	struct agent_msg hello = {.type = AGENT_MSG_HELLO},
			 started = {.type = AGENT_MSG_EXEC_STARTED};
	hello.u.hello.version = 1;
	hello.u.hello.agent = "fake";
	started.u.id = 2;
	if (agent_writer_msg(&wr, &hello, &err) < 0 || agent_writer_msg(&wr, &started, &err) < 0)
		_exit(93);
	static uint8_t chunk[AGENT_STDIO_CHUNK];
	for (size_t off = 0; off < BP_TOTAL; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = bp_byte(off + i);
		agent_writer_frame(&wr, AGENT_FRAME_STDOUT, 2, chunk, sizeof(chunk));
		/* Blocking: the relay's back-pressure reaches us here. */
		while (agent_writer_pending(&wr))
			if (agent_writer_flush(&wr, fd) < 0)
				_exit(94);
	}
	struct agent_msg ex = {.type = AGENT_MSG_EXIT};
	ex.u.exit.id = 2;
	if (agent_writer_msg(&wr, &ex, &err) < 0)
		_exit(95);
	while (agent_writer_pending(&wr))
		if (agent_writer_flush(&wr, fd) < 0)
			_exit(96);
	char c;
	while (read(fd, &c, 1) > 0)
		;
	_exit(0);
}

struct bp_run {
	struct eventloop *loop;
	int timer_fd, out_r;
	unsigned ticks;
	bool stalled_seen; /* the loop ran while the pipe was full and the process not done */
	bool done;
	int status;
	size_t got;
	bool corrupt;
};

static void bp_drain(struct bp_run *b)
{
	uint8_t buf[65536];
	ssize_t n;
	while ((n = read(b->out_r, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != bp_byte(b->got + (size_t)i))
				b->corrupt = true;
		b->got += (size_t)n;
	}
}

static void bp_on_tick(void *opaque, uint32_t events)
{
	struct bp_run *b = opaque;
	uint64_t n;
	(void)events;
	if (read(b->timer_fd, &n, sizeof(n)) < 0)
		return;
	b->ticks++;
	int pending = 0;
	ioctl(b->out_r, FIONREAD, &pending);
	/* The first half second nobody reads: the pipe fills, the loop goes on. */
	if (b->ticks < 50) {
		if (pending >= 65536 && !b->done)
			b->stalled_seen = true;
		return;
	}
	bp_drain(b);
}

static void bp_on_done(void *opaque, int status, const struct perr *err)
{
	struct bp_run *b = opaque;
	(void)err;
	b->done = true;
	b->status = status;
	eventloop_stop(b->loop);
}

UNIT_TEST(test_relay_output_to_a_stalled_reader_does_not_block_the_loop)
{
	int sv[2], o[2];
	UNIT_ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	UNIT_ASSERT_EQ(pipe2(o, O_CLOEXEC), 0);
	pid_t child = fork();
	UNIT_ASSERT(child >= 0);
	if (child == 0) {
		close(sv[0]);
		bp_agent(sv[1]);
	}
	close(sv[1]);
	alarm(60); /* a blocked loop would hang here */
	struct bp_run b = {.out_r = o[0]};
	fcntl(o[0], F_SETFL, O_NONBLOCK);
	UNIT_ASSERT_EQ(eventloop_create(&b.loop), 0);
	b.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_interval = {0, 10000000L}, .it_value = {0, 10000000L}};
	timerfd_settime(b.timer_fd, 0, &its, NULL);
	UNIT_ASSERT_EQ(eventloop_add(b.loop, b.timer_fd, EPOLLIN, bp_on_tick, &b), 0);
	char *args[] = {"cat", NULL};
	struct agent_msg req = {.type = AGENT_MSG_EXEC};
	req.u.exec.args = args;
	req.u.exec.nargs = 1;
	req.u.exec.cwd = "/";
	struct relay_config cfg = {.conn_fd = sv[0],
				   .port = AGENT_VSOCK_PORT,
				   .request = &req,
				   .notify_fd = -1,
				   .in_fd = -1,
				   .out_fd = o[1], /* a blocking pipe, as conmon's */
				   .err_fd = -1,
				   .done = bp_on_done,
				   .opaque = &b};
	struct relay *r = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(relay_start(b.loop, &cfg, &r, &err), 0);
	UNIT_ASSERT_EQ(eventloop_run(b.loop), 0);
	relay_destroy(r);
	close(o[1]);
	fcntl(o[0], F_SETFL, 0);
	bp_drain(&b);
	alarm(0);
	int ws = 0;
	waitpid(child, &ws, 0);
	eventloop_remove(b.loop, b.timer_fd);
	close(b.timer_fd);
	eventloop_destroy(b.loop);
	close(o[0]);
	close(sv[0]);
	UNIT_ASSERT(b.stalled_seen);
	UNIT_ASSERT(b.done);
	UNIT_ASSERT_EQ(b.status, 0);
	UNIT_ASSERT_EQ(b.got, BP_TOTAL);
	UNIT_ASSERT(!b.corrupt);
	UNIT_ASSERT(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	/* The caller's pipe end keeps its own flags. */
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static const char *read_text(const char *dir, const char *name)
{
	static char buf[128];
	char p[4300];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	buf[0] = 0;
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = 0;
		fclose(f);
	}
	return buf;
}

/* A plain directory stands in for the cgroup: cgroup_apply only writes files. */
UNIT_TEST(test_cgroup_apply_writes_cpu_max_forms)
{
	char dir[] = "/tmp/petrel-cgapply.XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	const char *files[] = {"memory.max", "cpu.max", "cpu.weight"};
	for (size_t i = 0; i < 3; i++)
		write_text(dir, files[i], "");
	struct perr err = {0};
	struct cgroup_limits l = {.memory_max = 448ull << 20,
				  .has_cpu_quota = true,
				  .cpu_quota = 50000,
				  .cpu_period = 100000,
				  .cpu_weight = 39};
	UNIT_ASSERT_EQ(cgroup_apply(dir, &l, &err), 0);
	UNIT_ASSERT_STREQ(read_text(dir, "memory.max"), "469762048");
	UNIT_ASSERT_STREQ(read_text(dir, "cpu.max"), "50000 100000");
	UNIT_ASSERT_STREQ(read_text(dir, "cpu.weight"), "39");
	/* Unlimited without a period keeps the period: "max" alone. */
	struct cgroup_limits u = {.has_cpu_quota = true, .cpu_quota = -1};
	write_text(dir, "cpu.max", "");
	UNIT_ASSERT_EQ(cgroup_apply(dir, &u, &err), 0);
	UNIT_ASSERT_STREQ(read_text(dir, "cpu.max"), "max");
	/* A period alone keeps the quota the cgroup has. */
	write_text(dir, "cpu.max", "20000 100000\n");
	struct cgroup_limits per = {.cpu_period = 50000};
	UNIT_ASSERT_EQ(cgroup_apply(dir, &per, &err), 0);
	UNIT_ASSERT_STREQ(read_text(dir, "cpu.max"), "20000 50000");
	/* A missing file is an error naming it. */
	char p[4300];
	snprintf(p, sizeof(p), "%s/cpu.weight", dir);
	unlink(p);
	struct cgroup_limits w = {.cpu_weight = 100};
	UNIT_ASSERT(cgroup_apply(dir, &w, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "cpu.weight");
	UNIT_ASSERT_EQ(remove_tree(dir, &err), 0);
}
