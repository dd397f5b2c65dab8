/* Blocking agent requests (agent-session.h). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "runtime/agent-session.h"

int agent_session_request(struct agent_session *s, const struct agent_msg *req,
			  enum agent_msg_type want, struct agent_msg *reply, struct perr *err)
{
	memset(reply, 0, sizeof(*reply));
	int rc = agent_writer_msg(&s->wr, req, err);
	if (rc < 0)
		return rc;
	int64_t deadline = monotonic_ms() + s->timeout_ms;
	for (;;) {
		rc = agent_writer_flush(&s->wr, s->fd);
		if (rc < 0)
			return perr_set(err, rc, "write to the agent");
		struct agent_frame f;
		int nr;
		while ((nr = agent_reader_next(&s->rd, &f, err)) > 0) {
			if (f.type != AGENT_FRAME_MSG)
				continue;
			rc = agent_msg_decode(f.payload, f.len, reply, err);
			if (rc < 0)
				return perr_wrap(err, "bad message from the agent");
			if (reply->type == AGENT_MSG_EXIT) {
				agent_msg_free(reply);
				continue;
			}
			if (reply->type == AGENT_MSG_ERROR)
				return perr_setx(err, -EIO, "%s",
						 reply->u.error.message ? reply->u.error.message
									: "agent error");
			if (reply->type != want)
				return perr_setx(err, -EPROTO, "expected %s from the agent, got %s",
						 agent_msg_type_name(want),
						 agent_msg_type_name(reply->type));
			return 0;
		}
		if (nr < 0)
			return nr;
		int64_t left = deadline - monotonic_ms();
		if (left <= 0)
			return perr_setx(err, -ETIMEDOUT, "no %s from the agent within %u s",
					 agent_msg_type_name(want), s->timeout_ms / 1000);
		struct pollfd p = {.fd = s->fd,
				   .events = POLLIN | (agent_writer_pending(&s->wr) ? POLLOUT : 0)};
		int pr = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
		if (pr < 0 && errno != EINTR)
			return perr_set(err, -errno, "poll");
		if (pr <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t got = agent_reader_fill(&s->rd, s->fd);
		if (got == 0)
			return perr_setx(err, -ECONNRESET, "the agent closed the connection");
		if (got < 0 && got != -EAGAIN && got != -EINTR)
			return perr_set(err, (int)got, "read from the agent");
	}
}

int agent_session_open(struct agent_session *s, const char *uds_path, unsigned timeout_ms,
		       struct perr *err)
{
	memset(s, 0, sizeof(*s));
	s->timeout_ms = timeout_ms;
	agent_reader_init(&s->rd);
	agent_writer_init(&s->wr);
	s->fd = agent_connect_hybrid(uds_path, AGENT_VSOCK_PORT, err);
	if (s->fd < 0) {
		int rc = s->fd;
		agent_session_close(s);
		return rc;
	}
	struct agent_msg hello, reply;
	agent_hello_init_host(&hello);
	int rc = agent_session_request(s, &hello, AGENT_MSG_HELLO, &reply, err);
	agent_msg_free(&reply);
	if (rc < 0)
		agent_session_close(s);
	return rc;
}

void agent_session_close(struct agent_session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	agent_reader_free(&s->rd);
	agent_writer_free(&s->wr);
}
