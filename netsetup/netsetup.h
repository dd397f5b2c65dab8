/*
 * netsetup: host networking for petrel's microVMs, over rtnetlink (libnl-3,
 * libnl-route-3) and /dev/net/tun. Nothing here runs ip, brctl or tc.
 *
 * Two models (docs/network.md):
 *  - bridge: a tap per VM, enslaved to a bridge on the host;
 *  - tc redirect ("tcfilter", for podman/CNI namespaces): inside the
 *    container's network namespace a tap is paired with the veth that is
 *    already there, with an ingress qdisc and a u32 match-all filter with a
 *    mirred egress redirect on each, so every frame that arrives on one leaves
 *    on the other. The guest's eth0 takes over the veth's MAC, addresses,
 *    routes and MTU (struct netsetup_netns_info).
 *
 * Every function works in the calling thread's current network namespace
 * unless it takes a netns path. Each returns 0 or a negative errno and fills
 * *err (common/error.h); a function that fails midway removes what it made.
 */
#ifndef PETREL_NETSETUP_H
#define PETREL_NETSETUP_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <yajl/yajl_gen.h>

#include "common/error.h"

#define NETSETUP_DEFAULT_BRIDGE "petrel0"

/* An IPv4 or IPv6 address with its prefix length ("10.0.0.1/24"). */
struct netsetup_addr {
	int family;	   /* AF_INET or AF_INET6 */
	uint8_t bytes[16]; /* network order; the first 4 for AF_INET */
	unsigned prefixlen;
};

/* Parses "A.B.C.D/N" or "X:X::X/N"; the prefix is required. No side effects. */
int netsetup_cidr_parse(const char *text, struct netsetup_addr *out, struct perr *err);
/* "10.0.0.1/24"; with_prefix false gives "10.0.0.1". Returns -ENOSPC when buf is short. */
int netsetup_addr_format(const struct netsetup_addr *addr, bool with_prefix, char *buf, size_t len);

/* ---- links ---- */

/* Creates bridge `name` unless it exists, brings it up and, when addr is not
 * NULL, gives it that address (an address it already has is fine). A link
 * of that name that is not a bridge is an error naming it. */
int netsetup_bridge_ensure(const char *name, const struct netsetup_addr *addr, struct perr *err);
/* Deletes bridge `name`; 0 when absent; refuses a link that is not a bridge. */
int netsetup_bridge_delete(const char *name, struct perr *err);

int netsetup_link_up(const char *ifname, struct perr *err);
int netsetup_link_set_master(const char *ifname, const char *bridge, struct perr *err);
int netsetup_link_set_mtu(const char *ifname, unsigned mtu, struct perr *err);
/* 0 when the link does not exist. */
int netsetup_link_delete(const char *ifname, struct perr *err);
/* 1 when it exists, 0 when not, negative on error. */
int netsetup_link_exists(const char *ifname, struct perr *err);

/* ---- taps ---- */

enum netsetup_tap_flags {
	NETSETUP_TAP_VNET_HDR = 1 << 0,	   /* IFF_VNET_HDR, header size 12 (virtio 1.2 5.1.6) */
	NETSETUP_TAP_MULTI_QUEUE = 1 << 1, /* IFF_MULTI_QUEUE */
	NETSETUP_TAP_PERSIST = 1 << 2,	   /* TUNSETPERSIST: outlives the fd (manual setup) */
};

/* Creates tap `name` (a kernel template such as "tap%d" is allowed) and returns
 * its queue fd (O_CLOEXEC) in *fd_out and the kernel's name in name_out.
 * The fd is what the VMM gets (`-netdev tap,fd=N`), so the VMM needs no
 * CAP_NET_ADMIN. A link that already has that name is an error: no existing
 * device is ever attached to. Without NETSETUP_TAP_PERSIST the tap goes away
 * when the last fd to it is closed. */
int netsetup_tap_create(const char *name, unsigned flags, int *fd_out, char name_out[IFNAMSIZ],
			struct perr *err);
/* TUNSETOWNER: lets `uid` attach to a persistent tap (QEMU/petrel-vmm ifname=). */
int netsetup_tap_set_owner(int fd, const char *name, uid_t uid, struct perr *err);
/* For manual setup (petrel-netsetup tap-add): a persistent tap, owned by uid
 * `owner` unless it is -1, a port of `bridge` unless it is NULL, up. */
int netsetup_tap_add_persistent(const char *name, const char *bridge, long owner, struct perr *err);
/* Deletes tap `name`; 0 when absent; refuses a link that is not a tun/tap. */
int netsetup_tap_delete(const char *name, struct perr *err);

/* ---- network namespaces ---- */

/* Opens `path` (O_CLOEXEC) and checks it is a network namespace: a missing
 * path, a file that is not a namespace and a namespace of another type each
 * get their own message. */
int netsetup_netns_open(const char *path, int *fd_out, struct perr *err);

/* The namespace to return to. Kept by the caller, so that two VMs in one
 * process never share state. */
struct netsetup_netns_saved {
	int orig_fd;
};

/* Moves the calling thread into the network namespace at `path`. On success
 * the caller must call netsetup_netns_leave(saved) on every path. */
int netsetup_netns_enter(const char *path, struct netsetup_netns_saved *saved, struct perr *err);
/* The same with an open namespace fd (netsetup_netns_new_with_tap's). */
int netsetup_netns_enter_fd(int ns_fd, struct netsetup_netns_saved *saved, struct perr *err);
/* Returns to the namespace saved by netsetup_netns_enter and closes it. */
int netsetup_netns_leave(struct netsetup_netns_saved *saved, struct perr *err);

/* Runs fn(arg, err) inside the namespace at `path` (in the current one when
 * path is NULL) and always comes back. Returns fn's result, or the error of
 * entering or leaving. */
int netsetup_netns_run(const char *path, int (*fn)(void *arg, struct perr *err), void *arg,
		       struct perr *err);

/* A new network namespace holding nothing but lo (down) and tap `tap_name`
 * (vnet header, not persistent, up), for a container whose config.json asks
 * for a network namespace without a path: the VM gets a NIC that reaches
 * nothing, as runc gives a container an empty namespace. Nothing is named or
 * mounted: the tap's fd (and the VMM, when started in *ns_fd) holds the
 * namespace, which goes away with them, also after kill -9 of the VMM.
 * Returns the tap's fd and the namespace's (both O_CLOEXEC); the calling
 * thread is back in its own namespace on every path. */
int netsetup_netns_new_with_tap(const char *tap_name, int *tap_fd, int *ns_fd, struct perr *err);

/* ---- tc redirect (current namespace) ---- */

/* Adds an ingress qdisc (ffff:) on `veth` and on `tap` unless present, and on
 * each a u32 match-all filter (prio NETSETUP_TC_PRIO) whose mirred action
 * redirects to the other's egress. On failure nothing it made is left. */
int netsetup_tc_redirect_setup(const char *veth, const char *tap, struct perr *err);
/* Removes those filters, and each ingress qdisc that is left without
 * filters. Idempotent: absent links, qdiscs or filters are fine. */
int netsetup_tc_redirect_teardown(const char *veth, const char *tap, struct perr *err);
/* 1 when `ifname` carries petrel's redirect filter, 0 when not. */
int netsetup_tc_redirect_present(const char *ifname, struct perr *err);

#define NETSETUP_TC_PRIO 0xc0de

/* ---- what the guest's eth0 must look like ---- */

#define NETSETUP_MAX_ADDRS  16
#define NETSETUP_MAX_ROUTES 32

struct netsetup_route {
	int family;		  /* AF_INET or AF_INET6 */
	struct netsetup_addr dst; /* prefixlen 0: the default route */
	bool has_gateway;
	struct netsetup_addr gateway; /* prefixlen unused */
	uint32_t metric;	      /* 0 when the kernel reported none */
};

struct netsetup_netns_info {
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	unsigned mtu;
	size_t naddrs;
	struct netsetup_addr addrs[NETSETUP_MAX_ADDRS];
	size_t nroutes;
	struct netsetup_route routes[NETSETUP_MAX_ROUTES];
};

/* Reads `ifname`'s MAC, MTU, global addresses and the main table's routes
 * through it (not the prefix routes the kernel makes for each address: the
 * guest's kernel makes those too). Current namespace. */
int netsetup_netns_info_collect(const char *ifname, struct netsetup_netns_info *info,
				struct perr *err);
/* The name of the namespace's uplink: the link of the first default route,
 * else the only link that is neither loopback nor a tun/tap. */
int netsetup_netns_find_uplink(char name_out[IFNAMSIZ], struct perr *err);

/* Writes info as one JSON object (docs/network.md, "The info object"). */
int netsetup_netns_info_write_json(const struct netsetup_netns_info *info, yajl_gen gen);
/* Malloc'ed, NUL-terminated JSON text of info, for the agent's configuration. */
int netsetup_netns_info_to_json(const struct netsetup_netns_info *info, char **out,
				struct perr *err);
/* The inverse, with the JSON path of a bad value in the error. */
int netsetup_netns_info_from_json(const char *json, struct netsetup_netns_info *info,
				  struct perr *err);

/* ---- the runtime's two calls ---- */

/* In the network namespace at `netns_path`: collects `veth`'s info (veth NULL
 * means the uplink), creates tap `tap_name` (vnet header, not persistent, the
 * veth's MTU), brings it up and sets up the redirect. Returns the tap's fd.
 * On failure nothing is left behind and the thread is back in its namespace. */
int netsetup_netns_attach(const char *netns_path, const char *veth, const char *tap_name,
			  int *tap_fd, char tap_name_out[IFNAMSIZ],
			  struct netsetup_netns_info *info, struct perr *err);
/* Undoes netsetup_netns_attach: the redirect, then the tap if it is still
 * there. Idempotent; a namespace that no longer exists is fine. */
int netsetup_netns_detach(const char *netns_path, const char *veth, const char *tap_name,
			  struct perr *err);

/* Bridge mode, for a container without a network namespace of its own:
 * ensures `bridge` (with bridge_addr when not NULL), creates tap `tap_name`
 * (vnet header, not persistent) as a port of it, up, and returns its fd.
 * The tap and its bridge port go away with the last fd, even after kill -9
 * of the VMM; the bridge, shared by every VM, stays. */
int netsetup_bridge_attach(const char *bridge, const struct netsetup_addr *bridge_addr,
			   const char *tap_name, int *tap_fd, char tap_name_out[IFNAMSIZ],
			   struct perr *err);

/* ---- bridge mode: a container without a network namespace ---- */

/* What a container's port on a bridge is made from. */
struct netsetup_bridge_port_req {
	const char *bridge;			 /* NULL: NETSETUP_DEFAULT_BRIDGE */
	const struct netsetup_addr *bridge_addr; /* the bridge's IPv4 address and subnet */
	const struct netsetup_addr *addr;	 /* the guest's; NULL: the lowest free one */
	const char *tap_name;			 /* exact (netsetup_bridge_tap_name) */
	const char *owner;			 /* the container's id, for the tap's alias */
};

struct netsetup_container_net;

/* Ensures the bridge (up, with bridge_addr), picks or checks the guest's
 * address, and creates the tap (vnet header, not persistent) as a port of
 * the bridge, up, with the alias "petrel ADDR/PREFIX OWNER". The aliases
 * of the bridge's ports are the allocation table: an address is in use
 * while its tap exists, so it is free again when the VMM dies, even by
 * kill -9. Concurrent attaches serialize on an abstract unix socket.
 * out->veth gets what the guest's eth0 must look like: name eth0, MAC
 * 02:50:A:B:C:D from the IPv4 address A.B.C.D, the bridge's MTU, the
 * address, and a default route via the bridge's address. A requested
 * address outside the bridge's subnet, the bridge's own, the subnet's
 * network or broadcast address, or one in use is an error naming it (and
 * its user). On failure nothing is left but the bridge. */
int netsetup_bridge_port_attach(const struct netsetup_bridge_port_req *req,
				struct netsetup_container_net *out, struct perr *err);
/* Deletes tap `tap_name` if it is there and its alias names `owner`; 0
 * when it is absent (the VMM's end took it). The bridge stays. */
int netsetup_bridge_port_detach(const char *tap_name, const char *owner, struct perr *err);
/* The tap name of container `id` under --root `root`: "pt" and 12 hex
 * digits of a hash of both, so cleanup can name it with no state. */
void netsetup_bridge_tap_name(const char *root, const char *id, char out[IFNAMSIZ]);

/* ---- a container's network namespace, as the runtime sees it ---- */

#define NETSETUP_CONTAINER_TAP "tap0"

/* What netsetup_container_prepare made and found. */
struct netsetup_container_net {
	int tap_fd;			 /* the tap's queue fd, O_CLOEXEC; the caller owns it */
	char tap_name[IFNAMSIZ];	 /* the tap, next to the veth in the namespace */
	struct netsetup_netns_info veth; /* the veth the guest's eth0 replaces */
};

/* In the network namespace at `netns_path` (the calling thread comes back to
 * its own on every path): finds the only link that is neither loopback nor a
 * tun/tap (podman's, CNI's or netavark's veth; none or several is an error
 * naming what is there), reads its MAC, MTU, addresses and routes, creates
 * tap `tap_name` (NULL: NETSETUP_CONTAINER_TAP; an exact name, no "tap%d"
 * template, since cleanup names it too; IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, not
 * persistent) with the veth's MTU, brings it up and sets up the tc
 * redirect both ways. The veth keeps its addresses (docs/network.md).
 * On failure nothing is left; on success out->tap_fd is the caller's. */
int netsetup_container_prepare(const char *netns_path, const char *tap_name,
			       struct netsetup_container_net *out, struct perr *err);
/* Removes petrel's redirect filters (and the ingress qdiscs they leave
 * empty) from every link in the namespace, then tap `tap_name` (NULL: the
 * default) if it is still there. Idempotent: after kill -9 of the VMM (the
 * tap is gone), twice in a row, or when the namespace no longer exists. */
int netsetup_container_cleanup(const char *netns_path, const char *tap_name, struct perr *err);
/* The agent's `network` object for it (docs/agent-protocol.md, create):
 * {"interfaces": [{"name", "mac", "mtu", "addresses": ["10.88.0.5/16"]}],
 *  "routes": [{"destination": "0.0.0.0/0", "gateway": "10.88.0.1", "metric": 100}]} */
int netsetup_container_net_write_json(const struct netsetup_container_net *net, yajl_gen g);
/* The same as malloc'ed, NUL-terminated text. */
int netsetup_container_net_to_json(const struct netsetup_container_net *net, char **out,
				   struct perr *err);
/* For a host whose create message is already encoded (agent_msg_encode()
 * knows no `network`): msg[0..len) with `"network": <net>` added as the last
 * member of its JSON object, in a malloc'ed buffer (*out, *outlen; also
 * NUL-terminated). Queue it with agent_writer_frame(wr, AGENT_FRAME_MSG, 0, …). */
int netsetup_container_net_add_to_message(const struct netsetup_container_net *net, const char *msg,
					  size_t len, char **out, size_t *outlen, struct perr *err);

#endif
