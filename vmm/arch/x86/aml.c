#include "aml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes and prefixes (§20.3, §20.2). */
#define AML_ZERO_OP	       0x00
#define AML_ONE_OP	       0x01
#define AML_NAME_OP	       0x08
#define AML_BYTE_PREFIX	       0x0a
#define AML_WORD_PREFIX	       0x0b
#define AML_DWORD_PREFIX       0x0c
#define AML_STRING_PREFIX      0x0d
#define AML_QWORD_PREFIX       0x0e
#define AML_SCOPE_OP	       0x10
#define AML_BUFFER_OP	       0x11
#define AML_PACKAGE_OP	       0x12
#define AML_DUAL_NAME_PREFIX   0x2e
#define AML_MULTI_NAME_PREFIX  0x2f
#define AML_EXT_OP_PREFIX      0x5b
#define AML_EXT_DEVICE_OP      0x82
#define AML_ROOT_CHAR	       0x5c
#define AML_PARENT_PREFIX_CHAR 0x5e
#define AML_NULL_NAME	       0x00

/* Resource descriptor tags (§6.4.2 small, §6.4.3 large). */
#define RES_IRQ_NO_FLAGS     0x22 /* small item 0x04, length 2 */
#define RES_IO		     0x47 /* small item 0x08, length 7 */
#define RES_END_TAG	     0x79 /* small item 0x0f, length 1 */
#define RES_MEMORY32_FIXED   0x86
#define RES_EXTENDED_IRQ     0x89
#define RES_IRQ_CONSUMER     (1u << 0)
#define RES_IO_DECODE16	     (1u << 0)
#define RES_MEMORY_WRITEABLE (1u << 0)

/* The largest value a 4-byte PkgLength holds (28 bits). */
#define AML_PKG_LENGTH_MAX ((1u << 28) - 1)

__attribute__((format(printf, 3, 4))) static void aml_fail(struct aml *a, int code, const char *fmt,
							   ...)
{
	if (a->error)
		return;
	a->error = code;
	va_list ap;
	va_start(ap, fmt);
	/* The analyzer does not follow va_start here (it says the same of log.c). */
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(a->error_msg, sizeof(a->error_msg), fmt, ap);
	va_end(ap);
}

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->data);
	aml_init(a);
}

int aml_error(const struct aml *a, struct perr *err)
{
	if (!a->error)
		return 0;
	return perr_setx(err, a->error, "%s", a->error_msg);
}

static bool aml_reserve(struct aml *a, size_t extra)
{
	if (a->error)
		return false;
	if (extra <= a->cap - a->len)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap - a->len < extra) {
		if (cap > SIZE_MAX / 2) {
			aml_fail(a, -ENOMEM, "AML: out of memory");
			return false;
		}
		cap *= 2;
	}
	uint8_t *data = realloc(a->data, cap);
	if (!data) {
		aml_fail(a, -ENOMEM, "AML: out of memory");
		return false;
	}
	a->data = data;
	a->cap = cap;
	return true;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (!aml_reserve(a, n))
		return;
	memcpy(a->data + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le16(struct aml *a, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	aml_bytes(a, b, sizeof(b));
}

static void aml_le32(struct aml *a, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	aml_bytes(a, b, sizeof(b));
}

/* Inserts n bytes at pos, moving what follows; this is how a construct gets
 * its PkgLength once its content is known. */
static void aml_insert(struct aml *a, size_t pos, const uint8_t *p, size_t n)
{
	if (a->error)
		return;
	if (pos > a->len) {
		aml_fail(a, -EINVAL, "AML: construct closed out of order");
		return;
	}
	if (!aml_reserve(a, n))
		return;
	memmove(a->data + pos + n, a->data + pos, a->len - pos);
	memcpy(a->data + pos, p, n);
	a->len += n;
}

size_t aml_pkg_length_encode(size_t content, uint8_t out[4])
{
	/* One byte holds lengths up to 63 in bits 0-5. Longer ones put the
	 * count of following bytes in bits 6-7 of the lead byte, the low
	 * nibble in bits 0-3, and the rest 8 bits per following byte. */
	if (content + 1 <= 0x3f) {
		out[0] = (uint8_t)(content + 1);
		return 1;
	}
	for (size_t n = 2; n <= 4; n++) {
		size_t total = content + n;
		if (total >= ((size_t)1 << (4 + 8 * (n - 1))))
			continue;
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (size_t i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return n;
	}
	return 0;
}

/* Puts the PkgLength of everything written since mark in front of it. */
static void aml_close_pkg(struct aml *a, size_t mark)
{
	if (a->error)
		return;
	if (mark > a->len) {
		aml_fail(a, -EINVAL, "AML: construct closed out of order");
		return;
	}
	uint8_t pkg[4];
	size_t n = aml_pkg_length_encode(a->len - mark, pkg);
	if (!n) {
		aml_fail(a, -E2BIG, "AML: a package of %zu bytes is longer than %u", a->len - mark,
			 AML_PKG_LENGTH_MAX);
		return;
	}
	aml_insert(a, mark, pkg, n);
}

static bool aml_name_char_ok(char c, bool lead)
{
	if ((c >= 'A' && c <= 'Z') || c == '_')
		return true;
	return !lead && c >= '0' && c <= '9';
}

/* One NameSeg: 1-4 characters, padded with '_' (§20.2.2). */
static void aml_name_seg(struct aml *a, const char *path, const char *seg, size_t n)
{
	if (n < 1 || n > 4) {
		aml_fail(a, -EINVAL, "AML name \"%s\": segments are 1 to 4 characters", path);
		return;
	}
	char out[4] = {'_', '_', '_', '_'};
	for (size_t i = 0; i < n; i++) {
		if (!aml_name_char_ok(seg[i], i == 0)) {
			aml_fail(a, -EINVAL, "AML name \"%s\": bad character '%c'", path, seg[i]);
			return;
		}
		out[i] = seg[i];
	}
	aml_bytes(a, out, sizeof(out));
}

void aml_name_string(struct aml *a, const char *path)
{
	const char *p = path;
	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == '^') {
			aml_byte(a, AML_PARENT_PREFIX_CHAR);
			p++;
		}
	}
	if (!*p) {
		if (p == path)
			aml_fail(a, -EINVAL, "AML name: empty");
		aml_byte(a, AML_NULL_NAME);
		return;
	}
	size_t nsegs = 1;
	for (const char *q = p; *q; q++)
		nsegs += *q == '.';
	if (nsegs > 255) {
		aml_fail(a, -EINVAL, "AML name \"%s\": more than 255 segments", path);
		return;
	}
	if (nsegs == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nsegs);
	}
	while (*p) {
		size_t n = strcspn(p, ".");
		aml_name_seg(a, path, p, n);
		p += n;
		if (*p == '.' && !*++p)
			aml_fail(a, -EINVAL, "AML name \"%s\": ends with '.'", path);
	}
}

void aml_integer(struct aml *a, uint64_t value)
{
	if (value == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (value == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (value <= UINT8_MAX) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_byte(a, (uint8_t)value);
	} else if (value <= UINT16_MAX) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_le16(a, (uint16_t)value);
	} else if (value <= UINT32_MAX) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_le32(a, (uint32_t)value);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_le32(a, (uint32_t)value);
		aml_le32(a, (uint32_t)(value >> 32));
	}
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7f) {
			aml_fail(a, -EINVAL, "AML string: not ASCII");
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisa_id(struct aml *a, const char *id)
{
	/* Three letters of 5 bits each ('A' = 1), then four hex digits of
	 * 4 bits each, stored big-endian in a DWord (§6.1.5 _HID). */
	bool ok = strlen(id) == 7;
	for (int i = 0; ok && i < 3; i++)
		ok = id[i] >= 'A' && id[i] <= 'Z';
	for (int i = 3; ok && i < 7; i++)
		ok = hex_digit(id[i]) >= 0;
	if (!ok) {
		aml_fail(a, -EINVAL, "EISA id \"%s\": expected three letters and four hex digits",
			 id);
		return;
	}
	unsigned c0 = (unsigned)(id[0] - '@'), c1 = (unsigned)(id[1] - '@');
	unsigned c2 = (unsigned)(id[2] - '@');
	uint8_t b[4] = {
	    (uint8_t)((c0 << 2) | (c1 >> 3)),
	    (uint8_t)(((c1 & 7) << 5) | c2),
	    (uint8_t)((hex_digit(id[3]) << 4) | hex_digit(id[4])),
	    (uint8_t)((hex_digit(id[5]) << 4) | hex_digit(id[6])),
	};
	aml_integer(a, (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
			   (uint32_t)b[3] << 24);
}

void aml_name_decl(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_name_string(a, path);
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	size_t mark = a->len;
	aml_name_string(a, path);
	return mark;
}

void aml_scope_end(struct aml *a, size_t mark)
{
	aml_close_pkg(a, mark);
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_EXT_DEVICE_OP);
	size_t mark = a->len;
	aml_name_string(a, name);
	return mark;
}

void aml_device_end(struct aml *a, size_t mark)
{
	aml_close_pkg(a, mark);
}

size_t aml_package_begin(struct aml *a, uint8_t n_elements)
{
	aml_byte(a, AML_PACKAGE_OP);
	size_t mark = a->len;
	aml_byte(a, n_elements);
	return mark;
}

void aml_package_end(struct aml *a, size_t mark)
{
	aml_close_pkg(a, mark);
}

size_t aml_resource_template_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return a->len;
}

void aml_resource_template_end(struct aml *a, size_t mark)
{
	/* A zero checksum in the End Tag means "treat as valid" (§6.4.2.9). */
	uint8_t end_tag[2] = {RES_END_TAG, 0};
	aml_bytes(a, end_tag, sizeof(end_tag));
	if (a->error)
		return;
	if (mark > a->len) {
		aml_fail(a, -EINVAL, "AML: construct closed out of order");
		return;
	}
	/* DefBuffer := BufferOp PkgLength BufferSize ByteList: the size is an
	 * integer object, encoded like any other, in front of the bytes. */
	struct aml size = {0};
	aml_integer(&size, a->len - mark);
	if (size.error) {
		aml_fail(a, size.error, "%s", size.error_msg);
		aml_free(&size);
		return;
	}
	aml_insert(a, mark, size.data, size.len);
	aml_free(&size);
	aml_close_pkg(a, mark);
}

void aml_resource_memory32_fixed(struct aml *a, bool writable, uint32_t base, uint32_t length)
{
	aml_byte(a, RES_MEMORY32_FIXED);
	aml_le16(a, 9);
	aml_byte(a, writable ? RES_MEMORY_WRITEABLE : 0);
	aml_le32(a, base);
	aml_le32(a, length);
}

void aml_resource_io(struct aml *a, uint16_t base, uint8_t length)
{
	aml_byte(a, RES_IO);
	aml_byte(a, RES_IO_DECODE16);
	aml_le16(a, base); /* minimum base */
	aml_le16(a, base); /* maximum base: the range does not move */
	aml_byte(a, 1);	   /* alignment */
	aml_byte(a, length);
}

void aml_resource_irq(struct aml *a, uint8_t irq)
{
	if (irq > 15) {
		aml_fail(a, -EINVAL, "IRQ descriptor: ISA IRQ %u is not 0-15", irq);
		return;
	}
	aml_byte(a, RES_IRQ_NO_FLAGS);
	aml_le16(a, (uint16_t)(1u << irq));
}

void aml_resource_interrupt(struct aml *a, unsigned flags, uint32_t gsi)
{
	aml_byte(a, RES_EXTENDED_IRQ);
	aml_le16(a, 6); /* flags, count and one interrupt number; no resource source */
	aml_byte(a, (uint8_t)(RES_IRQ_CONSUMER |
			      (flags & (AML_IRQ_EDGE | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED))));
	aml_byte(a, 1);
	aml_le32(a, gsi);
}
