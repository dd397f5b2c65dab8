#include "eventloop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct eventloop_watch {
	int fd;
	eventloop_cb cb;
	void *opaque;
	bool removed;
	struct eventloop_watch *next;
};

struct eventloop {
	int epfd;
	bool stop;
	struct eventloop_watch *watches;
	unsigned dispatch_depth;
};

int eventloop_create(struct eventloop **out)
{
	struct eventloop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int ret = -errno;
		free(loop);
		return ret;
	}
	*out = loop;
	return 0;
}

static void eventloop_reap(struct eventloop *loop)
{
	struct eventloop_watch **pp = &loop->watches;
	while (*pp) {
		struct eventloop_watch *w = *pp;
		if (w->removed) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

void eventloop_destroy(struct eventloop *loop)
{
	if (!loop)
		return;
	for (struct eventloop_watch *w = loop->watches; w; w = w->next)
		w->removed = true;
	eventloop_reap(loop);
	close(loop->epfd);
	free(loop);
}

int eventloop_add(struct eventloop *loop, int fd, uint32_t events, eventloop_cb cb, void *opaque)
{
	struct eventloop_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->cb = cb;
	w->opaque = opaque;
	struct epoll_event ev = {.events = events ? events : EPOLLIN, .data.ptr = w};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int ret = -errno;
		free(w);
		return ret;
	}
	w->next = loop->watches;
	loop->watches = w;
	return 0;
}

static struct eventloop_watch *eventloop_find(struct eventloop *loop, int fd)
{
	for (struct eventloop_watch *w = loop->watches; w; w = w->next)
		if (!w->removed && w->fd == fd)
			return w;
	return NULL;
}

int eventloop_modify(struct eventloop *loop, int fd, uint32_t events)
{
	struct eventloop_watch *w = eventloop_find(loop, fd);
	if (!w)
		return -ENOENT;
	struct epoll_event ev = {.events = events, .data.ptr = w};
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int eventloop_remove(struct eventloop *loop, int fd)
{
	struct eventloop_watch *w = eventloop_find(loop, fd);
	if (!w)
		return -ENOENT;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* Freed after the current dispatch round: a pending event may still name it. */
	w->removed = true;
	if (!loop->dispatch_depth)
		eventloop_reap(loop);
	return 0;
}

int eventloop_run(struct eventloop *loop)
{
	loop->stop = false;
	while (!loop->stop) {
		struct epoll_event evs[16];
		int n = epoll_wait(loop->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		loop->dispatch_depth++;
		for (int i = 0; i < n; i++) {
			struct eventloop_watch *w = evs[i].data.ptr;
			if (!w->removed)
				w->cb(w->opaque, evs[i].events);
		}
		loop->dispatch_depth--;
		eventloop_reap(loop);
	}
	return 0;
}

void eventloop_stop(struct eventloop *loop)
{
	loop->stop = true;
}

void eventloop_fd_consume(int fd)
{
	uint64_t count;
	ssize_t n = read(fd, &count, sizeof(count));
	(void)n;
}
