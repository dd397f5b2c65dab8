/*
 * A small encoder for AML, the byte code of ACPI definition blocks (ACPI 6.5
 * §20 "ACPI Machine Language Specification"), with just what a MicroVm's DSDT
 * needs: scopes, devices, named data objects, packages and resource templates.
 *
 * Constructs that start with a PkgLength (Scope, Device, Package, Buffer) are
 * written as a _begin/_end pair; _end measures what was written in between and
 * inserts the length in front of it, so the C nests like the ASL it produces:
 *
 *	size_t sb = aml_scope_begin(a, "\\_SB");
 *	size_t com1 = aml_device_begin(a, "COM1");
 *	aml_name_decl(a, "_HID");
 *	aml_eisa_id(a, "PNP0501");
 *	aml_device_end(a, com1);
 *	aml_scope_end(a, sb);
 *
 * Errors (no memory, a malformed name, a length AML cannot encode) are sticky:
 * the first is kept in a->error, later calls do nothing, and the caller checks
 * aml_error() once at the end.
 */
#ifndef PETREL_X86_AML_H
#define PETREL_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../../common/error.h"

struct aml {
	uint8_t *data;
	size_t len;
	size_t cap;
	int error;	     /* first error, a negative errno; 0 when fine */
	char error_msg[128]; /* what it was about */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* 0, or the first error (copied into err with its message). */
int aml_error(const struct aml *a, struct perr *err);

/* Raw bytes, for table headers and for callers that know the encoding. */
void aml_bytes(struct aml *a, const void *p, size_t n);

/*
 * PkgLength (§20.2.4): the length of a construct counting the PkgLength bytes
 * themselves, in 1 to 4 bytes. Encodes the PkgLength for `content` bytes that
 * follow it into out; returns how many bytes it took, 0 when content is too
 * long for AML (2^28 bytes).
 */
size_t aml_pkg_length_encode(size_t content, uint8_t out[4]);

/*
 * NameString (§20.2.2): an optional root '\' or parent '^' prefixes, then
 * dot-separated segments of 1-4 characters ([A-Z_][A-Z0-9_]*), padded with
 * '_' to four: "\\_SB.COM1", "_HID", "^VR00". "\\" alone is the root.
 */
void aml_name_string(struct aml *a, const char *path);

/* Data objects (§20.2.3): the shortest encoding of an integer (Zero, One,
 * Byte, Word, DWord, QWord), a NUL-terminated ASCII string, and an EISA id
 * such as "PNP0501" compressed into its 32-bit form (§6.1.5). */
void aml_integer(struct aml *a, uint64_t value);
void aml_string(struct aml *a, const char *s);
void aml_eisa_id(struct aml *a, const char *id);

/* Name (path, <the data object written next>) — DefName, §20.2.5.1. */
void aml_name_decl(struct aml *a, const char *path);

/*
 * The _begin calls return a mark for the matching _end. Marks stay valid
 * while inner constructs are opened and closed, as long as each _end comes
 * in reverse order of its _begin.
 */
size_t aml_scope_begin(struct aml *a, const char *path);
void aml_scope_end(struct aml *a, size_t mark);
size_t aml_device_begin(struct aml *a, const char *name);
void aml_device_end(struct aml *a, size_t mark);
/* Package (n_elements) { ... }; the caller writes exactly n_elements objects. */
size_t aml_package_begin(struct aml *a, uint8_t n_elements);
void aml_package_end(struct aml *a, size_t mark);

/*
 * ResourceTemplate () { ... }: a Buffer of resource descriptors (§6.4) closed
 * by an End Tag. _end writes the End Tag and the buffer size.
 */
size_t aml_resource_template_begin(struct aml *a);
void aml_resource_template_end(struct aml *a, size_t mark);

/* Memory32Fixed (ReadWrite or ReadOnly, base, length) — §6.4.3.4. */
void aml_resource_memory32_fixed(struct aml *a, bool writable, uint32_t base, uint32_t length);
/* IO (Decode16, base, base, 1, length): a fixed range of I/O ports — §6.4.2.5. */
void aml_resource_io(struct aml *a, uint16_t base, uint8_t length);
/* IRQNoFlags () {irq}: one ISA IRQ, edge-triggered, active-high — §6.4.2.1. */
void aml_resource_irq(struct aml *a, uint8_t irq);

/* Flags of the Extended Interrupt descriptor (§6.4.3.6); 0 means
 * level-triggered, active-high, exclusive. The descriptor is always a
 * consumer (the device uses the interrupt). */
#define AML_IRQ_EDGE	   (1u << 1)
#define AML_IRQ_ACTIVE_LOW (1u << 2)
#define AML_IRQ_SHARED	   (1u << 3)
/* Interrupt (ResourceConsumer, ...) {gsi}. */
void aml_resource_interrupt(struct aml *a, unsigned flags, uint32_t gsi);

#endif
