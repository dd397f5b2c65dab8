/* The VMM's host cgroup, cgroup v2 (cgroup.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "runtime/cgroup.h"
#include "runtime/container.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

bool cgroup_v2_available(void)
{
	struct statfs sf;
	return statfs(CGROUP_ROOT, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

static bool cg_path_ok(const char *p)
{
	/* No way out of the hierarchy. */
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if ((n == 2 && !strncmp(s, "..", 2)))
			return false;
		if (!e)
			break;
		s = e + 1;
	}
	return true;
}

/* "a-b-c.slice" → "a.slice/a-b.slice/a-b-c.slice", as systemd nests slices. */
static int cg_expand_slice(const char *slice, char *out, size_t size, struct perr *err)
{
	size_t n = strlen(slice);
	if (n < 7 || strcmp(slice + n - 6, ".slice") != 0 || strchr(slice, '/')) {
		perr_setx(err, -EINVAL,
			  "linux.cgroupsPath: \"%.64s\" is not a systemd slice name "
			  "(NAME.slice)",
			  slice);
		return -EINVAL;
	}
	if (!strcmp(slice, "-.slice")) {
		out[0] = 0;
		return 0;
	}
	size_t base = n - 6, o = 0;
	out[0] = 0;
	for (size_t i = 0; i <= base; i++) {
		if (i < base && slice[i] != '-')
			continue;
		if (i == 0 || slice[i - 1] == '-') {
			perr_setx(err, -EINVAL, "linux.cgroupsPath: bad slice name \"%.64s\"",
				  slice);
			return -EINVAL;
		}
		int w = snprintf(out + o, size - o, "%s%.*s.slice", o ? "/" : "", (int)i, slice);
		if (w < 0 || (size_t)w >= size - o) {
			perr_setx(err, -ENAMETOOLONG, "linux.cgroupsPath: too long");
			return -ENAMETOOLONG;
		}
		o += (size_t)w;
	}
	return 0;
}

int cgroup_resolve(const char *cgroups_path, bool systemd, const char *id, char *out, size_t size,
		   struct perr *err)
{
	int n;
	if (!systemd || !strchr(cgroups_path, ':')) {
		if (!cg_path_ok(cgroups_path)) {
			perr_setx(err, -EINVAL, "linux.cgroupsPath: \"%.64s\": no \"..\"",
				  cgroups_path);
			return -EINVAL;
		}
		const char *rel = cgroups_path;
		while (*rel == '/')
			rel++;
		if (!*rel) {
			perr_setx(err, -EINVAL, "linux.cgroupsPath: \"%s\" is the root cgroup",
				  cgroups_path);
			return -EINVAL;
		}
		n = snprintf(out, size, "%s/%s", CGROUP_ROOT, rel);
	} else {
		/* slice:prefix:name */
		const char *c1 = strchr(cgroups_path, ':');
		const char *c2 = strchr(c1 + 1, ':');
		if (!c2 || strchr(c2 + 1, ':')) {
			perr_setx(err, -EINVAL,
				  "linux.cgroupsPath: \"%.64s\": expected "
				  "slice:prefix:name with --systemd-cgroup",
				  cgroups_path);
			return -EINVAL;
		}
		char slice[256], prefix[256], name[256], dir[PATH_MAX];
		snprintf(slice, sizeof(slice), "%.*s", (int)(c1 - cgroups_path), cgroups_path);
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		snprintf(name, sizeof(name), "%s", *(c2 + 1) ? c2 + 1 : id);
		if (strchr(prefix, '/') || strchr(name, '/') || !cg_path_ok(name)) {
			perr_setx(err, -EINVAL, "linux.cgroupsPath: \"%.64s\": bad name",
				  cgroups_path);
			return -EINVAL;
		}
		int rc = cg_expand_slice(slice[0] ? slice : "system.slice", dir, sizeof(dir), err);
		if (rc < 0)
			return rc;
		size_t nl = strlen(name);
		bool is_slice = nl > 6 && !strcmp(name + nl - 6, ".slice");
		/* A name that is a slice is the cgroup itself (systemd: a unit name). */
		if (is_slice)
			n = snprintf(out, size, "%s/%s%s%s", CGROUP_ROOT, dir, dir[0] ? "/" : "",
				     name);
		else
			n = snprintf(out, size, "%s/%s%s%s%s%s.scope", CGROUP_ROOT, dir,
				     dir[0] ? "/" : "", prefix, prefix[0] ? "-" : "", name);
	}
	if (n < 0 || (size_t)n >= size) {
		perr_setx(err, -ENAMETOOLONG, "linux.cgroupsPath: too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

void cgroup_limits_from_resources(const struct oci_resources *res, uint64_t guest_memory,
				  struct cgroup_limits *out)
{
	memset(out, 0, sizeof(*out));
	if (!res)
		return;
	if (res->memory.limit.set && res->memory.limit.value > 0)
		out->memory_max = guest_memory + CGROUP_VMM_OVERHEAD;
	if (res->cpu.quota.set) {
		out->has_cpu_quota = true;
		out->cpu_quota = res->cpu.quota.value > 0 ? res->cpu.quota.value : -1;
	}
	if (res->cpu.period.set && res->cpu.period.value)
		out->cpu_period = res->cpu.period.value;
	if (res->cpu.shares.set && res->cpu.shares.value) {
		/* runc's mapping of [2, 262144] onto [1, 10000]. */
		uint64_t s = res->cpu.shares.value;
		s = s < 2 ? 2 : s > 262144 ? 262144 : s;
		out->cpu_weight = 1 + ((s - 2) * 9999) / 262142;
	}
}

static int cg_write(const char *dir, const char *file, const char *value, struct perr *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return perr_setx(err, -ENAMETOOLONG, "%s/%s: path too long", dir, file);
	autoclose int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "%s", path);
	size_t len = strlen(value);
	ssize_t w = write(fd, value, len);
	if (w < 0)
		return perr_set(err, -errno, "write \"%s\" to %s", value, path);
	if ((size_t)w != len)
		return perr_setx(err, -EIO, "write \"%s\" to %s: short write", value, path);
	return 0;
}

/* Enables what the parent offers of cpu, memory and pids for its children. */
static void cg_enable_controllers(const char *dir)
{
	char path[PATH_MAX], have[512] = "";
	if (snprintf(path, sizeof(path), "%s/cgroup.controllers", dir) >= (int)sizeof(path))
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, have, sizeof(have) - 1);
	close(fd);
	if (n <= 0)
		return;
	have[n] = 0;
	static const char *const want[] = {"cpu", "memory", "pids"};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		char word[16], tok[512];
		snprintf(tok, sizeof(tok), " %s ", have);
		for (char *p = tok; *p; p++)
			if (*p == '\n')
				*p = ' ';
		snprintf(word, sizeof(word), " %s ", want[i]);
		if (!strstr(tok, word))
			continue;
		char value[16];
		snprintf(value, sizeof(value), "+%s", want[i]);
		struct perr ignored = {0};
		/* EBUSY when the parent has processes of its own (the "no internal
		 * processes" rule): the child then simply lacks the controller. */
		if (cg_write(dir, "cgroup.subtree_control", value, &ignored) < 0)
			log_debug("cgroup: %s", ignored.msg);
	}
}

int cgroup_create(const char *path, bool *made, struct perr *err)
{
	*made = false;
	size_t root_len = strlen(CGROUP_ROOT);
	if (strncmp(path, CGROUP_ROOT "/", root_len + 1) != 0)
		return perr_setx(err, -EINVAL, "%s is not under %s", path, CGROUP_ROOT);
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	/* Each level: enable the controllers in the parent, then make the child. */
	for (char *p = buf + root_len + 1;; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char saved = *p;
		*p = 0;
		char *slash = strrchr(buf, '/');
		*slash = 0;
		cg_enable_controllers(buf);
		*slash = '/';
		if (mkdir(buf, 0755) == 0) {
			if (!saved)
				*made = true;
		} else if (errno != EEXIST) {
			int e = -errno;
			return perr_set(err, e, "linux.cgroupsPath: mkdir %s", buf);
		}
		if (!saved)
			break;
		*p = saved;
	}
	return 0;
}

int cgroup_apply(const char *path, const struct cgroup_limits *l, struct perr *err)
{
	char v[64];
	int rc;
	if (l->memory_max) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)l->memory_max);
		if ((rc = cg_write(path, "memory.max", v, err)) < 0)
			return rc;
	}
	if (l->has_cpu_quota || l->cpu_period) {
		/* cpu.max takes "QUOTA [PERIOD]": a quota alone keeps the period. */
		char quota[24] = "max";
		if (l->has_cpu_quota && l->cpu_quota > 0)
			snprintf(quota, sizeof(quota), "%lld", (long long)l->cpu_quota);
		if (l->has_cpu_quota && l->cpu_period)
			snprintf(v, sizeof(v), "%s %llu", quota, (unsigned long long)l->cpu_period);
		else if (l->has_cpu_quota)
			snprintf(v, sizeof(v), "%s", quota);
		/* A period alone: the quota is read back and kept. */
		if (!l->has_cpu_quota) {
			char cur[64] = "max";
			char p[PATH_MAX];
			snprintf(p, sizeof(p), "%s/cpu.max", path);
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				ssize_t n = read(fd, cur, sizeof(cur) - 1);
				close(fd);
				cur[n > 0 ? n : 0] = 0;
				cur[strcspn(cur, " \n")] = 0;
			}
			snprintf(v, sizeof(v), "%s %llu", cur[0] ? cur : "max",
				 (unsigned long long)l->cpu_period);
		}
		if ((rc = cg_write(path, "cpu.max", v, err)) < 0)
			return rc;
	}
	if (l->cpu_weight) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)l->cpu_weight);
		if ((rc = cg_write(path, "cpu.weight", v, err)) < 0)
			return rc;
	}
	return 0;
}

int cgroup_add_pid(const char *path, int pid, struct perr *err)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", pid);
	return cg_write(path, "cgroup.procs", v, err);
}

int cgroup_remove(const char *path, struct perr *err)
{
	/* A SIGKILLed VMM leaves the cgroup a little after it is reaped. */
	for (int i = 0; i < 200; i++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return perr_set(err, -errno, "rmdir %s", path);
}

int cgroup_record_save(const char *state_dir, const char *path, uint64_t guest_memory, bool made,
		       struct perr *err)
{
	char file[PATH_MAX], text[PATH_MAX + 64];
	if (snprintf(file, sizeof(file), "%s/cgroup", state_dir) >= (int)sizeof(file))
		return perr_setx(err, -ENAMETOOLONG, "%s/cgroup: path too long", state_dir);
	int n = snprintf(text, sizeof(text), "%s\n%llu\n%d\n", path[0] ? path : "-",
			 (unsigned long long)guest_memory, made ? 1 : 0);
	if (n < 0 || (size_t)n >= sizeof(text))
		return perr_setx(err, -ENAMETOOLONG, "%s: too long", path);
	return file_write_atomic(file, text, (size_t)n, 0600, err);
}

int cgroup_record_load(const char *state_dir, char *path, size_t size, uint64_t *guest_memory,
		       bool *made)
{
	char file[PATH_MAX];
	if (snprintf(file, sizeof(file), "%s/cgroup", state_dir) >= (int)sizeof(file))
		return -ENAMETOOLONG;
	FILE *f = fopen(file, "re");
	if (!f)
		return -errno;
	char line[PATH_MAX];
	int rc = -EINVAL;
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		snprintf(path, size, "%s", strcmp(line, "-") ? line : "");
		if (fgets(line, sizeof(line), f)) {
			*guest_memory = strtoull(line, NULL, 10);
			*made = fgets(line, sizeof(line), f) && line[0] == '1';
			rc = !path[0] || path[0] == '/' ? 0 : -EINVAL;
		}
	}
	fclose(f);
	return rc;
}

int cgroup_setup_vmm(const struct oci_config *cfg, bool systemd, const char *id,
		     const char *state_dir, uint64_t guest_memory, int pid, struct perr *err)
{
	const char *cp = cfg->linux_.cgroups_path;
	/* The guest's size is recorded in any case: update needs it. */
	if (!cp || !*cp)
		return cgroup_record_save(state_dir, "", guest_memory, false, err);
	if (!cgroup_v2_available()) {
		log_warn("linux.cgroupsPath %s: %s is not a cgroup v2 hierarchy; the VMM stays "
			 "in petrel's cgroup",
			 cp, CGROUP_ROOT);
		return cgroup_record_save(state_dir, "", guest_memory, false, err);
	}
	char path[PATH_MAX];
	int rc = cgroup_resolve(cp, systemd, id, path, sizeof(path), err);
	if (rc < 0)
		return rc;
	bool made = false;
	if ((rc = cgroup_create(path, &made, err)) < 0)
		return rc;
	/* Recorded first, so that a failure below is undone by cgroup_teardown. */
	if ((rc = cgroup_record_save(state_dir, path, guest_memory, made, err)) < 0)
		goto fail;
	struct cgroup_limits l;
	cgroup_limits_from_resources(cfg->linux_.has_resources ? &cfg->linux_.resources : NULL,
				     guest_memory, &l);
	if ((rc = cgroup_apply(path, &l, err)) < 0 || (rc = cgroup_add_pid(path, pid, err)) < 0)
		goto fail;
	log_debug("cgroup: the VMM %d is in %s", pid, path);
	return 0;
fail:
	perr_wrap(err, "linux.cgroupsPath %s", cp);
	if (made)
		rmdir(path);
	return rc;
}

void cgroup_teardown(const char *state_dir)
{
	char path[PATH_MAX];
	uint64_t mem = 0;
	bool made = false;
	if (cgroup_record_load(state_dir, path, sizeof(path), &mem, &made) < 0 || !made)
		return;
	struct perr err = {0};
	if (cgroup_remove(path, &err) < 0)
		log_warn("cgroup: %s", err.msg);
}
