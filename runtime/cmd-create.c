/* petrel create [--bundle B] [--pid-file P] [--console-socket S] [--no-pivot]
 * [--no-new-keyring] [--preserve-fds N] ID */
#include <errno.h>
#include <stdlib.h>

#include "common/cleanup.h"
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_create(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {
	    {.name = "bundle", .short_name = 'b', .has_value = true},
	    {.name = "pid-file", .has_value = true},
	    {.name = "console-socket", .has_value = true},
	    {.name = "no-pivot"},
	    {.name = "no-new-keyring"},
	    {.name = "preserve-fds", .has_value = true},
	};
	const char *id;
	int rc = cmd_parse(flags, ARRAY_SIZE(flags), argc, argv, true, &id, NULL, NULL, err);
	if (rc < 0)
		return rc;
	unsigned long preserve = 0;
	if (flags[5].set) {
		char *end;
		preserve = strtoul(flags[5].value, &end, 10);
		if (*end || end == flags[5].value)
			return perr_setx(err, -EINVAL, "--preserve-fds: \"%s\" is not a number",
					 flags[5].value);
	}
	struct petrel_create_opts o = {.root = cli->root,
				       .id = id,
				       .bundle = flags[0].value,
				       .pid_file = flags[1].value,
				       .console_socket = flags[2].value,
				       .preserve_fds = (unsigned)preserve,
				       .systemd_cgroup = cli->systemd_cgroup,
				       .debug = cli->debug};
	rc = petrel_create(&o, NULL, err);
	return rc < 0 ? rc : 0;
}
