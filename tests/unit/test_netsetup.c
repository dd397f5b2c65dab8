/*
 * netsetup: CIDR parsing and the info JSON as pure functions; bridges, taps,
 * namespaces and the tc redirect against the real kernel, each test in a
 * fresh network namespace of its own (a forked child that unshares), so a
 * test can neither see nor disturb the host's links.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netsetup/netsetup.h"
#include "tests/unit/unit.h"

static struct perr err;

/* Bounded echo: err.msg is larger than the harness's failure text. */
#define ASSERT_MSG(expected)                                                             \
	do {                                                                             \
		if (strcmp(err.msg, (expected)) != 0)                                    \
			UNIT_FAIL("message is \"%.200s\", expected \"%.200s\"", err.msg, \
				  (expected));                                           \
	} while (0)
#define ASSERT_MSG_HAS(needle)                                                               \
	do {                                                                                 \
		if (!strstr(err.msg, (needle)))                                              \
			UNIT_FAIL("message \"%.200s\" lacks \"%.100s\"", err.msg, (needle)); \
	} while (0)
#define ASSERT_OK(call)                                                           \
	do {                                                                      \
		perr_clear(&err);                                                 \
		int rc_ = (call);                                                 \
		if (rc_ < 0)                                                      \
			UNIT_FAIL("%s failed (%d): %.200s", #call, rc_, err.msg); \
	} while (0)

/* ---- pure parts ---- */

UNIT_TEST(test_cidr_parses_ipv4_with_prefix)
{
	struct netsetup_addr a;
	ASSERT_OK(netsetup_cidr_parse("10.88.0.1/16", &a, &err));
	UNIT_ASSERT_EQ(a.family, AF_INET);
	UNIT_ASSERT_EQ(a.prefixlen, 16);
	UNIT_ASSERT(memcmp(a.bytes, "\x0a\x58\x00\x01", 4) == 0);
	char text[64];
	UNIT_ASSERT_EQ(netsetup_addr_format(&a, true, text, sizeof(text)), 0);
	UNIT_ASSERT_STREQ(text, "10.88.0.1/16");
	UNIT_ASSERT_EQ(netsetup_addr_format(&a, false, text, sizeof(text)), 0);
	UNIT_ASSERT_STREQ(text, "10.88.0.1");
	UNIT_ASSERT_EQ(netsetup_addr_format(&a, true, text, 5), -ENOSPC);
}

UNIT_TEST(test_cidr_parses_ipv6_and_edges)
{
	struct netsetup_addr a;
	ASSERT_OK(netsetup_cidr_parse("fd00::2/64", &a, &err));
	UNIT_ASSERT_EQ(a.family, AF_INET6);
	UNIT_ASSERT_EQ(a.prefixlen, 64);
	UNIT_ASSERT_EQ(a.bytes[0], 0xfd);
	UNIT_ASSERT_EQ(a.bytes[15], 2);
	ASSERT_OK(netsetup_cidr_parse("::/0", &a, &err));
	UNIT_ASSERT_EQ(a.prefixlen, 0);
	ASSERT_OK(netsetup_cidr_parse("::1/128", &a, &err));
	ASSERT_OK(netsetup_cidr_parse("0.0.0.0/0", &a, &err));
	ASSERT_OK(netsetup_cidr_parse("1.2.3.4/32", &a, &err));
}

UNIT_TEST(test_cidr_rejects_missing_prefix)
{
	struct netsetup_addr a;
	UNIT_ASSERT_EQ(netsetup_cidr_parse("10.0.0.1", &a, &err), -EINVAL);
	ASSERT_MSG("address '10.0.0.1': no /prefix (write e.g. 10.0.0.1/24)");
}

UNIT_TEST(test_cidr_rejects_prefix_longer_than_address)
{
	struct netsetup_addr a;
	UNIT_ASSERT_EQ(netsetup_cidr_parse("10.0.0.1/33", &a, &err), -EINVAL);
	ASSERT_MSG("address '10.0.0.1/33': prefix /33 is longer than 32 bits");
	UNIT_ASSERT_EQ(netsetup_cidr_parse("fd00::1/129", &a, &err), -EINVAL);
	ASSERT_MSG("address 'fd00::1/129': prefix /129 is longer than 128 bits");
}

UNIT_TEST(test_cidr_rejects_malformed_text)
{
	static const char *const bad[] = {
	    "",		 "/24",		 "10.0.0.1/", "10.0.0.1/+4", "10.0.0.1/ 4", "10.0.0.1/024",
	    "10.0.0/24", "10.0.0.256/8", "host/24",   "10.0.0.1/2x", "1::2::3/64",  "10.0.0.1/1000",
	};
	struct netsetup_addr a;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		perr_clear(&err);
		if (netsetup_cidr_parse(bad[i], &a, &err) != -EINVAL)
			UNIT_FAIL("'%s' was accepted", bad[i]);
		UNIT_ASSERT(err.msg[0] != '\0');
	}
	UNIT_ASSERT_EQ(netsetup_cidr_parse(NULL, &a, &err), -EINVAL);
}

static void sample_info(struct netsetup_netns_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->ifname, sizeof(info->ifname), "eth0");
	memcpy(info->mac, "\x02\x42\x0a\x58\x00\x02", 6);
	info->mtu = 1450;
	netsetup_cidr_parse("10.88.0.2/16", &info->addrs[0], NULL);
	netsetup_cidr_parse("fd00:88::2/64", &info->addrs[1], NULL);
	info->naddrs = 2;
	info->routes[0].family = AF_INET;
	netsetup_cidr_parse("169.254.1.1/32", &info->routes[0].dst, NULL);
	info->routes[1].family = AF_INET;
	info->routes[1].dst.family = AF_INET;
	info->routes[1].has_gateway = true;
	netsetup_cidr_parse("169.254.1.1/32", &info->routes[1].gateway, NULL);
	info->routes[1].metric = 100;
	info->routes[2].family = AF_INET6;
	info->routes[2].dst.family = AF_INET6;
	info->routes[2].has_gateway = true;
	netsetup_cidr_parse("fd00:88::1/128", &info->routes[2].gateway, NULL);
	info->nroutes = 3;
}

static const char sample_json[] =
    "{\"ifname\":\"eth0\",\"mac\":\"02:42:0a:58:00:02\",\"mtu\":1450,"
    "\"addresses\":[{\"family\":\"inet\",\"address\":\"10.88.0.2\",\"prefix\":16},"
    "{\"family\":\"inet6\",\"address\":\"fd00:88::2\",\"prefix\":64}],"
    "\"routes\":[{\"family\":\"inet\",\"destination\":\"169.254.1.1/32\"},"
    "{\"family\":\"inet\",\"destination\":\"default\",\"gateway\":\"169.254.1.1\",\"metric\":100},"
    "{\"family\":\"inet6\",\"destination\":\"default\",\"gateway\":\"fd00:88::1\"}]}";

UNIT_TEST(test_info_json_has_documented_shape)
{
	struct netsetup_netns_info info;
	sample_info(&info);
	char *json = NULL;
	ASSERT_OK(netsetup_netns_info_to_json(&info, &json, &err));
	if (strcmp(json, sample_json) != 0) {
		char shown[300];
		snprintf(shown, sizeof(shown), "%s", json);
		free(json);
		UNIT_FAIL("json is %s", shown);
	}
	free(json);
}

UNIT_TEST(test_info_json_round_trips)
{
	struct netsetup_netns_info want, got;
	sample_info(&want);
	ASSERT_OK(netsetup_netns_info_from_json(sample_json, &got, &err));
	UNIT_ASSERT_STREQ(got.ifname, "eth0");
	UNIT_ASSERT(memcmp(got.mac, want.mac, 6) == 0);
	UNIT_ASSERT_EQ(got.mtu, 1450);
	UNIT_ASSERT_EQ(got.naddrs, 2);
	UNIT_ASSERT_EQ(got.nroutes, 3);
	char *again = NULL;
	ASSERT_OK(netsetup_netns_info_to_json(&got, &again, &err));
	bool same = strcmp(again, sample_json) == 0;
	free(again);
	UNIT_ASSERT(same);
}

UNIT_TEST(test_info_json_errors_name_the_path)
{
	struct netsetup_netns_info info;
	UNIT_ASSERT_EQ(netsetup_netns_info_from_json("[1]", &info, &err), -EINVAL);
	ASSERT_MSG("$: expected an object");
	UNIT_ASSERT_EQ(
	    netsetup_netns_info_from_json("{\"ifname\":\"eth0\",\"mac\":\"zz\"}", &info, &err),
	    -EINVAL);
	ASSERT_MSG("$.mac: 'zz' is not a MAC address");
	UNIT_ASSERT_EQ(netsetup_netns_info_from_json(
			   "{\"ifname\":\"eth0\",\"mac\":\"02:00:00:00:00:01\",\"mtu\":1500,"
			   "\"addresses\":[],\"routes\":[{\"family\":\"inet\","
			   "\"destination\":\"default\",\"gateway\":\"fd00::1\"}]}",
			   &info, &err),
		       -EINVAL);
	ASSERT_MSG("$.routes[0].gateway: 'fd00::1' is not an IPv4 address");
	UNIT_ASSERT_EQ(netsetup_netns_info_from_json(
			   "{\"ifname\":\"eth0\",\"mac\":\"02:00:00:00:00:01\",\"mtu\":-1,"
			   "\"addresses\":[],\"routes\":[]}",
			   &info, &err),
		       -EINVAL);
	ASSERT_MSG("$.mtu: expected an integer from 0 to 65535");
	UNIT_ASSERT_EQ(netsetup_netns_info_from_json("{", &info, &err), -EINVAL);
	ASSERT_MSG_HAS("info json: ");
}

/* ---- the real kernel, in a fresh network namespace ---- */

/* Runs body in a forked child that has unshared its network namespace, and
 * takes over its verdict. Skips without root or, when asked, /dev/net/tun. */
static void in_fresh_netns(void (*body)(void), bool need_tun)
{
	if (geteuid() != 0)
		UNIT_SKIP("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to make links and namespaces");
	if (need_tun && access("/dev/net/tun", R_OK | W_OK) != 0)
		UNIT_SKIP("/dev/net/tun is not usable here: %s", strerror(errno));
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		UNIT_FAIL("pipe: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		UNIT_FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		close(pipefd[0]);
		memset(&unit_current, 0, sizeof(unit_current));
		if (unshare(CLONE_NEWNET) < 0) {
			unit_current.skipped = true;
			snprintf(unit_current.why, sizeof(unit_current.why),
				 "unshare(CLONE_NEWNET): %s", strerror(errno));
		} else {
			body();
		}
		ssize_t n = write(pipefd[1], &unit_current, sizeof(unit_current));
		_exit(n == (ssize_t)sizeof(unit_current) ? 0 : 1);
	}
	close(pipefd[1]);
	struct unit_state verdict;
	memset(&verdict, 0, sizeof(verdict));
	size_t got = 0;
	while (got < sizeof(verdict)) {
		ssize_t n = read(pipefd[0], (char *)&verdict + got, sizeof(verdict) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(pipefd[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	if (got != sizeof(verdict))
		UNIT_FAIL("test child died without a verdict (wait status 0x%x)", status);
	unit_current = verdict;
}

static struct nl_sock *test_sock(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	if (sk && nl_connect(sk, NETLINK_ROUTE) < 0) {
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

static int make_veth(const char *name, const char *peer, pid_t peer_ns_pid)
{
	struct nl_sock *sk = test_sock();
	if (!sk)
		return -1;
	int rc = rtnl_link_veth_add(sk, name, peer, peer_ns_pid);
	nl_socket_free(sk);
	return rc;
}

/* /sys/class/net shows the namespace sysfs was mounted in, not ours: ask rtnetlink. */
static bool is_port_of(const char *ifname, const char *bridge)
{
	struct nl_sock *sk = test_sock();
	struct rtnl_link *link = NULL, *br = NULL;
	bool yes = sk && rtnl_link_get_kernel(sk, 0, ifname, &link) == 0 &&
		   rtnl_link_get_kernel(sk, 0, bridge, &br) == 0 &&
		   rtnl_link_get_master(link) == rtnl_link_get_ifindex(br);
	if (link)
		rtnl_link_put(link);
	if (br)
		rtnl_link_put(br);
	if (sk)
		nl_socket_free(sk);
	return yes;
}

/* Counts qdiscs that are not the kernel's defaults (ingress ones, here). */
static int count_ingress_qdiscs(void)
{
	struct nl_sock *sk = test_sock();
	struct nl_cache *cache = NULL;
	if (!sk || rtnl_qdisc_alloc_cache(sk, &cache) < 0)
		return -1;
	int n = 0;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o))
		if (rtnl_tc_get_parent(TC_CAST(o)) == TC_H_INGRESS)
			n++;
	nl_cache_free(cache);
	nl_socket_free(sk);
	return n;
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void body_bridge_ensure(void)
{
	struct netsetup_addr a;
	ASSERT_OK(netsetup_cidr_parse("10.77.0.1/24", &a, &err));
	perr_clear(&err);
	int rc = netsetup_bridge_ensure("pbr0", &a, &err);
	if (rc == -EOPNOTSUPP)
		UNIT_SKIP("this kernel has no bridge support: %.200s", err.msg);
	UNIT_ASSERT_EQ(rc, 0);
	ASSERT_OK(netsetup_bridge_ensure("pbr0", &a, &err));
	ASSERT_OK(netsetup_bridge_ensure("pbr0", NULL, &err));
	UNIT_ASSERT_EQ(netsetup_link_exists("pbr0", &err), 1);
	ASSERT_OK(netsetup_bridge_delete("pbr0", &err));
	UNIT_ASSERT_EQ(netsetup_link_exists("pbr0", &err), 0);
	ASSERT_OK(netsetup_bridge_delete("pbr0", &err));
}

UNIT_TEST(test_bridge_ensure_is_idempotent)
{
	in_fresh_netns(body_bridge_ensure, false);
}

static void body_bridge_clash(void)
{
	UNIT_ASSERT_EQ(make_veth("vx0", "vx1", getpid()), 0);
	UNIT_ASSERT_EQ(netsetup_bridge_ensure("vx0", NULL, &err), -EEXIST);
	ASSERT_MSG("bridge vx0: exists and is not a bridge (it is a veth)");
	UNIT_ASSERT_EQ(netsetup_bridge_delete("vx0", &err), -EINVAL);
	ASSERT_MSG("bridge vx0: is not a bridge (it is a veth); not deleting it");
	UNIT_ASSERT_EQ(netsetup_link_exists("vx0", &err), 1);
	UNIT_ASSERT_EQ(netsetup_bridge_ensure("lo", NULL, &err), -EEXIST);
	ASSERT_MSG("bridge lo: exists and is not a bridge (it is a plain link)");
	UNIT_ASSERT_EQ(netsetup_bridge_ensure("name-much-too-long", NULL, &err), -EINVAL);
	ASSERT_MSG_HAS("longer than 15 bytes");
}

UNIT_TEST(test_bridge_refuses_a_name_that_is_not_a_bridge)
{
	in_fresh_netns(body_bridge_clash, false);
}

static void body_tap_fd(void)
{
	int fd = -1;
	char name[IFNAMSIZ];
	ASSERT_OK(netsetup_tap_create("ptap%d", NETSETUP_TAP_VNET_HDR, &fd, name, &err));
	UNIT_ASSERT_STREQ(name, "ptap0");
	UNIT_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	UNIT_ASSERT_EQ(ioctl(fd, TUNGETIFF, &ifr), 0);
	UNIT_ASSERT(ifr.ifr_flags & IFF_TAP);
	UNIT_ASSERT(ifr.ifr_flags & IFF_NO_PI);
	UNIT_ASSERT(ifr.ifr_flags & IFF_VNET_HDR);
	int hdrlen = 0;
	UNIT_ASSERT_EQ(ioctl(fd, TUNGETVNETHDRSZ, &hdrlen), 0);
	UNIT_ASSERT_EQ(hdrlen, 12);
	UNIT_ASSERT_EQ(netsetup_link_exists("ptap0", &err), 1);
	close(fd);
	/* Not persistent: the last fd took the tap along. */
	UNIT_ASSERT_EQ(netsetup_link_exists("ptap0", &err), 0);
}

UNIT_TEST(test_tap_create_returns_cloexec_vnet_hdr_fd)
{
	in_fresh_netns(body_tap_fd, true);
}

static void body_tap_clash(void)
{
	int fd = -1, fd2 = -1;
	char name[IFNAMSIZ];
	ASSERT_OK(netsetup_tap_create("ptap1", NETSETUP_TAP_VNET_HDR, &fd, name, &err));
	UNIT_ASSERT_EQ(netsetup_tap_create("ptap1", NETSETUP_TAP_VNET_HDR, &fd2, name, &err),
		       -EEXIST);
	ASSERT_MSG("tap ptap1: already exists");
	UNIT_ASSERT_EQ(fd2, -1);
	UNIT_ASSERT_EQ(netsetup_tap_create("lo", 0, &fd2, name, &err), -EEXIST);
	ASSERT_MSG("tap lo: already exists");
	/* The first tap is untouched. */
	UNIT_ASSERT_EQ(netsetup_link_exists("ptap1", &err), 1);
	close(fd);
}

UNIT_TEST(test_tap_create_refuses_an_existing_name)
{
	in_fresh_netns(body_tap_clash, true);
}

static void body_tap_persistent(void)
{
	UNIT_ASSERT_EQ(make_veth("vp0", "vp1", getpid()), 0);
	perr_clear(&err);
	if (netsetup_bridge_ensure("pbr1", NULL, &err) == -EOPNOTSUPP)
		UNIT_SKIP("this kernel has no bridge support");
	ASSERT_OK(netsetup_tap_add_persistent("ptap2", "pbr1", 4242, &err));
	UNIT_ASSERT(is_port_of("ptap2", "pbr1"));
	/* A missing bridge fails after the tap was made: it must be gone again. */
	UNIT_ASSERT_EQ(netsetup_tap_add_persistent("ptap3", "nobridge", -1, &err), -ENODEV);
	ASSERT_MSG("tap ptap3: link nobridge: No such device");
	UNIT_ASSERT_EQ(netsetup_link_exists("ptap3", &err), 0);
	UNIT_ASSERT_EQ(netsetup_tap_add_persistent("ptap3", "vp0", -1, &err), -EINVAL);
	ASSERT_MSG("tap ptap3: vp0 is not a bridge");
	UNIT_ASSERT_EQ(netsetup_link_exists("ptap3", &err), 0);
	UNIT_ASSERT_EQ(netsetup_tap_delete("vp0", &err), -EINVAL);
	ASSERT_OK(netsetup_tap_delete("ptap2", &err));
	UNIT_ASSERT_EQ(netsetup_link_exists("ptap2", &err), 0);
	ASSERT_OK(netsetup_tap_delete("ptap2", &err));
	ASSERT_OK(netsetup_link_delete("ptap2", &err));
}

static void body_bridge_attach(void)
{
	int fd = -1;
	char name[IFNAMSIZ];
	perr_clear(&err);
	int rc = netsetup_bridge_attach("pbr3", NULL, "vmtap%d", &fd, name, &err);
	if (rc == -EOPNOTSUPP)
		UNIT_SKIP("this kernel has no bridge support");
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_STREQ(name, "vmtap0");
	UNIT_ASSERT(is_port_of("vmtap0", "pbr3"));
	/* As after kill -9 of the VMM: the fd goes, and with it tap and port. */
	close(fd);
	UNIT_ASSERT_EQ(netsetup_link_exists("vmtap0", &err), 0);
	UNIT_ASSERT_EQ(netsetup_link_exists("pbr3", &err), 1);
	UNIT_ASSERT_EQ(netsetup_bridge_attach("pbr3", NULL, "lo", &fd, name, &err), -EEXIST);
	UNIT_ASSERT_EQ(fd, -1);
}

UNIT_TEST(test_bridge_attach_tap_goes_with_its_fd)
{
	in_fresh_netns(body_bridge_attach, true);
}

UNIT_TEST(test_persistent_tap_joins_bridge_and_undoes_on_failure)
{
	in_fresh_netns(body_tap_persistent, true);
}

UNIT_TEST(test_netns_open_rejects_wrong_paths)
{
	int fd = -1;
	UNIT_ASSERT_EQ(netsetup_netns_open("/nonexistent/netns", &fd, &err), -ENOENT);
	ASSERT_MSG("netns /nonexistent/netns: No such file or directory");
	UNIT_ASSERT_EQ(netsetup_netns_open("/proc/self/ns/mnt", &fd, &err), -EINVAL);
	ASSERT_MSG("netns /proc/self/ns/mnt: is a mount namespace, not a network namespace");
	UNIT_ASSERT_EQ(netsetup_netns_open("/proc/self/ns/uts", &fd, &err), -EINVAL);
	ASSERT_MSG_HAS("is a uts namespace");
	UNIT_ASSERT_EQ(netsetup_netns_open("/proc/self/stat", &fd, &err), -EINVAL);
	ASSERT_MSG_HAS("netns /proc/self/stat: not a namespace file");
	UNIT_ASSERT_EQ(fd, -1);
	ASSERT_OK(netsetup_netns_open("/proc/self/ns/net", &fd, &err));
	UNIT_ASSERT(fd >= 0);
	UNIT_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

static ino_t current_netns(void)
{
	struct stat st;
	if (stat("/proc/thread-self/ns/net", &st) < 0)
		return 0;
	return st.st_ino;
}

struct probe {
	ino_t seen;
	int result;
};

static int probe_netns(void *arg, struct perr *e)
{
	struct probe *p = arg;
	p->seen = current_netns();
	if (p->result < 0)
		return perr_setx(e, p->result, "probe failed on purpose");
	return 0;
}

static void body_netns_run(void)
{
	ino_t home = current_netns();
	/* A second namespace to visit: a child that unshares and waits. */
	int ready[2];
	UNIT_ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
	pid_t holder = fork();
	if (holder == 0) {
		char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c = 0;
	UNIT_ASSERT_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)holder);
	int before = count_fds();

	struct probe p = {0, 0};
	int rc = netsetup_netns_run(path, probe_netns, &p, &err);
	struct probe q = {0, -EIO};
	int rc2 = netsetup_netns_run(path, probe_netns, &q, &err);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	UNIT_ASSERT_EQ(c, 'y');
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT(p.seen != 0 && p.seen != home);
	UNIT_ASSERT_EQ(rc2, -EIO);
	ASSERT_MSG_HAS(": probe failed on purpose");
	ASSERT_MSG_HAS("netns /proc/");
	UNIT_ASSERT_EQ(q.seen, p.seen);
	UNIT_ASSERT_EQ(current_netns(), home);
	UNIT_ASSERT_EQ(count_fds(), before);

	UNIT_ASSERT_EQ(netsetup_netns_run("/proc/self/ns/mnt", probe_netns, &p, &err), -EINVAL);
	UNIT_ASSERT_EQ(current_netns(), home);
}

UNIT_TEST(test_netns_run_always_returns_home)
{
	in_fresh_netns(body_netns_run, false);
}

/* ---- frames across the redirect ---- */

#define TEST_ETHERTYPE 0x88b5 /* IEEE 802 local experimental */

static int packet_socket(const char *ifname)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
	if (s < 0)
		return -1;
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)if_nametoindex(ifname)};
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static size_t test_frame(uint8_t *buf, const char *payload)
{
	memset(buf, 0xff, 6); /* broadcast */
	static const uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
	memcpy(buf + 6, src_mac, sizeof(src_mac));
	buf[12] = TEST_ETHERTYPE >> 8;
	buf[13] = TEST_ETHERTYPE & 0xff;
	size_t n = strlen(payload);
	memcpy(buf + 14, payload, n + 1);
	return 14 + n < 60 ? 60 : 14 + n;
}

/* Reads fd until a frame (after skip bytes of header) carries payload. */
static bool wait_for_payload(int fd, size_t skip, const char *payload)
{
	for (int tries = 0; tries < 100; tries++) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		uint8_t buf[2048];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < (ssize_t)(skip + 14))
			continue;
		uint8_t *eth = buf + skip;
		if (eth[12] == TEST_ETHERTYPE >> 8 && eth[13] == (TEST_ETHERTYPE & 0xff) &&
		    memmem(eth + 14, (size_t)n - skip - 14, payload, strlen(payload)))
			return true;
	}
	return false;
}

static void body_redirect_traffic(void)
{
	UNIT_ASSERT_EQ(make_veth("vhost", "vct", getpid()), 0);
	int tap = -1;
	char tapname[IFNAMSIZ];
	ASSERT_OK(netsetup_tap_create("ptap4", NETSETUP_TAP_VNET_HDR, &tap, tapname, &err));
	fcntl(tap, F_SETFL, O_NONBLOCK);
	ASSERT_OK(netsetup_link_up("vhost", &err));
	ASSERT_OK(netsetup_link_up("vct", &err));
	ASSERT_OK(netsetup_link_up("ptap4", &err));
	ASSERT_OK(netsetup_tc_redirect_setup("vct", "ptap4", &err));
	UNIT_ASSERT_EQ(netsetup_tc_redirect_present("vct", &err), 1);
	UNIT_ASSERT_EQ(netsetup_tc_redirect_present("ptap4", &err), 1);
	UNIT_ASSERT_EQ(netsetup_tc_redirect_present("vhost", &err), 0);

	int ps = packet_socket("vhost");
	UNIT_ASSERT(ps >= 0);
	uint8_t frame[128];
	memset(frame, 0, sizeof(frame));
	size_t len = test_frame(frame, "petrel-to-guest");
	/* vhost -> vct's ingress -> redirect -> ptap4's egress -> the tap fd */
	UNIT_ASSERT_EQ(send(ps, frame, len, 0), (ssize_t)len);
	UNIT_ASSERT(wait_for_payload(tap, 12, "petrel-to-guest"));

	/* the tap fd -> ptap4's ingress -> redirect -> vct's egress -> vhost */
	uint8_t out[12 + 128];
	memset(out, 0, sizeof(out)); /* an all-zero virtio-net header: no offloads */
	len = test_frame(out + 12, "petrel-to-host");
	UNIT_ASSERT_EQ(write(tap, out, 12 + len), (ssize_t)(12 + len));
	UNIT_ASSERT(wait_for_payload(ps, 0, "petrel-to-host"));
	close(ps);

	ASSERT_OK(netsetup_tc_redirect_teardown("vct", "ptap4", &err));
	UNIT_ASSERT_EQ(count_ingress_qdiscs(), 0);
	UNIT_ASSERT_EQ(netsetup_tc_redirect_present("vct", &err), 0);
	ASSERT_OK(netsetup_tc_redirect_teardown("vct", "ptap4", &err));
	close(tap);
	ASSERT_OK(netsetup_tc_redirect_teardown("vct", "ptap4", &err));
}

UNIT_TEST(test_tc_redirect_moves_frames_both_ways)
{
	in_fresh_netns(body_redirect_traffic, true);
}

static void body_redirect_refusals(void)
{
	UNIT_ASSERT_EQ(make_veth("vr0", "vr1", getpid()), 0);
	int tap = -1;
	ASSERT_OK(netsetup_tap_create("ptap5", 0, &tap, NULL, &err));
	UNIT_ASSERT_EQ(netsetup_tc_redirect_setup("vr0", "nosuch", &err), -ENODEV);
	ASSERT_MSG("redirect vr0 <-> nosuch: link nosuch: No such device");
	UNIT_ASSERT_EQ(count_ingress_qdiscs(), 0);
	ASSERT_OK(netsetup_tc_redirect_setup("vr0", "ptap5", &err));
	UNIT_ASSERT_EQ(netsetup_tc_redirect_setup("vr0", "ptap5", &err), -EEXIST);
	ASSERT_MSG_HAS("vr0 already has a redirect filter");
	UNIT_ASSERT_EQ(count_ingress_qdiscs(), 2);
	ASSERT_OK(netsetup_tc_redirect_teardown("vr0", "ptap5", &err));
	UNIT_ASSERT_EQ(count_ingress_qdiscs(), 0);
	close(tap);
}

UNIT_TEST(test_tc_redirect_refuses_missing_link_and_second_setup)
{
	in_fresh_netns(body_redirect_refusals, true);
}

/* The runtime's path: a "container" namespace held by a child, with a veth
 * whose peer stays here, as podman or CNI would leave it. */
static void body_attach(void)
{
	int ready[2];
	UNIT_ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
	pid_t holder = fork();
	if (holder == 0) {
		char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c = 0;
	UNIT_ASSERT_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	UNIT_ASSERT_EQ(c, 'y');
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)holder);
	UNIT_ASSERT_EQ(make_veth("vhost", "eth0", holder), 0);
	ASSERT_OK(netsetup_link_up("vhost", &err));
	ino_t home = current_netns();
	int fds_before = count_fds();

	/* Configure eth0 over there as a CNI plugin would. */
	struct netsetup_netns_saved saved;
	ASSERT_OK(netsetup_netns_enter(path, &saved, &err));
	perr_clear(&err);
	int rc = netsetup_link_up("eth0", &err);
	if (rc == 0)
		rc = netsetup_link_set_mtu("eth0", 1400, &err);
	struct perr leave;
	UNIT_ASSERT_EQ(netsetup_netns_leave(&saved, &leave), 0);
	if (rc < 0)
		UNIT_FAIL("configuring eth0: %.200s", err.msg);

	/* A clash fails cleanly: no qdisc, no tap, back home. */
	int tap = -1;
	char tapname[IFNAMSIZ];
	struct netsetup_netns_info info;
	UNIT_ASSERT_EQ(netsetup_netns_attach(path, NULL, "lo", &tap, tapname, &info, &err),
		       -EEXIST);
	ASSERT_MSG_HAS("tap lo: already exists");
	UNIT_ASSERT_EQ(tap, -1);
	UNIT_ASSERT_EQ(current_netns(), home);

	ASSERT_OK(netsetup_netns_attach(path, NULL, "tap%d", &tap, tapname, &info, &err));
	UNIT_ASSERT_EQ(current_netns(), home);
	UNIT_ASSERT_STREQ(tapname, "tap0");
	UNIT_ASSERT_STREQ(info.ifname, "eth0");
	UNIT_ASSERT_EQ(info.mtu, 1400);
	UNIT_ASSERT(tap >= 0);
	fcntl(tap, F_SETFL, O_NONBLOCK);

	/* A frame from the host's end reaches the tap fd we hold here. */
	int ps = packet_socket("vhost");
	UNIT_ASSERT(ps >= 0);
	uint8_t frame[128];
	memset(frame, 0, sizeof(frame));
	size_t len = test_frame(frame, "through-the-namespace");
	UNIT_ASSERT_EQ(send(ps, frame, len, 0), (ssize_t)len);
	UNIT_ASSERT(wait_for_payload(tap, 12, "through-the-namespace"));
	close(ps);

	/* As after kill -9 of the VMM: the fd goes first, then detach. */
	close(tap);
	ASSERT_OK(netsetup_netns_detach(path, NULL, "tap0", &err));
	ASSERT_OK(netsetup_netns_detach(path, NULL, "tap0", &err));
	UNIT_ASSERT_EQ(current_netns(), home);
	ASSERT_OK(netsetup_netns_enter(path, &saved, &err));
	int qdiscs = count_ingress_qdiscs();
	int tap_left = netsetup_link_exists("tap0", &err);
	UNIT_ASSERT_EQ(netsetup_netns_leave(&saved, &leave), 0);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	UNIT_ASSERT_EQ(qdiscs, 0);
	UNIT_ASSERT_EQ(tap_left, 0);
	UNIT_ASSERT_EQ(count_fds(), fds_before);
	/* The namespace is gone now: detach has nothing to do. */
	ASSERT_OK(netsetup_netns_detach("/nonexistent/netns", NULL, "tap0", &err));
}

UNIT_TEST(test_netns_attach_redirects_and_detach_leaves_nothing)
{
	in_fresh_netns(body_attach, true);
}

static void body_collect(void)
{
	UNIT_ASSERT_EQ(make_veth("vi0", "vi1", getpid()), 0);
	ASSERT_OK(netsetup_link_up("vi0", &err));
	ASSERT_OK(netsetup_link_set_mtu("vi0", 1450, &err));
	/* The kernel's own explanation (extended ack) reaches the message. */
	UNIT_ASSERT_EQ(netsetup_link_set_mtu("vi0", 1u << 20, &err), -EINVAL);
	ASSERT_MSG_HAS("link vi0: set mtu 1048576: Invalid argument (kernel: ");
	/* The library adds addresses only to bridges; a bridge stands in for
	 * the veth here, with the same code path for reading. */
	struct netsetup_addr a;
	netsetup_cidr_parse("10.66.0.2/16", &a, NULL);
	perr_clear(&err);
	if (netsetup_bridge_ensure("pbr2", &a, &err) == -EOPNOTSUPP)
		UNIT_SKIP("this kernel has no bridge support");
	struct netsetup_netns_info info;
	ASSERT_OK(netsetup_netns_info_collect("pbr2", &info, &err));
	UNIT_ASSERT_EQ(info.naddrs, 1);
	char text[64];
	netsetup_addr_format(&info.addrs[0], true, text, sizeof(text));
	UNIT_ASSERT_STREQ(text, "10.66.0.2/16");
	UNIT_ASSERT_EQ(info.nroutes, 0); /* only the kernel's prefix route exists */
	ASSERT_OK(netsetup_netns_info_collect("vi0", &info, &err));
	UNIT_ASSERT_EQ(info.mtu, 1450);
	UNIT_ASSERT_EQ(info.naddrs, 0);
	UNIT_ASSERT_EQ(netsetup_netns_info_collect("nosuch", &info, &err), -ENODEV);
	ASSERT_MSG("link nosuch: No such device");
	char up[IFNAMSIZ];
	UNIT_ASSERT_EQ(netsetup_netns_find_uplink(up, &err), -EINVAL);
	ASSERT_MSG_HAS("no default route and 3 links");
}

UNIT_TEST(test_info_collect_reads_mtu_and_addresses)
{
	in_fresh_netns(body_collect, false);
}

/* ---- netsetup_container_* ---- */

UNIT_TEST(test_container_net_json_has_the_agents_shape)
{
	struct netsetup_container_net net;
	memset(&net, 0, sizeof(net));
	net.tap_fd = -1;
	sample_info(&net.veth);
	char *json = NULL;
	ASSERT_OK(netsetup_container_net_to_json(&net, &json, &err));
	static const char want[] =
	    "{\"interfaces\":[{\"name\":\"eth0\",\"mac\":\"02:42:0a:58:00:02\",\"mtu\":1450,"
	    "\"addresses\":[\"10.88.0.2/16\",\"fd00:88::2/64\"]}],"
	    "\"routes\":[{\"destination\":\"169.254.1.1/32\",\"interface\":\"eth0\"},"
	    "{\"destination\":\"0.0.0.0/0\",\"gateway\":\"169.254.1.1\",\"interface\":\"eth0\","
	    "\"metric\":100},"
	    "{\"destination\":\"::/0\",\"gateway\":\"fd00:88::1\",\"interface\":\"eth0\"}]}";
	bool same = strcmp(json, want) == 0;
	char shown[400];
	snprintf(shown, sizeof(shown), "%s", json);
	free(json);
	if (!same)
		UNIT_FAIL("json is %s", shown);
}

UNIT_TEST(test_container_net_joins_an_encoded_create_message)
{
	struct netsetup_container_net net;
	memset(&net, 0, sizeof(net));
	snprintf(net.veth.ifname, sizeof(net.veth.ifname), "eth0");
	memcpy(net.veth.mac, "\x02\x00\x00\x00\x00\x01", 6);
	net.veth.mtu = 1500;
	static const char msg[] = "{\"type\":\"create\",\"process\":{\"args\":[\"sh\"]}}";
	char *out = NULL;
	size_t len = 0;
	ASSERT_OK(netsetup_container_net_add_to_message(&net, msg, strlen(msg), &out, &len, &err));
	static const char want[] =
	    "{\"type\":\"create\",\"process\":{\"args\":[\"sh\"]},\"network\":{\"interfaces\":"
	    "[{\"name\":\"eth0\",\"mac\":\"02:00:00:00:00:01\",\"mtu\":1500,\"addresses\":[]}],"
	    "\"routes\":[]}}";
	bool same = strcmp(out, want) == 0 && len == strlen(want);
	free(out);
	UNIT_ASSERT(same);
	ASSERT_OK(netsetup_container_net_add_to_message(&net, "{ }\n", 4, &out, &len, &err));
	same = strncmp(out, "{ \"network\":{", 13) == 0 && out[len - 1] == '}';
	free(out);
	UNIT_ASSERT(same);
	UNIT_ASSERT_EQ(netsetup_container_net_add_to_message(&net, "[1]", 3, &out, &len, &err),
		       -EINVAL);
	ASSERT_MSG("network: the message is not a JSON object");
	UNIT_ASSERT(out == NULL);
}

UNIT_TEST(test_container_prepare_refuses_bad_paths_and_names)
{
	struct netsetup_container_net net;
	UNIT_ASSERT_EQ(netsetup_container_prepare("/nonexistent/netns", NULL, &net, &err), -ENOENT);
	ASSERT_MSG("netns /nonexistent/netns: No such file or directory");
	UNIT_ASSERT_EQ(net.tap_fd, -1);
	UNIT_ASSERT_EQ(netsetup_container_prepare("/proc/self/ns/uts", "tap0", &net, &err),
		       -EINVAL);
	ASSERT_MSG("netns /proc/self/ns/uts: is a uts namespace, not a network namespace");
	UNIT_ASSERT_EQ(netsetup_container_prepare("/etc/hostname", "tap0", &net, &err), -EINVAL);
	ASSERT_MSG_HAS("netns /etc/hostname: not a namespace file");
	UNIT_ASSERT_EQ(netsetup_container_prepare("", "tap0", &net, &err), -EINVAL);
	ASSERT_MSG("netns: no path given");
	UNIT_ASSERT_EQ(netsetup_container_prepare("/proc/self/ns/net", "tap%d", &net, &err),
		       -EINVAL);
	ASSERT_MSG("tap 'tap%d': not a valid interface name");
	UNIT_ASSERT_EQ(
	    netsetup_container_prepare("/proc/self/ns/net", "a-name-far-too-long", &net, &err),
	    -EINVAL);
	ASSERT_MSG_HAS("a name of 1 to 15 bytes is needed");
}

UNIT_TEST(test_container_cleanup_is_fine_when_the_namespace_is_gone)
{
	ASSERT_OK(netsetup_container_cleanup("/nonexistent/netns", NULL, &err));
	/* The empty file a namespace was bind-mounted on, after the unmount. */
	char path[] = "/tmp/petrel-netns-XXXXXX";
	int fd = mkstemp(path);
	UNIT_ASSERT(fd >= 0);
	close(fd);
	perr_clear(&err);
	int rc = netsetup_container_cleanup(path, "tap0", &err);
	unlink(path);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_EQ(netsetup_container_cleanup("/proc/self/ns/uts", NULL, &err), -EINVAL);
	ASSERT_MSG("netns /proc/self/ns/uts: is a uts namespace, not a network namespace");
}

/* ---- bridge mode and a new namespace ---- */

UNIT_TEST(test_bridge_tap_name_is_stable_and_short)
{
	char a[IFNAMSIZ], b[IFNAMSIZ], c[IFNAMSIZ];
	netsetup_bridge_tap_name("/run/petrel", "web", a);
	netsetup_bridge_tap_name("/run/petrel", "web", b);
	netsetup_bridge_tap_name("/run/petrel", "web2", c);
	UNIT_ASSERT_STREQ(a, b);
	UNIT_ASSERT(strcmp(a, c) != 0);
	UNIT_ASSERT_EQ(strlen(a), 14);
	UNIT_ASSERT(strncmp(a, "pt", 2) == 0);
	/* root and id are not simply concatenated */
	netsetup_bridge_tap_name("/run/petrelw", "eb", c);
	UNIT_ASSERT(strcmp(a, c) != 0);
}

static int port_attach(const char *want, const char *tap, const char *owner,
		       struct netsetup_container_net *net)
{
	struct netsetup_addr br, addr;
	if (netsetup_cidr_parse("10.77.1.1/24", &br, &err) < 0)
		return -EINVAL;
	if (want && netsetup_cidr_parse(want, &addr, &err) < 0)
		return -EINVAL;
	struct netsetup_bridge_port_req req = {.bridge = "pbr9",
					       .bridge_addr = &br,
					       .addr = want ? &addr : NULL,
					       .tap_name = tap,
					       .owner = owner};
	perr_clear(&err);
	return netsetup_bridge_port_attach(&req, net, &err);
}

static void body_bridge_port(void)
{
	struct netsetup_container_net n1, n2, n3;
	int rc = port_attach(NULL, "ptaa", "one", &n1);
	if (rc == -EOPNOTSUPP)
		UNIT_SKIP("this kernel has no bridge support");
	UNIT_ASSERT_EQ(rc, 0);
	char text[64];
	netsetup_addr_format(&n1.veth.addrs[0], true, text, sizeof(text));
	UNIT_ASSERT_STREQ(text, "10.77.1.2/24");
	UNIT_ASSERT(memcmp(n1.veth.mac, "\x02\x50\x0a\x4d\x01\x02", 6) == 0);
	UNIT_ASSERT_EQ(n1.veth.nroutes, 1);
	UNIT_ASSERT(n1.veth.routes[0].has_gateway);
	UNIT_ASSERT(is_port_of("ptaa", "pbr9"));
	ASSERT_OK(port_attach("10.77.1.10/24", "ptbb", "two", &n2));

	UNIT_ASSERT_EQ(port_attach("10.77.1.10/24", "ptcc", "three", &n3), -EADDRINUSE);
	ASSERT_MSG("bridge pbr9: address 10.77.1.10/24: in use by container two (tap ptbb)");
	UNIT_ASSERT_EQ(port_attach("10.77.2.10/24", "ptcc", "three", &n3), -EINVAL);
	ASSERT_MSG("bridge pbr9: address 10.77.2.10/24: not in the bridge's subnet 10.77.1.0/24");
	UNIT_ASSERT_EQ(port_attach("10.77.1.1/24", "ptcc", "three", &n3), -EADDRINUSE);
	UNIT_ASSERT_EQ(port_attach("10.77.1.255/24", "ptcc", "three", &n3), -EINVAL);
	UNIT_ASSERT_EQ(port_attach(NULL, "ptbb", "three", &n3), -EEXIST);
	UNIT_ASSERT_EQ(n3.tap_fd, -1);
	UNIT_ASSERT_EQ(netsetup_link_exists("ptcc", &err), 0);

	/* The VMM's end (its fd closing) frees the address for the next one. */
	close(n1.tap_fd);
	UNIT_ASSERT_EQ(netsetup_link_exists("ptaa", &err), 0);
	ASSERT_OK(port_attach(NULL, "ptcc", "three", &n3));
	netsetup_addr_format(&n3.veth.addrs[0], true, text, sizeof(text));
	UNIT_ASSERT_STREQ(text, "10.77.1.2/24");

	/* detach: only the owner's tap, and an absent one is fine */
	UNIT_ASSERT_EQ(netsetup_bridge_port_detach("ptbb", "three", &err), -EPERM);
	UNIT_ASSERT_EQ(netsetup_link_exists("ptbb", &err), 1);
	ASSERT_OK(netsetup_bridge_port_detach("ptbb", "two", &err));
	UNIT_ASSERT_EQ(netsetup_link_exists("ptbb", &err), 0);
	ASSERT_OK(netsetup_bridge_port_detach("ptbb", "two", &err));
	close(n2.tap_fd);
	close(n3.tap_fd);
	UNIT_ASSERT_EQ(netsetup_link_exists("pbr9", &err), 1);
}

UNIT_TEST(test_bridge_port_allocates_checks_and_frees_addresses)
{
	in_fresh_netns(body_bridge_port, true);
}

static void body_netns_new(void)
{
	struct stat before, inside, after;
	UNIT_ASSERT_EQ(stat("/proc/thread-self/ns/net", &before), 0);
	int tap = -1, ns = -1;
	ASSERT_OK(netsetup_netns_new_with_tap("tap0", &tap, &ns, &err));
	UNIT_ASSERT_EQ(stat("/proc/thread-self/ns/net", &after), 0);
	UNIT_ASSERT_EQ(before.st_ino, after.st_ino);
	UNIT_ASSERT_EQ(netsetup_link_exists("tap0", &err), 0);
	UNIT_ASSERT_EQ(fstat(ns, &inside), 0);
	UNIT_ASSERT(inside.st_ino != before.st_ino);
	struct netsetup_netns_saved saved;
	ASSERT_OK(netsetup_netns_enter_fd(ns, &saved, &err));
	int there = netsetup_link_exists("tap0", &err);
	ASSERT_OK(netsetup_netns_leave(&saved, &err));
	UNIT_ASSERT_EQ(there, 1);
	UNIT_ASSERT(fcntl(tap, F_GETFD) & FD_CLOEXEC);
	UNIT_ASSERT(fcntl(ns, F_GETFD) & FD_CLOEXEC);
	close(tap);
	close(ns);
}

UNIT_TEST(test_netns_new_with_tap_leaves_the_caller_home)
{
	in_fresh_netns(body_netns_new, true);
}

/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive in unit.h */
UNIT_MAIN("netsetup")
