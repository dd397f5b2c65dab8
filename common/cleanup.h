/* Scope-bound ownership helpers (see STYLE.md, "Every resource has one owner"). */
#ifndef PETREL_CLEANUP_H
#define PETREL_CLEANUP_H

#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}

static inline void cleanup_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define autofree  __attribute__((cleanup(cleanup_freep)))
#define autoclose __attribute__((cleanup(cleanup_closep)))

/* Hand ownership over: the cleanup attribute on the source sees nothing. */
static inline void *steal_ptr_impl(void **p)
{
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_ptr(p) steal_ptr_impl((void **)&(p))

static inline int steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
