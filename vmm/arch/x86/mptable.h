/*
 * Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
 * finds its CPUs, its IOAPIC and the ISA interrupt wiring.
 */
#ifndef PETREL_X86_MPTABLE_H
#define PETREL_X86_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "../../../common/error.h"

#define X86_MP_APIC_VERSION   0x14 /* KVM's in-kernel LAPIC */
#define X86_MP_IOAPIC_VERSION 0x11 /* KVM's in-kernel IOAPIC, 24 pins */
#define X86_MP_ISA_IRQS	      16

/* Bytes x86_mptable_build writes for ncpus processors. */
size_t x86_mptable_size(unsigned ncpus);
/* The IOAPIC's id: the first one after the CPUs' APIC ids 0..ncpus-1. */
unsigned x86_mptable_ioapic_id(unsigned ncpus);
/*
 * Writes the floating pointer at buf (guest address gpa, 16-byte aligned) and
 * the configuration table right after it: ncpus processors (APIC ids 0..n-1,
 * CPU 0 the bootstrap processor), one ISA bus, the IOAPIC, ISA IRQs 0-15
 * wired 1:1 to IOAPIC pins (KVM's default GSI routing), ExtINT on LINT0 and
 * NMI on LINT1. -EINVAL for ncpus outside 1..254 or a short buffer.
 */
int x86_mptable_build(void *buf, size_t size, uint64_t gpa, unsigned ncpus, struct perr *err);

#endif
