#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;
static enum log_level log_threshold = LOG_INFO;
static char log_ident[32] = "petrel";

int log_set_file(const char *path)
{
	int fd = STDERR_FILENO;
	if (path) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return -errno;
	}
	pthread_mutex_lock(&log_lock);
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_set_ident(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_threshold)
		return;
	char line[2048];
	size_t off = 0;
	if (log_fd != STDERR_FILENO) {
		/* A log file gets timestamps; the terminal gets the short form. */
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		off += (size_t)snprintf(line + off, sizeof(line) - off, ".%06ldZ %s ",
					ts.tv_nsec / 1000, level_names[level]);
	}
	off += (size_t)snprintf(line + off, sizeof(line) - off, "%s: ", log_ident);
	if (level == LOG_WARN && log_fd == STDERR_FILENO)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "warning: ");
	va_list ap;
	va_start(ap, fmt);
	if (off < sizeof(line))
		off += (size_t)vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	va_end(ap);
	if (off >= sizeof(line) - 1)
		off = sizeof(line) - 2;
	line[off++] = '\n';
	pthread_mutex_lock(&log_lock);
	ssize_t unused = write(log_fd, line, off);
	(void)unused;
	pthread_mutex_unlock(&log_lock);
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (now - rl->window_start_ns > 5000000000ull) {
		if (rl->suppressed)
			log_msg(LOG_WARN, "%u similar guest messages suppressed", rl->suppressed);
		rl->window_start_ns = now;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count < 10) {
		rl->count++;
		return true;
	}
	rl->suppressed++;
	return false;
}
