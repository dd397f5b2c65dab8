/*
 * petrel: an OCI runtime that runs each container in its own KVM microVM,
 * with runc's command line (docs/runtime.md):
 *
 *   petrel [--root DIR] [--log FILE] [--log-format text|json] [--debug]
 *          [--systemd-cgroup] [--rootless[=VALUE]] COMMAND [FLAGS] ID ...
 *
 * Exit status: 0, the container's or exec'd process's status for run and
 * exec, or 1 with the error on stderr (and in --log).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "oci/oci.h"
#include "runtime/commands.h"
#include "runtime/container.h"
#include "runtime/flags.h"

static const struct {
	const char *name;
	petrel_cmd_fn fn;
	const char *help;
} commands[] = {
    {"create", cmd_create, "create a container (its VM boots; the process waits for start)"},
    {"start", cmd_start, "run the created container's process"},
    {"run", cmd_run, "create, start, wait; exit with the container's status"},
    {"state", cmd_state, "print the container's state as JSON"},
    {"kill", cmd_kill, "send a signal to the container's process (--all: to every process)"},
    {"delete", cmd_delete, "remove a created or stopped container (--force: any)"},
    {"exec", cmd_exec, "run another process in the container"},
    {"ps", cmd_ps, "list the container's host processes"},
    {"list", cmd_list, "list containers"},
    {"pause", cmd_pause, "pause the container's VM"},
    {"resume", cmd_resume, "resume a paused container's VM"},
    {"features", cmd_features, "print the runtime-spec features petrel supports"},
    {"update", cmd_update, "change resources (--resources FILE|-)"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: petrel [--root DIR] [--log FILE] [--log-format text|json] [--debug] "
		     "COMMAND [FLAGS] ID\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\nSee docs/runtime.md.\n");
}

/* One line in --log: json {"level","msg","time"} as containerd reads it, or
 * logrus-style text. */
static void log_line(const struct petrel_cli *cli, const char *level, const char *msg)
{
	if (!cli->log)
		return;
	int fd = open(cli->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char ts[64] = "";
	oci_time_format(&now, ts, sizeof(ts));
	if (cli->log_json) {
		yajl_gen g = yajl_gen_alloc(NULL);
		if (g) {
			yajl_gen_map_open(g);
			yajl_gen_string(g, (const unsigned char *)"level", 5);
			yajl_gen_string(g, (const unsigned char *)level, strlen(level));
			yajl_gen_string(g, (const unsigned char *)"msg", 3);
			yajl_gen_string(g, (const unsigned char *)msg, strlen(msg));
			yajl_gen_string(g, (const unsigned char *)"time", 4);
			yajl_gen_string(g, (const unsigned char *)ts, strlen(ts));
			yajl_gen_map_close(g);
			const unsigned char *buf;
			size_t len;
			if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
				dprintf(fd, "%.*s\n", (int)len, buf);
			yajl_gen_free(g);
		}
	} else {
		dprintf(fd, "time=\"%s\" level=%s msg=\"", ts, level);
		for (const char *p = msg; *p; p++)
			dprintf(fd, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
		dprintf(fd, "\"\n");
	}
	close(fd);
}

/* Callers may start us with 0-2 closed: keep them taken so that no pipe or
 * socket of ours lands there and gets inherited as the VMM's stdio. */
static void ensure_stdio(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

int main(int argc, char **argv)
{
	ensure_stdio();
	log_set_ident("petrel");
	signal(SIGPIPE, SIG_IGN);
	struct flag flags[] = {
	    {.name = "root", .has_value = true},
	    {.name = "log", .has_value = true},
	    {.name = "log-format", .has_value = true},
	    {.name = "debug"},
	    {.name = "systemd-cgroup"},
	    {.name = "rootless", .optional_value = true},
	    {.name = "version", .short_name = 'v'},
	    {.name = "help", .short_name = 'h'},
	    {.name = "criu", .has_value = true},
	};
	struct perr err = {0};
	char *pos[1];
	size_t n_pos = 0;
	/* Global flags end at the command name: the first word that is neither a
	 * flag nor the value of one (--root DIR). */
	int end = 1;
	while (end < argc && argv[end][0] == '-') {
		const char *a = argv[end] + 1 + (argv[end][1] == '-');
		bool takes = !strchr(a, '=') && (!strcmp(a, "root") || !strcmp(a, "log") ||
						 !strcmp(a, "log-format") || !strcmp(a, "criu"));
		end += takes ? 2 : 1;
	}
	if (end > argc)
		end = argc;
	if (flags_parse(flags, ARRAY_SIZE(flags), end - 1, argv + 1, false, pos, 0, &n_pos, &err) <
	    0) {
		fprintf(stderr, "petrel: %s\n", err.msg);
		return 1;
	}
	struct petrel_cli cli = {.root = flags[0].set ? flags[0].value : CONTAINER_DEFAULT_ROOT,
				 .log = flags[1].value,
				 .debug = flags[3].set,
				 .systemd_cgroup = flags[4].set,
				 .rootless = flags[5].value};
	if (flags[2].set) {
		if (!strcmp(flags[2].value, "json"))
			cli.log_json = true;
		else if (strcmp(flags[2].value, "text") != 0) {
			fprintf(stderr, "petrel: --log-format \"%s\": allowed: text, json\n",
				flags[2].value);
			return 1;
		}
	}
	if (cli.debug)
		log_set_level(LOG_DEBUG);
	if (flags[6].set) {
		printf("petrel version %s\nspec: 1.1.0\n", PETREL_VERSION);
		return 0;
	}
	if (flags[7].set || end >= argc) {
		usage(flags[7].set ? stdout : stderr);
		return flags[7].set ? 0 : 1;
	}
	if (cli.root[0] != '/') {
		fprintf(stderr, "petrel: --root \"%s\" must be an absolute path\n", cli.root);
		return 1;
	}
	const char *name = argv[end];
	for (size_t c = 0; c < ARRAY_SIZE(commands); c++) {
		if (strcmp(commands[c].name, name) != 0)
			continue;
		int rc = commands[c].fn(&cli, argc - end, argv + end, &err);
		if (rc >= 0)
			return rc;
		fprintf(stderr, "petrel: %s\n", err.msg);
		log_line(&cli, "error", err.msg);
		return 1;
	}
	fprintf(stderr, "petrel: unknown command \"%s\" (petrel --help lists them)\n", name);
	log_line(&cli, "error", "unknown command");
	return 1;
}
