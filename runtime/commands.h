/* The petrel CLI's commands: each parses its flags and makes one library call. */
#ifndef PETREL_RUNTIME_COMMANDS_H
#define PETREL_RUNTIME_COMMANDS_H

#include <stdbool.h>

#include "common/error.h"

/* The global flags (before the command). */
struct petrel_cli {
	const char *root; /* --root, default /run/petrel */
	const char *log;  /* --log FILE */
	bool log_json;	  /* --log-format json */
	bool debug;
	bool systemd_cgroup;
	const char *rootless;
};

/* Each returns the process exit status (>= 0), or a negative errno with err
 * set (main prints it and exits 1). argv[0] is the command name. */
typedef int (*petrel_cmd_fn)(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);

int cmd_create(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_run(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_start(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_state(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_kill(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_delete(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_exec(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_ps(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_list(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_pause(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_resume(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_features(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);
int cmd_update(const struct petrel_cli *cli, int argc, char **argv, struct perr *err);

/* Parses argv[1..] against flags; exactly n_ids positionals are the id(s)
 * (one), the rest is refused unless rest != NULL. Shared by the commands. */
struct flag;
int cmd_parse(struct flag *flags, size_t n_flags, int argc, char **argv, bool interleave,
	      const char **id, char ***rest, size_t *n_rest, struct perr *err);

#endif
