/* A blocking request/reply conversation with the agent, for start, kill and
 * friends (the long-lived relay is relay.h). */
#ifndef PETREL_RUNTIME_AGENT_SESSION_H
#define PETREL_RUNTIME_AGENT_SESSION_H

#include "common/agent-proto.h"
#include "common/error.h"

struct agent_session {
	int fd;
	struct agent_reader rd;
	struct agent_writer wr;
	unsigned timeout_ms;
};

/* Connects through the hybrid vsock socket and says hello. */
int agent_session_open(struct agent_session *s, const char *uds_path, unsigned timeout_ms,
		       struct perr *err);
/* Sends req and waits for want (stdio and exit frames are skipped); an
 * `error` reply becomes err's message. *reply is freed by the caller with
 * agent_msg_free, also after an error. */
int agent_session_request(struct agent_session *s, const struct agent_msg *req,
			  enum agent_msg_type want, struct agent_msg *reply, struct perr *err);
void agent_session_close(struct agent_session *s);

#endif
