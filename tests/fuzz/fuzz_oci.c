/*
 * libFuzzer target: arbitrary bytes as config.json, then as state.json.
 *
 * Invariants beyond "no crash, no leak": a failure returns a negative errno,
 * no config, and one line starting with "config.json: "; a success passes
 * oci_config_check_supported() and the lookups without crashing; a state
 * document that parses and can be written again parses again, identically.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"

static void check_error(int r, const void *out, const struct perr *err, const char *prefix)
{
	if (r >= 0 || out || strncmp(err->msg, prefix, strlen(prefix)) != 0 ||
	    strchr(err->msg, '\n'))
		__builtin_trap();
}

static void fuzz_config(const char *data, size_t size)
{
	struct oci_config *cfg = NULL;
	struct perr err = {0};
	int r = oci_config_parse(data, size, &cfg, &err);
	if (r) {
		check_error(r, cfg, &err, "config.json: ");
		return;
	}
	r = oci_config_check_supported(cfg, &err);
	if (r)
		check_error(r, NULL, &err, "config.json: ");
	for (unsigned t = 0; t < OCI_NS__COUNT; t++)
		(void)oci_find_namespace(cfg, (enum oci_ns_type)t);
	for (unsigned k = 0; k < OCI_HOOK__COUNT; k++)
		oci_for_each_hook(cfg, (enum oci_hook_kind)k, hook)
		{
			if (!hook->path || hook->path[0] != '/')
				__builtin_trap();
		}
	if (cfg->annotations.n &&
	    oci_annotation(cfg, cfg->annotations.items[0].key) != cfg->annotations.items[0].value)
		__builtin_trap();
	if (!cfg->process.args.n || cfg->process.args.v[cfg->process.args.n] != NULL ||
	    cfg->process.cwd[0] != '/')
		__builtin_trap();
	oci_config_free(cfg);
}

static void fuzz_state(const char *data, size_t size)
{
	struct oci_state *st = NULL, *again = NULL;
	struct perr err = {0};
	int r = oci_state_parse(data, size, &st, &err);
	if (r) {
		check_error(r, st, &err, "state.json: ");
		return;
	}
	char *json = NULL, *json2 = NULL;
	size_t len = 0, len2 = 0;
	/* Writing may fail (a time that RFC 3339 cannot spell): fine. */
	if (oci_state_to_json_stored(st, &json, &len, &err) == 0) {
		if (oci_state_parse(json, len, &again, &err) != 0)
			__builtin_trap();
		if (oci_state_to_json_stored(again, &json2, &len2, &err) != 0 || len != len2 ||
		    memcmp(json, json2, len) != 0)
			__builtin_trap();
	}
	free(json);
	free(json2);
	oci_state_free(again);
	oci_state_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_config((const char *)data, size);
	fuzz_state((const char *)data, size);
	return 0;
}
