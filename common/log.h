/*
 * Logging. The sink is per process (stderr, or a file set with -D / --log);
 * nothing VM-specific lives here, so two VMs in one process share it safely.
 * Guest-triggered messages go through LOG_GUEST_RATELIMITED so that a
 * misbehaving guest cannot flood the host.
 */
#ifndef PETREL_LOG_H
#define PETREL_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Opens path for appending (O_CLOEXEC); NULL restores stderr. Returns -errno. */
int log_set_file(const char *path);
void log_set_level(enum log_level level);
/* Prefix for every line, e.g. "petrel-vmm". */
void log_set_ident(const char *ident);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct log_ratelimit {
	uint64_t window_start_ns;
	unsigned count;
	unsigned suppressed;
};
/* True when a message may be printed: at most 10 per 5 s per limiter. */
bool log_ratelimit_ok(struct log_ratelimit *rl);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#define LOG_GUEST_RATELIMITED(rl, ...)                  \
	do {                                            \
		if (log_ratelimit_ok(rl))               \
			log_msg(LOG_WARN, __VA_ARGS__); \
	} while (0)

#endif
