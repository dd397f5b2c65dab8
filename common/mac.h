/* MAC address text, shared by the VMM's command line, netsetup and the agent. */
#ifndef PETREL_COMMON_MAC_H
#define PETREL_COMMON_MAC_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

static inline int mac_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly "xx:xx:xx:xx:xx:xx" (two hex digits per byte) -> 6 bytes; -EINVAL otherwise. */
static inline int mac_parse(const char *s, uint8_t mac[6])
{
	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (size_t i = 0; i < 6; i++) {
		const char *g = s + i * 3;
		int hi = mac_hex_digit(g[0]), lo = mac_hex_digit(g[1]);
		if (hi < 0 || lo < 0 || (i < 5 && g[2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

#endif
