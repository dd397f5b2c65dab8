/* The petrel CLI's pieces without a VM: flags as runc's callers write them,
 * container ids, signal names, petrel.conf and sizes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/config-file.h"
#include "runtime/container.h"
#include "runtime/flags.h"
#include "tests/unit/unit.h"

/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive in unit.h */
UNIT_MAIN("runtime_cli")

static struct flag create_flags[] = {
    {.name = "bundle", .short_name = 'b', .has_value = true},
    {.name = "pid-file", .has_value = true},
    {.name = "no-pivot"},
    {.name = "env", .short_name = 'e', .has_value = true, .repeat = true},
    {.name = "rootless", .optional_value = true},
};

static void reset_flags(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(create_flags); i++) {
		create_flags[i].set = false;
		create_flags[i].value = NULL;
		create_flags[i].n_values = 0;
	}
}

/* What flags_parse made of an argv. */
struct parsed {
	int ret;
	char *pos[8];
	size_t n;
	struct perr err;
};

/* create_flags, reset, over argv; interleave: flags may follow positional arguments. */
static struct parsed parse_create(int argc, char **argv, bool interleave)
{
	struct parsed p = {0};
	reset_flags();
	p.ret = flags_parse(create_flags, ARRAY_SIZE(create_flags), argc, argv, interleave, p.pos,
			    ARRAY_SIZE(p.pos), &p.n, &p.err);
	return p;
}

UNIT_TEST(test_flags_accept_equals_space_and_single_dash)
{
	char *argv[] = {"--bundle=/b", "-pid-file", "/p", "--no-pivot", "c1"};
	struct parsed p = parse_create(ARRAY_SIZE(argv), argv, true);
	UNIT_ASSERT_EQ(p.ret, 0);
	UNIT_ASSERT_STREQ(create_flags[0].value, "/b");
	UNIT_ASSERT_STREQ(create_flags[1].value, "/p");
	UNIT_ASSERT(create_flags[2].set);
	UNIT_ASSERT_EQ(p.n, 1);
	UNIT_ASSERT_STREQ(p.pos[0], "c1");
}

UNIT_TEST(test_flags_short_names_and_repeats)
{
	char *argv[] = {"-b", "/x", "-e", "A=1", "--env=B=2", "id"};
	struct parsed p = parse_create(ARRAY_SIZE(argv), argv, true);
	UNIT_ASSERT_EQ(p.ret, 0);
	UNIT_ASSERT_STREQ(create_flags[0].value, "/x");
	UNIT_ASSERT_EQ(create_flags[3].n_values, 2);
	UNIT_ASSERT_STREQ(create_flags[3].values[0], "A=1");
	UNIT_ASSERT_STREQ(create_flags[3].values[1], "B=2");
}

UNIT_TEST(test_flags_interleaved_after_the_id)
{
	char *argv[] = {"c1", "--no-pivot"};
	struct parsed p = parse_create(ARRAY_SIZE(argv), argv, true);
	UNIT_ASSERT_EQ(p.ret, 0);
	UNIT_ASSERT(create_flags[2].set);
	UNIT_ASSERT_EQ(p.n, 1);
}

UNIT_TEST(test_flags_stop_at_first_argument_for_exec)
{
	char *argv[] = {"c1", "sh", "-c", "--no-pivot"};
	struct parsed p = parse_create(ARRAY_SIZE(argv), argv, false);
	UNIT_ASSERT_EQ(p.ret, 0);
	UNIT_ASSERT(!create_flags[2].set);
	UNIT_ASSERT_EQ(p.n, 4);
	UNIT_ASSERT_STREQ(p.pos[2], "-c");
}

UNIT_TEST(test_flags_double_dash_ends_flags)
{
	char *argv[] = {"--", "-b"};
	struct parsed p = parse_create(ARRAY_SIZE(argv), argv, true);
	UNIT_ASSERT_EQ(p.ret, 0);
	UNIT_ASSERT_EQ(p.n, 1);
	UNIT_ASSERT_STREQ(p.pos[0], "-b");
}

UNIT_TEST(test_flags_reject_unknown_and_missing_value)
{
	char *unknown[] = {"--nope", "c1"};
	struct parsed p = parse_create(ARRAY_SIZE(unknown), unknown, true);
	UNIT_ASSERT_EQ(p.ret, -EINVAL);
	UNIT_ASSERT_CONTAINS(p.err.msg, "flag provided but not defined: -nope");
	char *missing[] = {"--bundle"};
	p = parse_create(ARRAY_SIZE(missing), missing, true);
	UNIT_ASSERT_EQ(p.ret, -EINVAL);
	UNIT_ASSERT_CONTAINS(p.err.msg, "flag needs an argument: --bundle");
}

UNIT_TEST(test_flags_boolean_values_and_optional_value)
{
	char *argv[] = {"--no-pivot=false", "--rootless", "x"};
	struct parsed p = parse_create(ARRAY_SIZE(argv), argv, true);
	UNIT_ASSERT_EQ(p.ret, 0);
	UNIT_ASSERT(!create_flags[2].set);
	UNIT_ASSERT(create_flags[4].set);
	UNIT_ASSERT(create_flags[4].value == NULL);
	UNIT_ASSERT_STREQ(p.pos[0], "x"); /* an optional value never takes the next word */
	char *auto_argv[] = {"--rootless=auto"};
	p = parse_create(ARRAY_SIZE(auto_argv), auto_argv, true);
	UNIT_ASSERT_EQ(p.ret, 0);
	UNIT_ASSERT_STREQ(create_flags[4].value, "auto");
	char *bad[] = {"--no-pivot=maybe"};
	p = parse_create(ARRAY_SIZE(bad), bad, true);
	UNIT_ASSERT_EQ(p.ret, -EINVAL);
}

UNIT_TEST(test_id_validation_follows_runc)
{
	struct perr err = {0};
	UNIT_ASSERT_EQ(container_id_validate("abc-DEF_1.2+x", &err), 0);
	UNIT_ASSERT_EQ(container_id_validate("a", &err), 0);
	UNIT_ASSERT_EQ(container_id_validate("", &err), -EINVAL);
	UNIT_ASSERT_EQ(container_id_validate(".hidden", &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "starts with a dot");
	UNIT_ASSERT_EQ(container_id_validate("a/b", &err), -EINVAL);
	UNIT_ASSERT_EQ(container_id_validate("..", &err), -EINVAL);
	UNIT_ASSERT_EQ(container_id_validate("a b", &err), -EINVAL);
	UNIT_ASSERT_EQ(container_id_validate("a\nb", &err), -EINVAL);
	char longid[CONTAINER_ID_MAX + 2];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	UNIT_ASSERT_EQ(container_id_validate(longid, &err), -EINVAL);
}

UNIT_TEST(test_signal_names_numbers_and_prefixes)
{
	UNIT_ASSERT_EQ(signal_parse("TERM"), SIGTERM);
	UNIT_ASSERT_EQ(signal_parse("SIGTERM"), SIGTERM);
	UNIT_ASSERT_EQ(signal_parse("sigkill"), SIGKILL);
	UNIT_ASSERT_EQ(signal_parse("KILL"), SIGKILL);
	UNIT_ASSERT_EQ(signal_parse("USR1"), SIGUSR1);
	UNIT_ASSERT_EQ(signal_parse("9"), 9);
	UNIT_ASSERT_EQ(signal_parse("64"), 64);
	UNIT_ASSERT_EQ(signal_parse("65"), -EINVAL);
	UNIT_ASSERT_EQ(signal_parse("0"), -EINVAL);
	UNIT_ASSERT_EQ(signal_parse("FOO"), -EINVAL);
	UNIT_ASSERT_EQ(signal_parse("9x"), -EINVAL);
	UNIT_ASSERT_EQ(signal_parse(""), -EINVAL);
	UNIT_ASSERT_STREQ(signal_name(SIGWINCH), "WINCH");
}

UNIT_TEST(test_sizes_bare_number_is_mib)
{
	uint64_t b;
	UNIT_ASSERT_EQ(petrel_parse_size("512", &b), 0);
	UNIT_ASSERT_EQ(b, 512ull << 20);
	UNIT_ASSERT_EQ(petrel_parse_size("1G", &b), 0);
	UNIT_ASSERT_EQ(b, 1ull << 30);
	UNIT_ASSERT_EQ(petrel_parse_size("64MiB", &b), 0);
	UNIT_ASSERT_EQ(b, 64ull << 20);
	UNIT_ASSERT_EQ(petrel_parse_size("4096B", &b), 0);
	UNIT_ASSERT_EQ(b, 4096);
	UNIT_ASSERT_EQ(petrel_parse_size("0", &b), -EINVAL);
	UNIT_ASSERT_EQ(petrel_parse_size("1Q", &b), -EINVAL);
	UNIT_ASSERT_EQ(petrel_parse_size("-1", &b), -EINVAL);
	UNIT_ASSERT_EQ(petrel_parse_size("99999999999999T", &b), -ERANGE);
}

static void write_conf(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

UNIT_TEST(test_conf_reads_keys_and_names_bad_lines)
{
	char dir[] = "/tmp/petrel-conf.XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/petrel.conf", dir);
	write_conf(path, "# comment\nkernel = /k\ninitrd=/i # trailing\ncpus = 2\nmemory = 1G\n");
	struct petrel_conf c;
	struct perr err = {0};
	UNIT_ASSERT_EQ(petrel_conf_load(path, &c, &err), 0);
	UNIT_ASSERT_STREQ(c.kernel, "/k");
	UNIT_ASSERT_STREQ(c.initrd, "/i");
	UNIT_ASSERT_EQ(c.cpus, 2);
	UNIT_ASSERT_EQ(c.memory, 1ull << 30);
	UNIT_ASSERT_EQ(c.create_timeout, 120);
	write_conf(path, "kernel = /k\nbogus = 1\n");
	UNIT_ASSERT_EQ(petrel_conf_load(path, &c, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "petrel.conf:2: unknown key \"bogus\"");
	write_conf(path, "cpus = many\n");
	UNIT_ASSERT_EQ(petrel_conf_load(path, &c, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, ":1: cpus: bad value \"many\"");
	unlink(path);
	/* An explicit file that is missing is an error; the default one is not. */
	UNIT_ASSERT(petrel_conf_load(path, &c, &err) < 0);
	rmdir(dir);
}
