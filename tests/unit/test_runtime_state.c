/* The state directory's files: state.json round trip, the pid file, pid reuse
 * detection, and what create prepares from config.json (no VM). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/config-file.h"
#include "runtime/container.h"
#include "runtime/rootfs.h"
#include "runtime/spec.h"
#include "runtime/vmm-launch.h"
#include "tests/unit/unit.h"

/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive in unit.h */
UNIT_MAIN("runtime_state")

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

UNIT_TEST(test_pid_file_is_decimal_without_newline_and_atomic)
{
	char dir[] = "/tmp/petrel-pid.XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	char path[64], tmp[80];
	snprintf(path, sizeof(path), "%s/pid", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	struct perr err = {0};
	UNIT_ASSERT_EQ(pid_file_write(path, 4242, &err), 0);
	UNIT_ASSERT_STREQ(slurp(path), "4242");
	UNIT_ASSERT(access(tmp, F_OK) < 0); /* the temporary file was renamed */
	UNIT_ASSERT_EQ(pid_file_write(path, 7, &err), 0);
	UNIT_ASSERT_STREQ(slurp(path), "7");
	unlink(path);
	snprintf(path, sizeof(path), "%s/missing/pid", dir);
	UNIT_ASSERT(pid_file_write(path, 1, &err) < 0);
	UNIT_ASSERT_CONTAINS(err.msg, "--pid-file");
	rmdir(dir);
}

static struct oci_state *sample_state(const char *id, int pid, uint64_t start)
{
	struct oci_state *st = calloc(1, sizeof(*st));
	st->id = strdup(id);
	st->bundle = strdup("/bundles/x");
	st->rootfs = strdup("/bundles/x/rootfs");
	st->status = OCI_STATUS_CREATED;
	st->pid = pid;
	st->created.tv_sec = 1700000000;
	st->has_petrel = true;
	st->petrel.vmm_pid = pid;
	st->petrel.vmm_start_time = start;
	st->petrel.qmp_socket = strdup("/run/petrel/x/qmp.sock");
	return st;
}

UNIT_TEST(test_state_saved_and_loaded_with_runc_errors)
{
	char root[] = "/tmp/petrel-root.XXXXXX";
	UNIT_ASSERT(mkdtemp(root));
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/c1", root);
	UNIT_ASSERT_EQ(mkdir(dir, 0700), 0);
	struct perr err = {0};
	struct oci_state *st = sample_state("c1", 1234, 99);
	int saved = container_save(root, st, &err);
	oci_state_free(st);
	UNIT_ASSERT_EQ(saved, 0);
	struct oci_state *back = NULL;
	UNIT_ASSERT_EQ(container_load(root, "c1", &back, &err), 0);
	UNIT_ASSERT_STREQ(back->id, "c1");
	UNIT_ASSERT_EQ(back->pid, 1234);
	UNIT_ASSERT_EQ(back->petrel.vmm_start_time, 99);
	UNIT_ASSERT_EQ(back->status, OCI_STATUS_CREATED);
	oci_state_free(back);
	back = NULL;
	UNIT_ASSERT_EQ(container_load(root, "nope", &back, &err), -ENOENT);
	UNIT_ASSERT_STREQ(err.msg, "container does not exist");
	UNIT_ASSERT_EQ(container_load(root, "../c1", &back, &err), -EINVAL);
	struct perr rm = {0};
	UNIT_ASSERT_EQ(remove_tree(root, &rm), 0);
	UNIT_ASSERT(access(root, F_OK) < 0);
}

UNIT_TEST(test_start_time_detects_dead_and_reused_pids)
{
	uint64_t start = 0;
	char letter = 0;
	UNIT_ASSERT_EQ(proc_start_time(getpid(), &start, &letter), 0);
	UNIT_ASSERT(start > 0);
	UNIT_ASSERT_EQ(letter, 'R');
	struct oci_state *st = sample_state("c1", getpid(), start);
	bool alive = container_vmm_alive(st);
	st->petrel.vmm_start_time = start + 1; /* same pid, another process */
	bool reused_alive = container_vmm_alive(st);
	enum oci_status status = container_status("/nonexistent", st);
	oci_state_free(st);
	UNIT_ASSERT(alive);
	UNIT_ASSERT(!reused_alive);
	UNIT_ASSERT_EQ(status, OCI_STATUS_STOPPED);

	pid_t child = fork();
	if (child == 0)
		_exit(0);
	UNIT_ASSERT(child > 0);
	/* A zombie counts as stopped: the VMM's parent may reap it late. */
	for (int i = 0; i < 100; i++) {
		if (proc_start_time(child, &start, &letter) == 0 && letter == 'Z')
			break;
		usleep(10000);
	}
	st = sample_state("c1", child, start);
	bool zombie_alive = container_vmm_alive(st);
	oci_state_free(st);
	waitpid(child, NULL, 0);
	UNIT_ASSERT(!zombie_alive);
	UNIT_ASSERT_EQ(proc_start_time(child, &start, NULL), -ENOENT);
}

static struct oci_config *parse(const char *json, struct perr *err)
{
	struct oci_config *cfg = NULL;
	if (oci_config_parse(json, strlen(json), &cfg, err) < 0) {
		oci_config_free(cfg);
		return NULL;
	}
	return cfg;
}

static void default_conf(struct petrel_conf *conf)
{
	struct perr err = {0};
	petrel_conf_load("/dev/null", conf, &err);
	snprintf(conf->kernel, sizeof(conf->kernel), "/k");
	snprintf(conf->initrd, sizeof(conf->initrd), "/i");
}

UNIT_TEST(test_plan_sizes_vm_from_resources_and_annotations)
{
	struct perr err = {0};
	struct petrel_conf conf;
	default_conf(&conf);
	struct oci_config *cfg =
	    parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/\"},"
		  "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"terminal\":true,"
		  "\"consoleSize\":{\"height\":30,\"width\":90}},\"hostname\":\"h\","
		  "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":"
		  "\"uts\"}],"
		  "\"resources\":{\"memory\":{\"limit\":536870912},\"cpu\":{\"quota\":150000,"
		  "\"period\":100000}}}}",
		  &err);
	UNIT_ASSERT(cfg);
	struct spec_plan plan;
	UNIT_ASSERT_EQ(spec_plan_build(cfg, "/b", &conf, &plan, &err), 0);
	UNIT_ASSERT_EQ(plan.cpus, 2);
	UNIT_ASSERT_EQ(plan.memory, (512ull << 20) + conf.memory_overhead);
	UNIT_ASSERT_STREQ(plan.kernel, "/k");
	UNIT_ASSERT_STREQ(plan.rootfs_dir, "/");
	const struct agent_create *c = &plan.create.u.create;
	UNIT_ASSERT_STREQ(c->root_device, "/dev/vda");
	UNIT_ASSERT_EQ(c->namespaces, AGENT_NS_MOUNT | AGENT_NS_PID | AGENT_NS_UTS);
	UNIT_ASSERT_STREQ(c->hostname, "h");
	UNIT_ASSERT(c->process.terminal);
	UNIT_ASSERT_EQ(c->process.rows, 30);
	spec_plan_free(&plan);
	oci_config_free(cfg);

	cfg = parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/\"},"
		    "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
		    "\"annotations\":{\"io.petrel.vm.cpus\":\"3\",\"io.petrel.vm.memory\":\"1G\"}}",
		    &err);
	UNIT_ASSERT(cfg);
	UNIT_ASSERT_EQ(spec_plan_build(cfg, "/b", &conf, &plan, &err), 0);
	UNIT_ASSERT_EQ(plan.cpus, 3);
	UNIT_ASSERT_EQ(plan.memory, 1ull << 30);
	spec_plan_free(&plan);
	oci_config_free(cfg);

	cfg = parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/\"},"
		    "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
		    "\"annotations\":{\"io.petrel.vm.cpus\":\"0\"}}",
		    &err);
	UNIT_ASSERT_EQ(spec_plan_build(cfg, "/b", &conf, &plan, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "annotations[\"io.petrel.vm.cpus\"]: \"0\"");
	spec_plan_free(&plan);
	oci_config_free(cfg);
}

UNIT_TEST(test_plan_copies_small_file_binds_and_refuses_directories)
{
	char dir[] = "/tmp/petrel-plan.XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	char hosts[64], json[2048];
	snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
	FILE *f = fopen(hosts, "w");
	fputs("127.0.0.1 localhost\n", f);
	fclose(f);
	snprintf(json, sizeof(json),
		 "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/\"},"
		 "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},\"mounts\":["
		 "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
		 "{\"destination\":\"/etc/"
		 "hosts\",\"type\":\"bind\",\"source\":\"%s\",\"options\":[\"rbind\",\"ro\"]},"
		 "{\"destination\":\"/dev/"
		 "shm\",\"type\":\"bind\",\"source\":\"%s\",\"options\":[\"rbind\"]},"
		 "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\"}]}",
		 hosts, dir);
	struct perr err = {0};
	struct petrel_conf conf;
	default_conf(&conf);
	struct oci_config *cfg = parse(json, &err);
	UNIT_ASSERT(cfg);
	struct spec_plan plan;
	UNIT_ASSERT_EQ(spec_plan_build(cfg, "/b", &conf, &plan, &err), 0);
	UNIT_ASSERT_EQ(plan.n_copies, 1);
	UNIT_ASSERT_STREQ(plan.copies[0].destination, "/etc/hosts");
	const struct agent_create *c = &plan.create.u.create;
	UNIT_ASSERT_EQ(c->nmounts, 3); /* proc, /dev/shm as a tmpfs, cgroup2 */
	UNIT_ASSERT_STREQ(c->mounts[1].destination, "/dev/shm");
	UNIT_ASSERT_STREQ(c->mounts[1].type, "tmpfs");
	UNIT_ASSERT_STREQ(c->mounts[2].type, "cgroup2");
	spec_plan_free(&plan);
	oci_config_free(cfg);

	snprintf(json, sizeof(json),
		 "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/\"},"
		 "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},\"mounts\":["
		 "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
		 "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s\"}]}",
		 dir);
	cfg = parse(json, &err);
	UNIT_ASSERT(cfg);
	UNIT_ASSERT_EQ(spec_plan_build(cfg, "/b", &conf, &plan, &err), -ENOTSUP);
	UNIT_ASSERT_CONTAINS(err.msg, "mounts[1]: bind mount of host directory");
	UNIT_ASSERT_CONTAINS(err.msg, "on \"/data\"");
	spec_plan_free(&plan);
	oci_config_free(cfg);
	unlink(hosts);
	rmdir(dir);
}

UNIT_TEST(test_vmm_argv_has_container_mode_and_sockets_in_state_dir)
{
	struct spec_plan plan = {.cpus = 2, .memory = 512ull << 20};
	snprintf(plan.machine, sizeof(plan.machine), "microvm");
	snprintf(plan.kernel, sizeof(plan.kernel), "/k");
	snprintf(plan.initrd, sizeof(plan.initrd), "/i");
	struct vmm_launch l = {.vmm = "/bin/petrel-vmm",
			       .state_dir = "/run/petrel/c1",
			       .id = "c1",
			       .plan = &plan,
			       .image = "/run/petrel/c1/rootfs.img"};
	char **argv = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(vmm_launch_argv(&l, &argv, &err), 0);
	char joined[4096] = "";
	size_t used = 0;
	for (char **a = argv; *a && used < sizeof(joined); a++)
		used += (size_t)snprintf(joined + used, sizeof(joined) - used, "%s ", *a);
	vmm_argv_free(argv);
	UNIT_ASSERT_CONTAINS(joined, "-smp 2 -m 512M -kernel /k -initrd /i");
	UNIT_ASSERT_CONTAINS(joined, "uds-path=/run/petrel/c1/agent.sock");
	UNIT_ASSERT_CONTAINS(joined, "-qmp unix:/run/petrel/c1/qmp.sock,server,nowait");
	UNIT_ASSERT_CONTAINS(joined, "-drive id=rootfs,file=/run/petrel/c1/rootfs.img,direct=off");
	UNIT_ASSERT_CONTAINS(joined, "-petrel-container /run/petrel/c1,notify-fd=3");
	l.net = true;
	memcpy(l.mac, (uint8_t[]){0x02, 0x42, 0x0a, 0x58, 0x00, 0x05}, 6);
	UNIT_ASSERT_EQ(vmm_launch_argv(&l, &argv, &err), 0);
	used = 0;
	for (char **a = argv; *a && used < sizeof(joined); a++)
		used += (size_t)snprintf(joined + used, sizeof(joined) - used, "%s ", *a);
	vmm_argv_free(argv);
	UNIT_ASSERT_CONTAINS(joined, "-netdev tap,id=net0,fd=4 -device "
				     "virtio-net-device,netdev=net0,id=net0,mac=02:42:0a:58:00:05");
	char longdir[200];
	memset(longdir, 'x', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = 0;
	l.state_dir = longdir;
	UNIT_ASSERT_EQ(vmm_launch_argv(&l, &argv, &err), -ENAMETOOLONG);
}

UNIT_TEST(test_plan_hugepages_round_memory_to_whole_pages)
{
	struct perr err = {0};
	struct petrel_conf conf;
	default_conf(&conf);
	struct oci_config *cfg = parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/\"},"
				       "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
				       "\"annotations\":{\"io.petrel.vm.hugepages\":\"1G\",\"io."
				       "petrel.vm.memory\":\"1500M\"}}",
				       &err);
	UNIT_ASSERT(cfg);
	struct spec_plan plan;
	int rc = spec_plan_build(cfg, "/b", &conf, &plan, &err);
	uint64_t page = plan.hugepage_size, mem = plan.memory;
	spec_plan_free(&plan);
	oci_config_free(cfg);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(page, 1ull << 30);
	UNIT_ASSERT_EQ(mem, 2ull << 30);
}

UNIT_TEST(test_image_size_has_margin_and_minimum)
{
	UNIT_ASSERT_EQ(rootfs_image_size(0, 0), ROOTFS_MIN_BYTES);
	UNIT_ASSERT_EQ(rootfs_image_size(400ull << 20, 100ull << 20), 600ull << 20);
	UNIT_ASSERT_EQ(rootfs_image_size(1, 64ull << 20) % (1 << 20), 0);
}
