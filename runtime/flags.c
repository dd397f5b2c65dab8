/* Flag parsing and signal names (flags.h). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "runtime/flags.h"

struct flag *flags_get(struct flag *flags, size_t n_flags, const char *name)
{
	for (size_t i = 0; i < n_flags; i++)
		if (!strcmp(flags[i].name, name))
			return &flags[i];
	return NULL;
}

static struct flag *flags_find(struct flag *flags, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
			return &flags[i];
		if (len == 1 && flags[i].short_name == name[0])
			return &flags[i];
	}
	return NULL;
}

int flags_parse(struct flag *flags, size_t n_flags, int argc, char **argv, bool interleave,
		char **pos, size_t max_pos, size_t *n_pos, struct perr *err)
{
	*n_pos = 0;
	bool flags_done = false;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (flags_done || a[0] != '-' || a[1] == 0) {
			if (*n_pos == max_pos)
				return perr_setx(err, -EINVAL, "unexpected argument \"%s\"", a);
			pos[(*n_pos)++] = a;
			if (!interleave)
				flags_done = true;
			continue;
		}
		if (!strcmp(a, "--")) {
			flags_done = true;
			continue;
		}
		const char *name = a + 1 + (a[1] == '-');
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		struct flag *f = flags_find(flags, n_flags, name, len);
		if (!f)
			return perr_setx(err, -EINVAL, "flag provided but not defined: -%.*s",
					 (int)len, name);
		const char *val = eq ? eq + 1 : NULL;
		if (f->optional_value) {
			f->set = true;
			f->value = val;
			continue;
		}
		if (!f->has_value) {
			if (val && (!strcmp(val, "false") || !strcmp(val, "0"))) {
				f->set = false;
				continue;
			}
			if (val && strcmp(val, "true") != 0 && strcmp(val, "1") != 0)
				return perr_setx(err, -EINVAL,
						 "invalid boolean value \"%s\" for flag --%s", val,
						 f->name);
			f->set = true;
			continue;
		}
		if (!val) {
			if (i + 1 >= argc)
				return perr_setx(err, -EINVAL, "flag needs an argument: --%s",
						 f->name);
			val = argv[++i];
		}
		f->set = true;
		f->value = val;
		if (f->repeat) {
			if (f->n_values == FLAG_MAX_VALUES)
				return perr_setx(err, -E2BIG, "--%s given more than %d times",
						 f->name, FLAG_MAX_VALUES);
			f->values[f->n_values++] = val;
		}
	}
	return 0;
}

static const struct {
	const char *name;
	int sig;
} signal_names[] = {
    {"HUP", SIGHUP},	   {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},	   {"ABRT", SIGABRT}, {"IOT", SIGIOT},	     {"BUS", SIGBUS},
    {"FPE", SIGFPE},	   {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},	   {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},	   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},	   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

int signal_parse(const char *s)
{
	if (!*s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9') {
		char *end;
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno || *end || v < 1 || v > 64)
			return -EINVAL;
		return (int)v;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
		if (!strcasecmp(signal_names[i].name, s))
			return signal_names[i].sig;
	return -EINVAL;
}

const char *signal_name(int sig)
{
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	return NULL;
}
