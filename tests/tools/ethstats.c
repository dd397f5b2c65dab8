/*
 * ethstats: what "ethtool -S IFACE" prints, for the busybox test guest
 * (which has no ethtool): one "name: value" line per driver statistic, read
 * with the SIOCETHTOOL requests ETHTOOL_GSSET_INFO, ETHTOOL_GSTRINGS and
 * ETHTOOL_GSTATS. virtio_net reports per-queue counters there
 * (rx_queue_0_packets, tx_queue_1_bytes, ...). Built static.
 *
 *   ethstats IFACE
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int ethtool(int fd, const char *ifname, void *cmd)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = cmd;
	return ioctl(fd, SIOCETHTOOL, &ifr);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: ethstats IFACE\n");
		return 1;
	}
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "ethstats: socket: %s\n", strerror(errno));
		return 1;
	}
	struct {
		struct ethtool_sset_info hdr;
		uint32_t len;
	} sset = {.hdr = {.cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ull << ETH_SS_STATS}};
	if (ethtool(fd, argv[1], &sset) < 0 || !(sset.hdr.sset_mask & (1ull << ETH_SS_STATS))) {
		fprintf(stderr, "ethstats: %s: ETHTOOL_GSSET_INFO: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint32_t n = sset.len;
	struct ethtool_gstrings *strings = calloc(1, sizeof(*strings) + n * ETH_GSTRING_LEN);
	struct ethtool_stats *stats = calloc(1, sizeof(*stats) + n * sizeof(uint64_t));
	if (!strings || !stats) {
		free(strings);
		free(stats);
		return 1;
	}
	strings->cmd = ETHTOOL_GSTRINGS;
	strings->string_set = ETH_SS_STATS;
	strings->len = n;
	stats->cmd = ETHTOOL_GSTATS;
	stats->n_stats = n;
	if (ethtool(fd, argv[1], strings) < 0 || ethtool(fd, argv[1], stats) < 0) {
		fprintf(stderr, "ethstats: %s: %s\n", argv[1], strerror(errno));
		free(strings);
		free(stats);
		return 1;
	}
	for (uint32_t i = 0; i < n && i < stats->n_stats; i++)
		printf("%.*s: %llu\n", ETH_GSTRING_LEN,
		       (const char *)strings->data + i * ETH_GSTRING_LEN,
		       (unsigned long long)stats->data[i]);
	free(strings);
	free(stats);
	close(fd);
	return 0;
}
