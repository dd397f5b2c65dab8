/* The state directory, state.json and the VMM's liveness (container.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/container.h"
#include "runtime/qmp-client.h"

int container_id_validate(const char *id, struct perr *err)
{
	size_t n = strlen(id);
	if (n == 0)
		return perr_setx(err, -EINVAL, "invalid container id: empty");
	if (n > CONTAINER_ID_MAX)
		return perr_setx(err, -EINVAL, "invalid container id: longer than %d bytes",
				 CONTAINER_ID_MAX);
	if (id[0] == '.')
		return perr_setx(err, -EINVAL, "invalid container id \"%s\": starts with a dot",
				 id);
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '+' || c == '.' || c == '-';
		if (!ok)
			return perr_setx(err, -EINVAL,
					 "invalid container id \"%.64s\": only A-Z a-z 0-9 _ + . - "
					 "are allowed",
					 id);
	}
	return 0;
}

int container_path(const char *root, const char *id, const char *name, char *buf, size_t size)
{
	int n = name ? snprintf(buf, size, "%s/%s/%s", root, id, name)
		     : snprintf(buf, size, "%s/%s", root, id);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int read_file(const char *path, char **out, size_t *len)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 4096, n = 0;
	autofree char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > OCI_JSON_MAX_SIZE)
				return -EFBIG;
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	*out = steal_ptr(buf);
	return 0;
}

int container_load(const char *root, const char *id, struct oci_state **out, struct perr *err)
{
	char path[PATH_MAX];
	int rc = container_id_validate(id, err);
	if (rc < 0)
		return rc;
	if (container_path(root, id, "state.json", path, sizeof(path)) < 0)
		return perr_setx(err, -ENAMETOOLONG, "%s/%s: path too long", root, id);
	autofree char *json = NULL;
	size_t len = 0;
	rc = read_file(path, &json, &len);
	if (rc == -ENOENT || rc == -ENOTDIR)
		return perr_setx(err, -ENOENT, CONTAINER_ERR_NOT_EXIST);
	if (rc < 0)
		return perr_set(err, rc, "%s", path);
	rc = oci_state_parse(json, len, out, err);
	if (rc < 0)
		return perr_wrap(err, "%s", path);
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
		      struct perr *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return perr_setx(err, -ENAMETOOLONG, "%s: path too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return perr_set(err, -errno, "create %s", tmp);
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = -errno;
			close(fd);
			unlink(tmp);
			return perr_set(err, e, "write %s", tmp);
		}
		p += w;
		left -= (size_t)w;
	}
	if (close(fd) < 0) {
		int e = -errno;
		unlink(tmp);
		return perr_set(err, e, "close %s", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return perr_set(err, e, "rename %s to %s", tmp, path);
	}
	return 0;
}

int container_save(const char *root, const struct oci_state *st, struct perr *err)
{
	char path[PATH_MAX];
	if (container_path(root, st->id, "state.json", path, sizeof(path)) < 0)
		return perr_setx(err, -ENAMETOOLONG, "%s/%s: path too long", root, st->id);
	autofree char *json = NULL;
	size_t len = 0;
	int rc = oci_state_to_json_stored(st, &json, &len, err);
	if (rc < 0)
		return rc;
	return file_write_atomic(path, json, len, 0600, err);
}

int proc_start_time(int pid, uint64_t *start, char *state_letter)
{
	char path[64], buf[1024];
	if (pid <= 0)
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* comm (field 2) may hold spaces and parentheses: fields resume after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	if (state_letter)
		*state_letter = *p;
	/* p is field 3; the start time is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno || end == p)
		return -EIO;
	*start = v;
	return 0;
}

bool container_vmm_alive(const struct oci_state *st)
{
	int pid = st->has_petrel && st->petrel.vmm_pid ? st->petrel.vmm_pid : st->pid;
	uint64_t start = 0;
	char letter = 0;
	if (pid <= 0 || proc_start_time(pid, &start, &letter) < 0)
		return false;
	if (letter == 'Z' || letter == 'X')
		return false;
	if (st->has_petrel && st->petrel.vmm_start_time && start != st->petrel.vmm_start_time)
		return false;
	return true;
}

enum oci_status container_status(const char *root, const struct oci_state *st)
{
	if (st->status == OCI_STATUS_STOPPED || st->status == OCI_STATUS_CREATING)
		return st->status;
	if (!container_vmm_alive(st))
		return OCI_STATUS_STOPPED;
	char qmp[PATH_MAX];
	bool paused = false;
	if (container_path(root, st->id, "qmp.sock", qmp, sizeof(qmp)) == 0 &&
	    qmp_client_query_paused(qmp, &paused, NULL) == 0 && paused)
		return OCI_STATUS_PAUSED;
	return st->status == OCI_STATUS_PAUSED ? OCI_STATUS_RUNNING : st->status;
}

int pid_file_write(const char *path, int pid, struct perr *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", pid);
	int rc = file_write_atomic(path, buf, (size_t)n, 0644, err);
	if (rc < 0)
		return perr_wrap(err, "--pid-file");
	return 0;
}

static int remove_at(int parent, const char *name, struct perr *err)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : perr_set(err, -errno, "stat %s", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
			return perr_set(err, -errno, "unlink %s", name);
		return 0;
	}
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "open %s", name);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return perr_set(err, -errno, "opendir %s", name);
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = remove_at(dirfd(d), de->d_name, err);
	}
	closedir(d);
	if (rc < 0)
		return rc;
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return perr_set(err, -errno, "rmdir %s", name);
	return 0;
}

int remove_tree(const char *path, struct perr *err)
{
	return remove_at(AT_FDCWD, path, err);
}

static int lock_path(const char *root, const char *id, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/.locks/%s", root, id);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int mkdir_if_missing(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int container_lock(const char *root, const char *id, int *fd_out, struct perr *err)
{
	char path[PATH_MAX], dir[PATH_MAX];
	int rc = container_id_validate(id, err);
	if (rc < 0)
		return rc;
	if (lock_path(root, id, path, sizeof(path)) < 0 ||
	    snprintf(dir, sizeof(dir), "%s/.locks", root) >= (int)sizeof(dir))
		return perr_setx(err, -ENAMETOOLONG, "%s/.locks/%s: path too long", root, id);
	/* --root's parents are the caller's business; --root itself is ours. */
	if ((rc = mkdir_if_missing(root, 0700)) < 0 || (rc = mkdir_if_missing(dir, 0700)) < 0)
		return perr_set(err, rc, "--root %s", root);
	for (;;) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && errno == ENOENT) {
			/* The last delete removed .locks in between. */
			if ((rc = mkdir_if_missing(dir, 0700)) < 0)
				return perr_set(err, rc, "--root %s", root);
			continue;
		}
		if (fd < 0)
			return perr_set(err, -errno, "lock %s", path);
		int r;
		while ((r = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
			;
		if (r < 0) {
			rc = -errno;
			close(fd);
			return perr_set(err, rc, "lock %s", path);
		}
		/* A delete may have removed the file while we waited: that lock
		 * guards nothing any more. */
		struct stat held, now;
		if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_ino == now.st_ino &&
		    held.st_dev == now.st_dev) {
			*fd_out = fd;
			return 0;
		}
		close(fd);
	}
}

int container_lock_existing(const char *root, const char *id, int *fd_out, struct perr *err)
{
	char dir[PATH_MAX];
	int rc = container_id_validate(id, err);
	if (rc < 0)
		return rc;
	if (container_path(root, id, NULL, dir, sizeof(dir)) < 0)
		return perr_setx(err, -ENAMETOOLONG, "%s/%s: path too long", root, id);
	if (access(dir, F_OK) < 0)
		return perr_setx(err, -ENOENT, CONTAINER_ERR_NOT_EXIST);
	int fd = -1;
	if ((rc = container_lock(root, id, &fd, err)) < 0)
		return rc;
	if (access(dir, F_OK) < 0) {
		container_lock_remove(root, id);
		close(fd);
		return perr_setx(err, -ENOENT, CONTAINER_ERR_NOT_EXIST);
	}
	*fd_out = fd;
	return 0;
}

void container_lock_remove(const char *root, const char *id)
{
	char path[PATH_MAX], dir[PATH_MAX];
	if (lock_path(root, id, path, sizeof(path)) == 0)
		unlink(path);
	/* --root shows only containers once the last one is gone; a locker that
	 * loses the race makes it again. */
	if (snprintf(dir, sizeof(dir), "%s/.locks", root) < (int)sizeof(dir))
		rmdir(dir);
}

static int exec_reg_path(const char *root, const char *id, int pid, char *buf, size_t size)
{
	int n = pid ? snprintf(buf, size, "%s/%s/execs/%d", root, id, pid)
		    : snprintf(buf, size, "%s/%s/execs", root, id);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int container_exec_register(const char *root, const char *id, int pid, struct perr *err)
{
	char dir[PATH_MAX], path[PATH_MAX], buf[32];
	uint64_t start = 0;
	if (exec_reg_path(root, id, 0, dir, sizeof(dir)) < 0 ||
	    exec_reg_path(root, id, pid, path, sizeof(path)) < 0)
		return perr_setx(err, -ENAMETOOLONG, "%s/%s/execs: path too long", root, id);
	int rc = proc_start_time(pid, &start, NULL);
	if (rc < 0)
		return perr_set(err, rc, "/proc/%d/stat", pid);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return perr_set(err, -errno, "%s", dir);
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)start);
	return file_write_atomic(path, buf, (size_t)n, 0600, err);
}

void container_exec_unregister(const char *root, const char *id, int pid)
{
	char path[PATH_MAX];
	if (exec_reg_path(root, id, pid, path, sizeof(path)) == 0)
		unlink(path);
}

static int pids_add(int **pids, size_t *n, size_t *cap, int pid)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		int *np = realloc(*pids, nc * sizeof(int));
		if (!np)
			return -ENOMEM;
		*pids = np;
		*cap = nc;
	}
	(*pids)[(*n)++] = pid;
	return 0;
}

static int pid_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int container_host_pids(const char *root, const struct oci_state *st, int **pids, size_t *n,
			struct perr *err)
{
	*pids = NULL;
	*n = 0;
	size_t cap = 0;
	if (!container_vmm_alive(st))
		return 0; /* exec'd processes end with the VM */
	int vmm = st->has_petrel && st->petrel.vmm_pid ? st->petrel.vmm_pid : st->pid;
	if (pids_add(pids, n, &cap, vmm) < 0)
		return perr_set(err, -ENOMEM, "ps");
	char dir[PATH_MAX];
	if (exec_reg_path(root, st->id, 0, dir, sizeof(dir)) < 0)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t first_exec = *n;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		errno = 0;
		long pid = strtol(de->d_name, &end, 10);
		if (errno || *end || end == de->d_name || pid <= 0 || pid > INT_MAX)
			continue;
		char path[PATH_MAX], text[32];
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, text, sizeof(text) - 1);
		close(fd);
		if (r <= 0)
			continue;
		text[r] = 0;
		uint64_t want = strtoull(text, NULL, 10), start = 0;
		char letter = 0;
		/* A pid that ended (or was reused) without unregistering is not listed. */
		if (proc_start_time((int)pid, &start, &letter) < 0 || start != want ||
		    letter == 'Z' || letter == 'X')
			continue;
		if (pids_add(pids, n, &cap, (int)pid) < 0) {
			closedir(d);
			return perr_set(err, -ENOMEM, "ps");
		}
	}
	closedir(d);
	qsort(*pids + first_exec, *n - first_exec, sizeof(int), pid_cmp);
	return 0;
}
