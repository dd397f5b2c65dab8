/*
 * petrel-netsetup: the manual network setup for petrel-vmm users, one
 * netsetup library call per subcommand (docs/network.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_tun.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "netsetup/netsetup.h"

#ifndef PETREL_VERSION
#define PETREL_VERSION "dev"
#endif

static const char usage_text[] =
    "Usage: petrel-netsetup COMMAND [ARGS]\n"
    "\n"
    "  bridge-add NAME [--addr CIDR]        create bridge NAME (idempotent), bring it up,\n"
    "                                       optionally give it an address (10.0.0.1/24)\n"
    "  bridge-del NAME                      delete bridge NAME (fine when absent)\n"
    "  tap-add NAME [--bridge BR] [--user USER] [--persist]\n"
    "                                       create persistent tap NAME, add it to BR, bring\n"
    "                                       it up; USER (name or uid) may open it\n"
    "  tap-del NAME                         delete tap NAME (fine when absent)\n"
    "  redirect-add --veth IF --tap IF      tc redirect both ways between IF and the tap\n"
    "  redirect-del --veth IF --tap IF      remove it (fine when absent)\n"
    "  show [--veth IF]                     print IF's MAC, MTU, addresses and routes as JSON\n"
    "                                       (default IF: the uplink)\n"
    "  container-prepare --netns PATH [--tap NAME] [-- CMD [ARGS]]\n"
    "                                       in a container's namespace: tap NAME (tap0),\n"
    "                                       redirected to and from the only veth; prints\n"
    "                                       the agent's network object. With CMD: runs it\n"
    "                                       with the tap's fd as fd 3 (-netdev tap,fd=3),\n"
    "                                       and the tap lives as long as that fd; without:\n"
    "                                       the tap is persistent (-netdev tap,ifname=NAME)\n"
    "  container-cleanup --netns PATH [--tap NAME]\n"
    "                                       remove it (fine when absent or the namespace\n"
    "                                       is gone)\n"
    "\n"
    "Every command also takes --netns PATH (/run/netns/NAME, /proc/PID/ns/net) to work\n"
    "inside that network namespace.\n";

struct cmd_args {
	const char *name;
	const char *netns;
	const char *addr;
	const char *bridge;
	const char *user;
	const char *veth;
	const char *tap;
	long owner;
	struct netsetup_addr cidr;
	char **cmd; /* container-prepare -- CMD ARGS: NULL-terminated, or NULL */
};

static int run_bridge_add(void *arg, struct perr *err)
{
	struct cmd_args *a = arg;
	return netsetup_bridge_ensure(a->name, a->addr ? &a->cidr : NULL, err);
}

static int run_bridge_del(void *arg, struct perr *err)
{
	return netsetup_bridge_delete(((struct cmd_args *)arg)->name, err);
}

static int run_tap_add(void *arg, struct perr *err)
{
	struct cmd_args *a = arg;
	return netsetup_tap_add_persistent(a->name, a->bridge, a->owner, err);
}

static int run_tap_del(void *arg, struct perr *err)
{
	return netsetup_tap_delete(((struct cmd_args *)arg)->name, err);
}

static int run_redirect_add(void *arg, struct perr *err)
{
	struct cmd_args *a = arg;
	return netsetup_tc_redirect_setup(a->veth, a->tap, err);
}

static int run_redirect_del(void *arg, struct perr *err)
{
	struct cmd_args *a = arg;
	return netsetup_tc_redirect_teardown(a->veth, a->tap, err);
}

#define PREPARE_TAP_FD 3

/* Execs cmd with the tap as fd PREPARE_TAP_FD, as the runtime hands it to
 * petrel-vmm; returns only on failure. */
static int exec_with_tap(char **cmd, int tap_fd, struct perr *err)
{
	if (tap_fd != PREPARE_TAP_FD) {
		/* dup2 leaves the new fd without FD_CLOEXEC: the command gets it. */
		if (dup2(tap_fd, PREPARE_TAP_FD) < 0)
			return perr_set(err, -errno, "dup2 tap fd");
	} else if (fcntl(tap_fd, F_SETFD, 0) < 0) {
		return perr_set(err, -errno, "tap fd");
	}
	char num[16];
	snprintf(num, sizeof(num), "%d", PREPARE_TAP_FD);
	setenv("PETREL_TAP_FD", num, 1);
	execvp(cmd[0], cmd);
	return perr_set(err, -errno, "exec %s", cmd[0]);
}

/* The library's tap lives as long as its fd (the runtime hands it to the
 * VMM). Without a command to hand it to, this command makes it persistent
 * for a VMM that opens it by name (`ip netns exec NS petrel-vmm -netdev
 * tap,id=n0,ifname=tap0`); with one, the tap goes with the command's fd. */
static int run_container_prepare(void *arg, struct perr *err)
{
	struct cmd_args *a = arg;
	struct netsetup_container_net net;
	int rc = netsetup_container_prepare(a->netns, a->tap, &net, err);
	if (rc < 0)
		return rc;
	char *json = NULL;
	if (!a->cmd && ioctl(net.tap_fd, TUNSETPERSIST, 1L) < 0)
		rc = perr_set(err, -errno, "tap %s: persist", net.tap_name);
	else
		rc = netsetup_container_net_to_json(&net, &json, err);
	if (rc == 0) {
		printf("%s\n", json);
		if (fflush(stdout) != 0)
			rc = perr_set(err, -errno, "stdout");
	}
	free(json);
	if (rc == 0 && a->cmd)
		rc = exec_with_tap(a->cmd, net.tap_fd, err);
	close(net.tap_fd);
	if (rc < 0) {
		struct perr ignored;
		netsetup_container_cleanup(a->netns, a->tap, &ignored);
	}
	return rc;
}

static int run_container_cleanup(void *arg, struct perr *err)
{
	struct cmd_args *a = arg;
	return netsetup_container_cleanup(a->netns, a->tap, err);
}

static int run_show(void *arg, struct perr *err)
{
	struct cmd_args *a = arg;
	struct netsetup_netns_info info;
	char uplink[IFNAMSIZ];
	if (!a->veth) {
		int rc = netsetup_netns_find_uplink(uplink, err);
		if (rc < 0)
			return rc;
		a->veth = uplink;
	}
	int rc = netsetup_netns_info_collect(a->veth, &info, err);
	if (rc < 0)
		return rc;
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return perr_set(err, -ENOMEM, "show");
	yajl_gen_config(g, yajl_gen_beautify, 1);
	rc = netsetup_netns_info_write_json(&info, g);
	const unsigned char *buf;
	size_t len;
	if (rc == 0 && yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
		fwrite(buf, 1, len, stdout);
	else
		rc = perr_setx(err, -EIO, "show: cannot write JSON");
	yajl_gen_free(g);
	return rc;
}

enum option_bit {
	OPT_ADDR = 1 << 0,
	OPT_BRIDGE = 1 << 1,
	OPT_USER = 1 << 2,
	OPT_PERSIST = 1 << 3,
	OPT_VETH = 1 << 4,
	OPT_TAP = 1 << 5,
	OPT_NETNS = 1 << 6,
};

struct command {
	const char *name;
	int (*run)(void *arg, struct perr *err);
	bool takes_name;
	bool needs_veth_and_tap;
	bool enters_netns; /* takes --netns itself (required) rather than being run inside it */
	unsigned options;  /* enum option_bit: what it accepts */
};

static const struct command commands[] = {
    {"bridge-add", run_bridge_add, true, false, false, OPT_ADDR | OPT_NETNS},
    {"bridge-del", run_bridge_del, true, false, false, OPT_NETNS},
    {"tap-add", run_tap_add, true, false, false, OPT_BRIDGE | OPT_USER | OPT_PERSIST | OPT_NETNS},
    {"tap-del", run_tap_del, true, false, false, OPT_NETNS},
    {"redirect-add", run_redirect_add, false, true, false, OPT_VETH | OPT_TAP | OPT_NETNS},
    {"redirect-del", run_redirect_del, false, true, false, OPT_VETH | OPT_TAP | OPT_NETNS},
    {"show", run_show, false, false, false, OPT_VETH | OPT_NETNS},
    {"container-prepare", run_container_prepare, false, false, true, OPT_TAP | OPT_NETNS},
    {"container-cleanup", run_container_cleanup, false, false, true, OPT_TAP | OPT_NETNS},
};

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("petrel-netsetup: ", stderr);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive */
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

static int parse_user(const char *user, long *owner)
{
	char *end;
	errno = 0;
	long v = strtol(user, &end, 10);
	if (user[0] >= '0' && user[0] <= '9' && *end == '\0' && errno == 0 && v >= 0 &&
	    v < (long)UINT32_MAX) {
		*owner = v;
		return 0;
	}
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return -ENOENT;
	*owner = (long)pw->pw_uid;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return fail("no command given; see 'petrel-netsetup --help'");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("petrel-netsetup %s\n", PETREL_VERSION);
		return 0;
	}
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd)
		return fail("unknown command '%s'; see 'petrel-netsetup --help'", argv[1]);

	/* .val is the option's bit; 'h' is --help. */
	static const struct option longopts[] = {
	    {"addr", required_argument, NULL, OPT_ADDR},
	    {"bridge", required_argument, NULL, OPT_BRIDGE},
	    {"user", required_argument, NULL, OPT_USER},
	    {"persist", no_argument, NULL, OPT_PERSIST},
	    {"veth", required_argument, NULL, OPT_VETH},
	    {"tap", required_argument, NULL, OPT_TAP},
	    {"netns", required_argument, NULL, OPT_NETNS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cmd_args a = {.owner = -1};
	int sub_argc = argc - 1;
	char **sub_argv = argv + 1;
	opterr = 0;
	int c, longidx;
	while ((c = getopt_long(sub_argc, sub_argv, ":h", longopts, &longidx)) != -1) {
		if (c == '?')
			return fail("%s: unknown option '%s'", cmd->name, sub_argv[optind - 1]);
		if (c == ':')
			return fail("%s: option '%s' needs a value", cmd->name,
				    sub_argv[optind - 1]);
		if (c == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!(cmd->options & (unsigned)c))
			return fail("%s: option --%s does not apply here", cmd->name,
				    longopts[longidx].name);
		switch (c) {
		case OPT_ADDR:
			a.addr = optarg;
			break;
		case OPT_BRIDGE:
			a.bridge = optarg;
			break;
		case OPT_USER:
			a.user = optarg;
			break;
		case OPT_PERSIST:
			break; /* taps made here are always persistent */
		case OPT_VETH:
			a.veth = optarg;
			break;
		case OPT_TAP:
			a.tap = optarg;
			break;
		case OPT_NETNS:
			a.netns = optarg;
			break;
		}
	}
	int positional = sub_argc - optind;
	/* getopt stops at "--": what follows is container-prepare's command. */
	if (cmd->run == run_container_prepare && optind > 1 &&
	    strcmp(sub_argv[optind - 1], "--") == 0) {
		if (positional < 1)
			return fail("%s: no command after --", cmd->name);
		a.cmd = sub_argv + optind;
		positional = 0;
	}
	if (cmd->takes_name) {
		if (positional < 1)
			return fail("%s: missing NAME", cmd->name);
		a.name = sub_argv[optind];
		positional--;
	}
	if (positional > 0)
		return fail("%s: unexpected argument '%s'", cmd->name,
			    sub_argv[sub_argc - positional]);
	if (cmd->needs_veth_and_tap && (!a.veth || !a.tap))
		return fail("%s: --veth IF and --tap IF are both needed", cmd->name);
	if (cmd->enters_netns && !a.netns)
		return fail("%s: --netns PATH is needed", cmd->name);

	struct perr err;
	perr_clear(&err);
	if (a.addr && netsetup_cidr_parse(a.addr, &a.cidr, &err) < 0)
		return fail("--addr: %s", err.msg);
	if (a.user && parse_user(a.user, &a.owner) < 0)
		return fail("--user: no user '%s'", a.user);

	int rc = cmd->enters_netns ? cmd->run(&a, &err)
				   : netsetup_netns_run(a.netns, cmd->run, &a, &err);
	if (rc < 0)
		return fail("%s", err.msg);
	return 0;
}
