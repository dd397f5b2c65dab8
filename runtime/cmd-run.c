/* petrel run [create's flags] [--detach] [--keep] ID: create, start, and
 * (without --detach) wait and exit with the container's status. */
#include <errno.h>
#include <stdlib.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_run(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {
	    {.name = "bundle", .short_name = 'b', .has_value = true},
	    {.name = "pid-file", .has_value = true},
	    {.name = "console-socket", .has_value = true},
	    {.name = "no-pivot"},
	    {.name = "no-new-keyring"},
	    {.name = "preserve-fds", .has_value = true},
	    {.name = "detach", .short_name = 'd'},
	    {.name = "keep"},
	    {.name = "no-subreaper"},
	};
	const char *id;
	int rc = cmd_parse(flags, ARRAY_SIZE(flags), argc, argv, true, &id, NULL, NULL, err);
	if (rc < 0)
		return rc;
	if (flags[5].set && strtoul(flags[5].value, NULL, 10) != 0)
		return perr_setx(err, -ENOTSUP,
				 "--preserve-fds: not supported (the container runs in a VM)");
	bool detach = flags[6].set;
	struct petrel_create_opts o = {.root = cli->root,
				       .id = id,
				       .bundle = flags[0].value,
				       .pid_file = flags[1].value,
				       .console_socket = flags[2].value,
				       .systemd_cgroup = cli->systemd_cgroup,
				       .debug = cli->debug,
				       .foreground = !detach};
	pid_t vmm = -1;
	rc = petrel_create(&o, &vmm, err);
	if (rc < 0)
		return rc;
	rc = petrel_start(cli->root, id, err);
	if (rc < 0) {
		struct perr derr = {0};
		if (petrel_delete(cli->root, id, true, &derr) < 0)
			log_warn("%s", derr.msg);
		return rc;
	}
	if (detach)
		return 0;
	int status = petrel_wait_vmm(vmm);
	if (!flags[7].set) {
		struct perr derr = {0};
		if (petrel_delete(cli->root, id, true, &derr) < 0)
			log_warn("%s", derr.msg);
	}
	return status;
}
