/*
 * libFuzzer target: bytes from a hostile peer into the agent protocol.
 * The first byte picks the mode: even = a raw message payload (reaches the JSON
 * decoder directly), odd = a byte stream cut into reads of (byte >> 1) + 1 bytes.
 * Every message that decodes must encode again, and decode to the same encoding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/agent-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const uint8_t *payload, size_t len)
{
	struct agent_msg msg, again;
	struct perr err = {0};
	if (agent_msg_decode(payload, len, &msg, &err) < 0) {
		agent_msg_free(&msg);
		return;
	}
	if (msg.type == AGENT_MSG_CREATE)
		for (size_t i = 0; i < msg.u.create.nmounts; i++) {
			struct agent_mount_flags mf;
			if (agent_mount_flags_parse(msg.u.create.mounts[i].options,
						    msg.u.create.mounts[i].noptions, &mf,
						    &err) == 0)
				agent_mount_flags_free(&mf);
		}
	char *json = NULL, *json2 = NULL;
	size_t n, n2;
	if (agent_msg_encode(&msg, &json, &n, &err) < 0)
		abort(); /* whatever decodes must be representable */
	if (agent_msg_decode(json, n, &again, &err) < 0)
		abort();
	if (agent_msg_encode(&again, &json2, &n2, &err) < 0)
		abort();
	if (n != n2 || memcmp(json, json2, n) != 0)
		abort();
	free(json);
	free(json2);
	agent_msg_free(&again);
	agent_msg_free(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	if ((mode & 1) == 0) {
		check_message(data, size);
		return 0;
	}
	size_t chunk = (size_t)(mode >> 1) + 1;
	struct agent_reader rd;
	struct agent_frame f;
	struct perr err = {0};
	agent_reader_init(&rd);
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (agent_reader_feed(&rd, data + off, n) < 0)
			break;
		int r;
		while ((r = agent_reader_next(&rd, &f, &err)) == 1)
			if (f.type == AGENT_FRAME_MSG)
				check_message(f.payload, f.len);
		if (r < 0)
			break;
	}
	agent_reader_free(&rd);
	return 0;
}
