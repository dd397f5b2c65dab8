/*
 * The key=value engine behind every petrel-vmm option: splitting an argument
 * into items, and setting an object's fields from a table of struct cli_key.
 * What each option accepts lives in the tables of config.c, not here.
 */
#include "keyval.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* Long values are cut in messages so that the "allowed" part still fits. */
#define CLI_ECHO_MAX 200

int cli_kv_split(struct cli_kv *kv, const char *opt, const char *arg, struct perr *err)
{
	memset(kv, 0, sizeof(*kv));
	kv->opt = opt;
	if (!arg[0])
		return perr_setx(err, -EINVAL, "%s: empty argument", opt);

	size_t len = strlen(arg);
	/* Two copies: raw items, and items with the first '=' turned into NUL. */
	kv->buf = malloc(2 * (len + 1));
	if (!kv->buf)
		return perr_set(err, -ENOMEM, "%s", opt);
	char *raw = kv->buf;
	char *split = kv->buf + len + 1;
	const char *p = arg;

	for (;;) {
		if (kv->n == CLI_MAX_ITEMS)
			return perr_setx(err, -EINVAL, "%s: too many items; allowed: at most %d",
					 opt, CLI_MAX_ITEMS);
		struct cli_item item = {.raw = raw, .key = split, .value = NULL};
		while (*p) {
			if (*p == ',') {
				if (p[1] != ',')
					break;
				p++; /* ",," is a literal comma, as in QEMU */
			} else if (*p == '=' && !item.value) {
				*raw++ = *p++;
				*split++ = '\0';
				item.value = split;
				continue;
			}
			*raw++ = *p;
			*split++ = *p++;
		}
		*raw++ = '\0';
		*split++ = '\0';
		if (!item.raw[0])
			return perr_setx(err, -EINVAL,
					 "%s: empty item in '%.*s'; separate items with one ','",
					 opt, CLI_ECHO_MAX, arg);
		kv->items[kv->n++] = item;
		if (!*p)
			return 0;
		p++; /* the separating ',' */
	}
}

void cli_kv_release(struct cli_kv *kv)
{
	free(kv->buf);
	kv->buf = NULL;
	kv->n = 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	/* strtoull alone would take " 1", "+1", "-1" (wrapped) and "1x". */
	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	for (const char *c = s; *c; c++)
		if (!isdigit((unsigned char)*c))
			return -EINVAL;
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || !end || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_bool(const char *s)
{
	static const char *const on[] = {"on", "true", "yes"};
	static const char *const off[] = {"off", "false", "no"};
	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		if (strcasecmp(s, on[i]) == 0)
			return 1;
		if (strcasecmp(s, off[i]) == 0)
			return 0;
	}
	return -EINVAL;
}

int cli_parse_memsize(const char *s, uint64_t *bytes)
{
	static const struct {
		const char *name;
		unsigned shift;
	} units[] = {{"", 20}, {"M", 20}, {"MiB", 20}, {"G", 30}, {"GiB", 30}};

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(s, &end, 10);
	bool overflow = errno == ERANGE;
	if ((errno && !overflow) || !end)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].name) != 0)
			continue;
		if (overflow || v > (UINT64_MAX >> units[i].shift))
			return -ERANGE;
		*bytes = (uint64_t)v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

bool cli_id_valid(const char *s)
{
	if (!isalpha((unsigned char)s[0]))
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
			return false;
	return true;
}

void cli_format_memsize(char *buf, size_t size, uint64_t bytes)
{
	if (bytes && bytes % GIB == 0)
		snprintf(buf, size, "%llu GiB", (unsigned long long)(bytes / GIB));
	else if (bytes % MIB == 0)
		snprintf(buf, size, "%llu MiB", (unsigned long long)(bytes / MIB));
	else
		snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
}

void cli_words_join(char *buf, size_t size, const char *const *words, const char *sep)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; words[i] && off < size; i++) {
		int n = snprintf(buf + off, size - off, "%s%s", i ? sep : "", words[i]);
		if (n < 0)
			return;
		off += (size_t)n;
	}
}

void cli_keys_names(char *buf, size_t size, const struct cli_key *keys, size_t nkeys)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < nkeys && off < size; i++) {
		int n = snprintf(buf + off, size - off, "%s%s", i ? ", " : "", keys[i].name);
		if (n < 0)
			return;
		off += (size_t)n;
	}
}

static const char *cli_type_placeholder(const struct cli_key *key, char *buf, size_t size)
{
	switch (key->type) {
	case CLI_STRING:
		return "STR";
	case CLI_ID:
		return "ID";
	case CLI_PATH:
		return "PATH";
	case CLI_BOOL:
		return "on|off";
	case CLI_UINT:
		return "N";
	case CLI_MEMSIZE:
		return "SIZE";
	case CLI_CHOICE:
		cli_words_join(buf, size, key->choices, "|");
		return buf;
	}
	return "?";
}

void cli_keys_synopsis(char *buf, size_t size, const struct cli_key *keys, size_t nkeys,
		       const char *implicit)
{
	char ph[128];
	size_t off = 0;
	bool first = true;
	buf[0] = '\0';

	/* The implicit key first, then required keys, then optional ones. */
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < nkeys && off < size; i++) {
			const struct cli_key *k = &keys[i];
			bool is_implicit = implicit && strcmp(k->name, implicit) == 0;
			if ((pass == 0) != is_implicit)
				continue;
			if (pass == 1 && !k->required)
				continue;
			if (pass == 2 && k->required)
				continue;
			const char *p = cli_type_placeholder(k, ph, sizeof(ph));
			int n;
			if (is_implicit)
				n = snprintf(buf + off, size - off, "[%s=]%s", k->name, p);
			else if (k->required)
				n = snprintf(buf + off, size - off, "%s%s=%s", first ? "" : ",",
					     k->name, p);
			else if (k->type == CLI_BOOL)
				n = snprintf(buf + off, size - off, "[%s%s[=on|off]]",
					     first ? "" : ",", k->name);
			else
				n = snprintf(buf + off, size - off, "[%s%s=%s]", first ? "" : ",",
					     k->name, p);
			if (n < 0)
				return;
			off += (size_t)n;
			first = false;
		}
	}
}

/* The value as the user wrote it, for messages: "cpus=255", or "255" when
 * the key was implicit. */
static void cli_echo(char *buf, size_t size, const struct cli_key *key, bool explicit_key,
		     const char *value)
{
	if (explicit_key)
		snprintf(buf, size, "%s=%.*s", key->name, CLI_ECHO_MAX, value);
	else
		snprintf(buf, size, "%.*s", CLI_ECHO_MAX, value);
}

static int cli_store(const struct cli_kv *kv, const struct cli_key *key, void *obj, const void *val,
		     size_t len, struct perr *err)
{
	if (!key->size)
		return 0;
	if (len > key->size)
		return perr_setx(err, -EINVAL,
				 "%s: internal error: key '%s' does not fit its field", kv->opt,
				 key->name);
	memcpy((char *)obj + key->offset, val, len);
	return 0;
}

static int cli_store_uint(const struct cli_kv *kv, const struct cli_key *key, void *obj, uint64_t v,
			  struct perr *err)
{
	if (key->size == sizeof(uint32_t) && v <= UINT32_MAX) {
		uint32_t v32 = (uint32_t)v;
		return cli_store(kv, key, obj, &v32, sizeof(v32), err);
	}
	if (key->size && key->size != sizeof(uint64_t))
		return perr_setx(err, -EINVAL, "%s: internal error: key '%s' has a %zu-byte field",
				 kv->opt, key->name, key->size);
	return cli_store(kv, key, obj, &v, sizeof(v), err);
}

static int cli_set_text(const struct cli_kv *kv, const struct cli_key *key, void *obj,
			const char *echo, const char *value, struct perr *err)
{
	size_t len = strlen(value);
	uint64_t max = key->max ? key->max : (key->size ? key->size - 1 : UINT64_MAX);
	if (key->size && max > key->size - 1)
		return perr_setx(err, -EINVAL,
				 "%s: internal error: key '%s' is longer than its field", kv->opt,
				 key->name);

	if (key->type == CLI_ID) {
		if (len > max || !cli_id_valid(value))
			return perr_setx(
			    err, -EINVAL,
			    "%s: %s is not a valid id; allowed: a letter, then letters, "
			    "digits, '-', '.', '_', at most %llu characters",
			    kv->opt, echo, (unsigned long long)max);
	} else if (len > max) {
		return perr_setx(err, -EINVAL,
				 "%s: %s is too long (%zu bytes); allowed: at most %llu", kv->opt,
				 key->name, len, (unsigned long long)max);
	}
	return cli_store(kv, key, obj, value, len + 1, err);
}

static int cli_set(const struct cli_kv *kv, const struct cli_key *key, bool explicit_key,
		   const char *value, void *obj, struct perr *err)
{
	char echo[CLI_ECHO_MAX + 64];
	char a[64], b[64];
	uint64_t v = 0;
	int rc;

	if (!value) {
		if (key->type == CLI_BOOL) {
			bool on = true;
			return cli_store(kv, key, obj, &on, sizeof(on), err);
		}
		return perr_setx(err, -EINVAL, "%s: key '%s' needs a value (%s=...)", kv->opt,
				 key->name, key->name);
	}
	if (!value[0])
		return perr_setx(err, -EINVAL, "%s: empty value for key '%s'", kv->opt, key->name);
	cli_echo(echo, sizeof(echo), key, explicit_key, value);

	switch (key->type) {
	case CLI_STRING:
	case CLI_ID:
	case CLI_PATH:
		return cli_set_text(kv, key, obj, echo, value, err);

	case CLI_BOOL: {
		rc = cli_parse_bool(value);
		if (rc < 0)
			return perr_setx(
			    err, -EINVAL,
			    "%s: %s is not a boolean; allowed: on, off, true, false, yes, no",
			    kv->opt, echo);
		bool on = rc == 1;
		return cli_store(kv, key, obj, &on, sizeof(on), err);
	}

	case CLI_UINT:
		rc = cli_parse_u64(value, &v);
		if (rc == -EINVAL)
			return perr_setx(err, -EINVAL,
					 "%s: %s is not a decimal number; allowed: %llu to %llu",
					 kv->opt, echo, (unsigned long long)key->min,
					 (unsigned long long)key->max);
		if (rc < 0 || v < key->min || v > key->max)
			return perr_setx(
			    err, -EINVAL, "%s: %s is out of range; allowed: %llu to %llu", kv->opt,
			    echo, (unsigned long long)key->min, (unsigned long long)key->max);
		return cli_store_uint(kv, key, obj, v, err);

	case CLI_MEMSIZE:
		cli_format_memsize(a, sizeof(a), key->min);
		cli_format_memsize(b, sizeof(b), key->max);
		rc = cli_parse_memsize(value, &v);
		if (rc == -EINVAL)
			return perr_setx(
			    err, -EINVAL,
			    "%s: %s is not a size; allowed: an integer with an optional "
			    "unit M, MiB, G or GiB (none means MiB), %s to %s",
			    kv->opt, echo, a, b);
		if (rc == 0 && v < key->min)
			return perr_setx(err, -EINVAL,
					 "%s: %s is below the minimum of %s; allowed: %s to %s",
					 kv->opt, echo, a, a, b);
		if (rc < 0 || v > key->max)
			return perr_setx(err, -EINVAL,
					 "%s: %s is above the maximum of %s; allowed: %s to %s",
					 kv->opt, echo, b, a, b);
		return cli_store(kv, key, obj, &v, sizeof(v), err);

	case CLI_CHOICE:
		for (unsigned i = 0; key->choices[i]; i++) {
			if (strcasecmp(value, key->choices[i]) != 0)
				continue;
			if (key->size && key->size != sizeof(unsigned))
				return perr_setx(
				    err, -EINVAL,
				    "%s: internal error: key '%s' needs an unsigned field", kv->opt,
				    key->name);
			return cli_store(kv, key, obj, &i, sizeof(i), err);
		}
		{
			char allowed[256];
			cli_words_join(allowed, sizeof(allowed), key->choices, ", ");
			return perr_setx(err, -EINVAL, "%s: %s is not supported; allowed: %s",
					 kv->opt, echo, allowed);
		}
	}
	return perr_setx(err, -EINVAL, "%s: internal error: key '%s' has no type", kv->opt,
			 key->name);
}

int cli_kv_apply(const struct cli_kv *kv, unsigned first, const char *implicit,
		 const struct cli_key *keys, size_t nkeys, void *obj, uint64_t *given,
		 struct perr *err)
{
	uint64_t seen = 0;
	char allowed[512];

	if (nkeys > 64)
		return perr_setx(err, -EINVAL, "%s: internal error: too many keys", kv->opt);

	for (unsigned i = first; i < kv->n; i++) {
		const struct cli_item *it = &kv->items[i];
		const char *name = it->key;
		const char *value = it->value;
		bool explicit_key = true;
		if (i == first && implicit && !it->value) {
			name = implicit;
			value = it->raw;
			explicit_key = false;
		}

		size_t k = 0;
		while (k < nkeys && strcmp(keys[k].name, name) != 0)
			k++;
		if (k == nkeys) {
			if (!nkeys)
				return perr_setx(err, -EINVAL,
						 "%s: unknown key '%.*s'; no keys are allowed here",
						 kv->opt, CLI_ECHO_MAX, name);
			cli_keys_names(allowed, sizeof(allowed), keys, nkeys);
			return perr_setx(err, -EINVAL, "%s: unknown key '%.*s'; allowed: %s",
					 kv->opt, CLI_ECHO_MAX, name, allowed);
		}
		if (seen & (1ull << k))
			return perr_setx(err, -EINVAL, "%s: key '%s' given twice; allowed once",
					 kv->opt, keys[k].name);
		seen |= 1ull << k;

		int rc = cli_set(kv, &keys[k], explicit_key, value, obj, err);
		if (rc < 0)
			return rc;
	}

	for (size_t k = 0; k < nkeys; k++)
		if (keys[k].required && !(seen & (1ull << k)))
			return perr_setx(err, -EINVAL, "%s: missing key '%s'", kv->opt,
					 keys[k].name);
	if (given)
		*given = seen;
	return 0;
}
