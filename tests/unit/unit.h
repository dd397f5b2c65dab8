/*
 * A minimal unit-test harness. Each test binary prints one line per test:
 *   PASS <binary>/<test>     FAIL <binary>/<test>: <why>     SKIP <binary>/<test>: <why>
 * and exits non-zero when any test failed. tests/check counts the lines.
 *
 *   UNIT_TEST(test_smp_rejects_255) { UNIT_ASSERT(...); }
 *   int main(void) { return unit_run_all("cli"); }
 */
#ifndef PETREL_UNIT_H
#define PETREL_UNIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

struct unit_state {
	bool failed;
	bool skipped;
	char why[512];
};

extern struct unit_state unit_current;

#define UNIT_MAX_TESTS 512
extern struct unit_test unit_tests[UNIT_MAX_TESTS];
extern unsigned unit_ntests;

#define UNIT_TEST(name)                                                              \
	static void name(void);                                                      \
	__attribute__((constructor)) static void name##_register(void)               \
	{                                                                            \
		if (unit_ntests < UNIT_MAX_TESTS)                                    \
			unit_tests[unit_ntests++] = (struct unit_test){#name, name}; \
	}                                                                            \
	static void name(void)

void unit_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void unit_skip_because(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define UNIT_FAIL(...)                                         \
	do {                                                   \
		unit_fail_at(__FILE__, __LINE__, __VA_ARGS__); \
		return;                                        \
	} while (0)

#define UNIT_ASSERT(cond)                                         \
	do {                                                      \
		if (!(cond))                                      \
			UNIT_FAIL("assertion failed: %s", #cond); \
	} while (0)

#define UNIT_ASSERT_EQ(a, b)                                                                    \
	do {                                                                                    \
		long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);                   \
		if (unit_a_ != unit_b_)                                                         \
			UNIT_FAIL("%s == %lld, expected %s == %lld", #a, unit_a_, #b, unit_b_); \
	} while (0)

#define UNIT_ASSERT_STREQ(a, b)                                                                \
	do {                                                                                   \
		const char *unit_a_ = (a), *unit_b_ = (b);                                     \
		if (!unit_a_ || !unit_b_ || strcmp(unit_a_, unit_b_) != 0)                     \
			UNIT_FAIL("%s is \"%s\", expected \"%s\"", #a,                         \
				  unit_a_ ? unit_a_ : "(null)", unit_b_ ? unit_b_ : "(null)"); \
	} while (0)

#define UNIT_ASSERT_CONTAINS(hay, needle)                                           \
	do {                                                                        \
		const char *unit_h_ = (hay), *unit_n_ = (needle);                   \
		if (!unit_h_ || !strstr(unit_h_, unit_n_))                          \
			UNIT_FAIL("%s is \"%s\", expected to contain \"%s\"", #hay, \
				  unit_h_ ? unit_h_ : "(null)", unit_n_);           \
	} while (0)

#define UNIT_SKIP(...)                          \
	do {                                    \
		unit_skip_because(__VA_ARGS__); \
		return;                         \
	} while (0)

int unit_run_all(const char *suite);

/* Include once per binary (in the file that has main). */
#define UNIT_MAIN(suite)                                                                         \
	struct unit_state unit_current;                                                          \
	struct unit_test unit_tests[UNIT_MAX_TESTS];                                             \
	unsigned unit_ntests;                                                                    \
	void unit_fail_at(const char *file, int line, const char *fmt, ...)                      \
	{                                                                                        \
		unit_current.failed = true;                                                      \
		int off =                                                                        \
		    snprintf(unit_current.why, sizeof(unit_current.why), "%s:%d: ", file, line); \
		if (off < 0 || (size_t)off >= sizeof(unit_current.why))                          \
			return;                                                                  \
		va_list ap;                                                                      \
		va_start(ap, fmt);                                                               \
		vsnprintf(unit_current.why + off, sizeof(unit_current.why) - (size_t)off, fmt,   \
			  ap);                                                                   \
		va_end(ap);                                                                      \
	}                                                                                        \
	void unit_skip_because(const char *fmt, ...)                                             \
	{                                                                                        \
		unit_current.skipped = true;                                                     \
		va_list ap;                                                                      \
		va_start(ap, fmt);                                                               \
		vsnprintf(unit_current.why, sizeof(unit_current.why), fmt, ap);                  \
		va_end(ap);                                                                      \
	}                                                                                        \
	int unit_run_all(const char *s)                                                          \
	{                                                                                        \
		unsigned failed = 0;                                                             \
		for (unsigned i = 0; i < unit_ntests; i++) {                                     \
			memset(&unit_current, 0, sizeof(unit_current));                          \
			unit_tests[i].fn();                                                      \
			if (unit_current.failed) {                                               \
				failed++;                                                        \
				printf("FAIL %s/%s: %s\n", s, unit_tests[i].name,                \
				       unit_current.why);                                        \
			} else if (unit_current.skipped) {                                       \
				printf("SKIP %s/%s: %s\n", s, unit_tests[i].name,                \
				       unit_current.why);                                        \
			} else {                                                                 \
				printf("PASS %s/%s\n", s, unit_tests[i].name);                   \
			}                                                                        \
			fflush(stdout);                                                          \
		}                                                                                \
		return failed ? 1 : 0;                                                           \
	}                                                                                        \
	int main(void)                                                                           \
	{                                                                                        \
		return unit_run_all(suite);                                                      \
	}

#endif
