/*
 * Hot plug on the MicroVm machine (core/hotplug.h), in StratoVirt's and
 * QEMU's argument shapes:
 *
 *   blockdev-add  {"node-name", "file": {"driver": "file", "filename"[, "aio"]},
 *                  "read-only", "cache": {"direct"[, "no-flush"]}[, "driver": "raw"]}
 *   blockdev-del  {"node-name"}
 *   netdev_add    {"id", "ifname"[, "type": "tap"][, "vhost"][, "queues": 1]}
 *   netdev_del    {"id"}
 *   device_add    {"driver": "virtio-blk-mmio", "id"[, "drive"][, "serial"][, "addr"]}
 *                 {"driver": "virtio-net-mmio", "id"[, "netdev"][, "mac"][, "addr"]}
 *   device_del    {"id"}   -> DEVICE_DELETED once the guest let go (docs/vmm.md)
 *
 * Without "drive"/"netdev", the backend is the one named like the device
 * (StratoVirt's MicroVm convention). "addr" ("0x1" or 1) picks a slot among
 * those of the device's kind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cleanup.h"
#include "../core/hotplug.h"
#include "qmp-internal.h"

static struct hotplug *qmp_hotplug(struct qmp_session *s, struct qmp_error *err)
{
	struct hotplug *hp = s->be->hotplug ? s->be->hotplug(s->be_opaque) : NULL;
	if (!hp)
		qmp_error_set(err, QMP_ERROR_GENERIC, "Hot plug is not available on this machine");
	return hp;
}

/* Copies a string argument into a fixed buffer; too long is an error. */
static int qmp_hotplug_copy(char *dst, size_t size, yajl_val args, const char *name,
			    struct qmp_error *err)
{
	const char *v = qmp_arg_string(args, name);
	if (!v)
		v = "";
	if (strlen(v) >= size)
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "Parameter '%s' is too long (at most %zu characters)", name,
				     size - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* A nested object's keys, with its name in front of QEMU's wording. */
static int qmp_hotplug_check_object(const char *name, const struct qmp_arg *spec, yajl_val obj,
				    struct qmp_error *err)
{
	if (!obj)
		return 0;
	if (qmp_args_check(spec, false, obj, err) == 0)
		return 0;
	char desc[sizeof(err->desc)];
	snprintf(desc, sizeof(desc), "%s", err->desc);
	return qmp_error_set(err, QMP_ERROR_GENERIC, "%s: %s", name, desc);
}

static const struct qmp_arg qmp_blockdev_file_args[] = {
    {"driver", QMP_ARG_STRING, true},
    {"filename", QMP_ARG_STRING, true},
    {"aio", QMP_ARG_STRING, false},
    {NULL, 0, false},
};

static const struct qmp_arg qmp_blockdev_cache_args[] = {
    {"direct", QMP_ARG_BOOL, false},
    {"no-flush", QMP_ARG_BOOL, false},
    {NULL, 0, false},
};

static int qmp_cmd_blockdev_add(struct qmp_session *s, yajl_val args, yajl_gen out,
				struct qmp_error *err)
{
	struct hotplug *hp = qmp_hotplug(s, err);
	if (!hp)
		return -1;
	yajl_val file = qmp_arg_get(args, "file");
	yajl_val cache = qmp_arg_get(args, "cache");
	if (qmp_hotplug_check_object("file", qmp_blockdev_file_args, file, err) < 0 ||
	    qmp_hotplug_check_object("cache", qmp_blockdev_cache_args, cache, err) < 0)
		return -1;
	const char *driver = qmp_arg_string(args, "driver");
	if (driver && strcmp(driver, "raw") != 0 && strcmp(driver, "file") != 0)
		return qmp_error_set(
		    err, QMP_ERROR_GENERIC,
		    "Parameter 'driver' expects 'raw' or 'file' (raw images only)");
	const char *file_driver = qmp_arg_string(file, "driver");
	if (strcmp(file_driver, "file") != 0 && strcmp(file_driver, "host_device") != 0)
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "file: Parameter 'driver' expects 'file' or 'host_device'");
	const char *aio = qmp_arg_string(file, "aio");
	if (aio && strcmp(aio, "native") != 0 && strcmp(aio, "threads") != 0 &&
	    strcmp(aio, "io_uring") != 0)
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "file: Parameter 'aio' expects 'threads', 'native' or "
				     "'io_uring'");
	if (qmp_arg_bool(cache, "no-flush", false))
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "cache: 'no-flush' is not supported (flushes are honoured)");

	struct vmm_drive drive = {0};
	if (qmp_hotplug_copy(drive.id, sizeof(drive.id), args, "node-name", err) < 0 ||
	    qmp_hotplug_copy(drive.file, sizeof(drive.file), file, "filename", err) < 0)
		return -1;
	drive.readonly = qmp_arg_bool(args, "read-only", false);
	/* The -drive default (StratoVirt's): O_DIRECT unless cache.direct is false. */
	drive.direct = qmp_arg_bool(cache, "direct", true);
	struct perr perr = {0};
	if (hotplug_blockdev_add(hp, &drive, &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_blockdev_del(struct qmp_session *s, yajl_val args, yajl_gen out,
				struct qmp_error *err)
{
	struct hotplug *hp = qmp_hotplug(s, err);
	if (!hp)
		return -1;
	struct perr perr = {0};
	if (hotplug_blockdev_del(hp, qmp_arg_string(args, "node-name"), &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_netdev_add(struct qmp_session *s, yajl_val args, yajl_gen out,
			      struct qmp_error *err)
{
	struct hotplug *hp = qmp_hotplug(s, err);
	if (!hp)
		return -1;
	const char *type = qmp_arg_string(args, "type");
	if (type && strcmp(type, "tap") != 0)
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "Parameter 'type' expects 'tap' (the only netdev type)");
	if (qmp_arg_get(args, "fd") || qmp_arg_get(args, "fds"))
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "Parameters 'fd'/'fds' are not supported over QMP (no getfd); "
				     "use 'ifname'");
	if (!qmp_arg_string(args, "ifname"))
		return qmp_error_set(err, QMP_ERROR_GENERIC, "Parameter 'ifname' is missing");
	long long queues = qmp_arg_int(args, "queues", 1);
	if (queues != 1)
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "Parameter 'queues' expects 1 for a hot-plugged netdev");
	struct vmm_netdev netdev = {.vhostfd = -1, .queues = 1};
	if (qmp_hotplug_copy(netdev.id, sizeof(netdev.id), args, "id", err) < 0 ||
	    qmp_hotplug_copy(netdev.ifname, sizeof(netdev.ifname), args, "ifname", err) < 0)
		return -1;
	netdev.vhost = qmp_arg_bool(args, "vhost", false);
	struct perr perr = {0};
	if (hotplug_netdev_add(hp, &netdev, &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_netdev_del(struct qmp_session *s, yajl_val args, yajl_gen out,
			      struct qmp_error *err)
{
	struct hotplug *hp = qmp_hotplug(s, err);
	if (!hp)
		return -1;
	struct perr perr = {0};
	if (hotplug_netdev_del(hp, qmp_arg_string(args, "id"), &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

/* "52:54:00:12:34:56" */
static int qmp_parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		char *end;
		if (!((s[0] >= '0' && s[0] <= '9') || (s[0] >= 'a' && s[0] <= 'f') ||
		      (s[0] >= 'A' && s[0] <= 'F')))
			return -1;
		unsigned long v = strtoul(s, &end, 16);
		if (end - s != 2 || v > 0xff || *end != (i == 5 ? '\0' : ':'))
			return -1;
		mac[i] = (uint8_t)v;
		s = end + (i < 5);
	}
	return 0;
}

/* "addr": StratoVirt passes "0x1"; an integer is accepted too. */
static int qmp_parse_addr(yajl_val v, int *addr, struct qmp_error *err)
{
	long long n = -1;
	if (!v) {
		*addr = -1;
		return 0;
	}
	if (YAJL_IS_INTEGER(v)) {
		n = YAJL_GET_INTEGER(v);
	} else if (YAJL_IS_STRING(v)) {
		char *end;
		const char *str = YAJL_GET_STRING(v);
		n = strtoll(str, &end, 0);
		if (end == str || *end)
			n = -1;
	}
	if (n < 0 || n >= VMM_MICROVM_MAX_MMIO)
		return qmp_error_set(
		    err, QMP_ERROR_GENERIC,
		    "Parameter 'addr' expects a slot number in [0, %d], as \"0x1\" "
		    "or 1",
		    VMM_MICROVM_MAX_MMIO - 1);
	*addr = (int)n;
	return 0;
}

static int qmp_cmd_device_add(struct qmp_session *s, yajl_val args, yajl_gen out,
			      struct qmp_error *err)
{
	struct hotplug *hp = qmp_hotplug(s, err);
	if (!hp)
		return -1;
	struct hotplug_device req = {0};
	const char *driver = qmp_arg_string(args, "driver");
	if (strcmp(driver, "virtio-blk-mmio") == 0 || strcmp(driver, "virtio-blk-device") == 0)
		req.kind = HOTPLUG_BLK;
	else if (strcmp(driver, "virtio-net-mmio") == 0 || strcmp(driver, "virtio-net-device") == 0)
		req.kind = HOTPLUG_NET;
	else
		return qmp_error_set(err, QMP_ERROR_GENERIC,
				     "Parameter 'driver' expects a hot-pluggable device: "
				     "virtio-blk-mmio or virtio-net-mmio");
	/* A backend of the other kind is a mistake worth naming. */
	static const char *const blk_only[] = {"drive", "serial"};
	static const char *const net_only[] = {"netdev", "mac"};
	const char *const *wrong = req.kind == HOTPLUG_BLK ? net_only : blk_only;
	for (int i = 0; i < 2; i++)
		if (qmp_arg_get(args, wrong[i]))
			return qmp_error_set(err, QMP_ERROR_GENERIC, "%s has no property '%s' (%s)",
					     driver, wrong[i],
					     req.kind == HOTPLUG_BLK ? "a disk takes 'drive'"
								     : "a NIC takes 'netdev'");
	if (qmp_hotplug_copy(req.id, sizeof(req.id), args, "id", err) < 0 ||
	    qmp_hotplug_copy(req.backend, sizeof(req.backend), args,
			     req.kind == HOTPLUG_BLK ? "drive" : "netdev", err) < 0 ||
	    qmp_hotplug_copy(req.serial, sizeof(req.serial), args, "serial", err) < 0 ||
	    qmp_parse_addr(qmp_arg_get(args, "addr"), &req.addr, err) < 0)
		return -1;
	const char *mac = qmp_arg_string(args, "mac");
	if (mac) {
		if (qmp_parse_mac(mac, req.mac) < 0 || (req.mac[0] & 1))
			return qmp_error_set(err, QMP_ERROR_GENERIC,
					     "Parameter 'mac' expects a unicast MAC address such "
					     "as 52:54:00:12:34:56");
		req.mac_set = true;
	}
	struct perr perr = {0};
	if (hotplug_device_add(hp, &req, &perr) < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static int qmp_cmd_device_del(struct qmp_session *s, yajl_val args, yajl_gen out,
			      struct qmp_error *err)
{
	struct hotplug *hp = qmp_hotplug(s, err);
	if (!hp)
		return -1;
	struct perr perr = {0};
	int rc = hotplug_device_del(hp, qmp_arg_string(args, "id"), &perr);
	if (rc == -ENOENT) /* QEMU's class, which libvirt tests for */
		return qmp_error_set(err, QMP_ERROR_DEVICE_NOT_FOUND, "%s", perr.msg);
	if (rc < 0)
		return qmp_error_from_perr(err, &perr);
	qmp_gen_empty_object(out);
	return 0;
}

static const struct qmp_arg qmp_blockdev_add_args[] = {
    {"node-name", QMP_ARG_STRING, true}, {"file", QMP_ARG_OBJECT, true},
    {"read-only", QMP_ARG_BOOL, false},	 {"cache", QMP_ARG_OBJECT, false},
    {"driver", QMP_ARG_STRING, false},	 {NULL, 0, false},
};

static const struct qmp_arg qmp_blockdev_del_args[] = {
    {"node-name", QMP_ARG_STRING, true},
    {NULL, 0, false},
};

static const struct qmp_arg qmp_netdev_add_args[] = {
    {"id", QMP_ARG_STRING, true},    {"ifname", QMP_ARG_STRING, false},
    {"type", QMP_ARG_STRING, false}, {"vhost", QMP_ARG_BOOL, false},
    {"queues", QMP_ARG_INT, false},  {"fd", QMP_ARG_ANY, false},
    {"fds", QMP_ARG_ANY, false},     {NULL, 0, false},
};

static const struct qmp_arg qmp_id_args[] = {
    {"id", QMP_ARG_STRING, true},
    {NULL, 0, false},
};

static const struct qmp_arg qmp_device_add_args[] = {
    {"driver", QMP_ARG_STRING, true},  {"id", QMP_ARG_STRING, true},
    {"drive", QMP_ARG_STRING, false},  {"serial", QMP_ARG_STRING, false},
    {"netdev", QMP_ARG_STRING, false}, {"mac", QMP_ARG_STRING, false},
    {"addr", QMP_ARG_ANY, false},      {NULL, 0, false},
};

static const struct qmp_command qmp_hotplug_commands[] = {
    {.name = "blockdev-add", .run = qmp_cmd_blockdev_add, .args = qmp_blockdev_add_args},
    {.name = "blockdev-del", .run = qmp_cmd_blockdev_del, .args = qmp_blockdev_del_args},
    {.name = "netdev_add", .run = qmp_cmd_netdev_add, .args = qmp_netdev_add_args},
    {.name = "netdev_del", .run = qmp_cmd_netdev_del, .args = qmp_id_args},
    {.name = "device_add", .run = qmp_cmd_device_add, .args = qmp_device_add_args},
    {.name = "device_del", .run = qmp_cmd_device_del, .args = qmp_id_args},
};

const struct qmp_command_family qmp_family_hotplug = {
    qmp_hotplug_commands,
    ARRAY_SIZE(qmp_hotplug_commands),
};
