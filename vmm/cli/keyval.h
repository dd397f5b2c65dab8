/*
 * The QEMU-style "key=value,key=value" grammar shared by every petrel-vmm
 * option, and the descriptor tables that say what each option accepts.
 *
 * A value may contain a comma written twice (",,"), as in QEMU. A bare word
 * ("server") is a boolean key set to on. The first item of an option may
 * leave its key implicit ("-smp 2" is "-smp cpus=2").
 *
 * Internal to vmm/cli/: config.c holds the tables, this file the engine.
 */
#ifndef PETREL_VMM_CLI_KEYVAL_H
#define PETREL_VMM_CLI_KEYVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

enum cli_type {
	CLI_STRING,  /* any bytes; length 1 to max (0: the field's size - 1) */
	CLI_ID,	     /* a letter, then letters, digits, '-', '.', '_'; fits the field */
	CLI_PATH,    /* a host path, not opened; length 1 to max (0: the field's size - 1) */
	CLI_BOOL,    /* on|off|true|false|yes|no; a bare key means on */
	CLI_UINT,    /* decimal integer in [min, max] */
	CLI_CHOICE,  /* one of choices[] (case-insensitive), stored as its index */
	CLI_MEMSIZE, /* integer with unit M|MiB|G|GiB (none: MiB), bytes in [min, max] */
};

/* One key an option accepts: its name, type, range and the field it sets. */
struct cli_key {
	const char *name;
	enum cli_type type;
	bool required;
	uint64_t min, max;
	const char *const *choices; /* CLI_CHOICE: NULL-terminated */
	size_t offset, size;	    /* the field set in the option's object; size 0: checked only */
};

/* The setter of a key: the field of the option's object it writes. */
#define CLI_SETS(type, member) .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

#define CLI_MAX_ITEMS 32

struct cli_item {
	const char *raw;   /* the item as written, commas unescaped */
	const char *key;   /* the part before the first '=', or the whole bare word */
	const char *value; /* after the first '='; NULL for a bare word */
};

/* One option argument split into items. */
struct cli_kv {
	const char *opt; /* the option as typed ("-drive"), for messages */
	char *buf;	 /* owns the strings the items point to */
	struct cli_item items[CLI_MAX_ITEMS];
	unsigned n;
};

/* Splits arg at single commas; "" and empty items are errors. */
int cli_kv_split(struct cli_kv *kv, const char *opt, const char *arg, struct perr *err);
void cli_kv_release(struct cli_kv *kv);

/*
 * Applies kv->items[first..] to obj through keys[]. When implicit names a key,
 * a first item without '=' is that key's value. Unknown, repeated and empty
 * keys are errors, and so are missing required keys. *given (may be NULL)
 * gets bit i set for each keys[i] that was written.
 */
int cli_kv_apply(const struct cli_kv *kv, unsigned first, const char *implicit,
		 const struct cli_key *keys, size_t nkeys, void *obj, uint64_t *given,
		 struct perr *err);

/* Writes "key=TYPE,..." with optional keys in brackets, for -help. The key
 * named implicit is written as "[key=]TYPE" first. */
void cli_keys_synopsis(char *buf, size_t size, const struct cli_key *keys, size_t nkeys,
		       const char *implicit);

/* "a, b, c" from keys[].name, or from a NULL-terminated list. */
void cli_keys_names(char *buf, size_t size, const struct cli_key *keys, size_t nkeys);
void cli_words_join(char *buf, size_t size, const char *const *words, const char *sep);

/* Strict decimal: digits only (no sign, space, "0x" or suffix); -ERANGE past
 * 2^64 - 1, -EINVAL on anything else. */
int cli_parse_u64(const char *s, uint64_t *out);
/* 1, 0, or -EINVAL: on|true|yes / off|false|no, case-insensitive. */
int cli_parse_bool(const char *s);
/* An integer with an optional M, MiB, G or GiB unit (case-insensitive; none
 * means MiB) into bytes; -ERANGE when it does not fit 64 bits. */
int cli_parse_memsize(const char *s, uint64_t *bytes);
/* True for a letter followed by letters, digits, '-', '.', '_'. */
bool cli_id_valid(const char *s);

/* "256 MiB", "512 GiB", "1536 MiB": the largest unit that divides bytes. */
void cli_format_memsize(char *buf, size_t size, uint64_t bytes);

#endif
