/* Flag and id handling shared by the commands (commands.h). */
#include <errno.h>
#include <stdlib.h>

#include "runtime/commands.h"
#include "runtime/flags.h"

#define CMD_MAX_POSITIONAL 4096

int cmd_parse(struct flag *flags, size_t n_flags, int argc, char **argv, bool interleave,
	      const char **id, char ***rest, size_t *n_rest, struct perr *err)
{
	static __thread char *pos[CMD_MAX_POSITIONAL];
	size_t n = 0;
	int rc = flags_parse(flags, n_flags, argc - 1, argv + 1, interleave, pos,
			     CMD_MAX_POSITIONAL, &n, err);
	if (rc < 0)
		return perr_wrap(err, "%s", argv[0]);
	if (n == 0)
		return perr_setx(err, -EINVAL, "%s: a container id is required", argv[0]);
	*id = pos[0];
	if (rest) {
		*rest = pos + 1;
		*n_rest = n - 1;
	} else if (n > 1) {
		return perr_setx(err, -EINVAL, "%s: unexpected argument \"%s\"", argv[0], pos[1]);
	}
	return 0;
}
