/* What petrel keeps between containers: root images (rootfs.c) and VM
 * templates (vm-template.c), each in its own private directory. */
#ifndef PETREL_RUNTIME_CACHE_H
#define PETREL_RUNTIME_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* $ENV ("" or "off": no cache), else /var/cache/petrel/SUB for root, else
 * $XDG_CACHE_HOME/petrel/SUB (~/.cache). Made (0700) when missing; false when
 * there is none. */
bool cache_dir(const char *env, const char *sub, char *out, size_t size);
/* FNV-1a, 64 bits: names an entry; the key stored with it decides. */
uint64_t cache_hash(const char *s, size_t len);
/* A whole small file (at most 64 MiB), NUL-terminated; NULL on failure. */
char *cache_read_file(const char *path, size_t *len);
/* The file at path holds exactly text (whole), or begins with it. The key an
 * entry was stored under decides, not its hash. */
bool cache_file_matches(const char *path, const char *text, size_t len, bool whole);

/* Keeps the `keep` most recently used entries of dir. stamp maps a name in
 * dir to the path (relative to dir) whose mtime says when the entry was last
 * used, or returns false for a name that is no entry; drop removes one. */
void cache_evict_lru(const char *dir, unsigned keep,
		     bool (*stamp)(const char *name, char *out, size_t size),
		     void (*drop)(const char *dir, const char *name));

#endif
