/*
 * petrel-vmm's command line: every range edge, every bad syntax, and the
 * exact text of the messages a user reads.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vmm/cli/config.h"
#include "vmm/cli/keyval.h"

/* One config at a time: it is large (paths are PATH_MAX). */
static struct vmm_config cfg;
static struct perr err;

static int parse_list(const char *const *args)
{
	const char *argv[128] = {"petrel-vmm"};
	int argc = 1;
	while (args[argc - 1] && argc < 127) {
		argv[argc] = args[argc - 1];
		argc++;
	}
	argv[argc] = NULL;
	return vmm_config_parse(argc, (char *const *)argv, &cfg, &err);
}

/* PARSE("-smp", "2"): exactly these arguments. PARSE_K: with a kernel. */
#define PARSE(...)   parse_list((const char *const[]){__VA_ARGS__, NULL})
#define PARSE_K(...) PARSE("-kernel", "/vmlinux", __VA_ARGS__)

#define ASSERT_OK(rc)                                                          \
	do {                                                                   \
		if ((rc) != 0)                                                 \
			UNIT_FAIL("parse failed (%d): %.300s", (rc), err.msg); \
	} while (0)

#define ASSERT_ERR(rc, text)                                                 \
	do {                                                                 \
		int rc_ = (rc);                                              \
		if (rc_ >= 0)                                                \
			UNIT_FAIL("parse succeeded, expected \"%s\"", text); \
		UNIT_ASSERT_EQ(err.code, rc_);                               \
		ASSERT_STREQ(err.msg, text);                                 \
	} while (0)

#define ASSERT_ERR_HAS(rc, text)                                                           \
	do {                                                                               \
		int rc_ = (rc);                                                            \
		if (rc_ >= 0)                                                              \
			UNIT_FAIL("parse succeeded, expected an error with \"%s\"", text); \
		ASSERT_CONTAINS(err.msg, text);                                            \
	} while (0)

/* UNIT_ASSERT_STREQ with a bounded echo: gcc's -Wformat-truncation rejects
 * printing PATH_MAX fields whole into the 512-byte failure text. */
#define ASSERT_STREQ(a, b)                                                                  \
	do {                                                                                \
		const char *s_a_ = (a), *s_b_ = (b);                                        \
		if (strcmp(s_a_, s_b_) != 0)                                                \
			UNIT_FAIL("%s is \"%.200s\", expected \"%.200s\"", #a, s_a_, s_b_); \
	} while (0)

#define ASSERT_CONTAINS(hay, needle)                                                              \
	do {                                                                                      \
		const char *c_h_ = (hay), *c_n_ = (needle);                                       \
		if (!strstr(c_h_, c_n_))                                                          \
			UNIT_FAIL("%s is \"%.300s\", expected to contain \"%.100s\"", #hay, c_h_, \
				  c_n_);                                                          \
	} while (0)

static char *repeat(char c, size_t n)
{
	static char buf[8192];
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* ---- the seed's minimal VM ---- */

UNIT_TEST(test_minimal_example_parses_into_expected_config)
{
	ASSERT_OK(PARSE("-name", "demo", "-machine", "microvm", "-smp", "1", "-m", "256", "-kernel",
			"build/guest/vmlinux", "-append",
			"console=ttyS0 reboot=k panic=1 root=/dev/vda rw", "-drive",
			"id=rootfs,file=build/rootfs.ext4", "-device",
			"virtio-blk-device,drive=rootfs", "-qmp",
			"unix:/run/petrel/demo.sock,server,nowait", "-serial", "stdio"));
	UNIT_ASSERT_EQ(cfg.action, VMM_ACTION_RUN);
	ASSERT_STREQ(cfg.name, "demo");
	UNIT_ASSERT_EQ(cfg.machine, VMM_MACHINE_MICROVM);
	UNIT_ASSERT(cfg.dump_guest_core);
	UNIT_ASSERT(!cfg.mem_share);
	UNIT_ASSERT_EQ(cfg.cpus, 1);
	UNIT_ASSERT_EQ(cfg.mem_bytes, 256ull << 20);
	ASSERT_STREQ(cfg.kernel, "build/guest/vmlinux");
	ASSERT_STREQ(cfg.initrd, "");
	ASSERT_STREQ(cfg.append, "console=ttyS0 reboot=k panic=1 root=/dev/vda rw");
	UNIT_ASSERT_EQ(cfg.n_drives, 1);
	ASSERT_STREQ(cfg.drives[0].id, "rootfs");
	ASSERT_STREQ(cfg.drives[0].file, "build/rootfs.ext4");
	UNIT_ASSERT(!cfg.drives[0].readonly);
	UNIT_ASSERT(cfg.drives[0].direct);
	UNIT_ASSERT_EQ(cfg.drives[0].iops_total, 0);
	UNIT_ASSERT_EQ(cfg.n_blks, 1);
	ASSERT_STREQ(cfg.blks[0].drive, "rootfs");
	ASSERT_STREQ(cfg.blks[0].id, "rootfs");
	ASSERT_STREQ(cfg.blks[0].serial, "");
	ASSERT_STREQ(cfg.blks[0].iothread, "");
	UNIT_ASSERT_EQ(cfg.n_chardevs, 0);
	UNIT_ASSERT_EQ(cfg.serial, VMM_SERIAL_STDIO);
	ASSERT_STREQ(cfg.qmp_path, "/run/petrel/demo.sock");
	UNIT_ASSERT(!cfg.log_set);
	ASSERT_STREQ(cfg.pidfile, "");
	UNIT_ASSERT(!cfg.daemonize);
	UNIT_ASSERT(!cfg.disable_seccomp);
	UNIT_ASSERT(!cfg.start_paused);
}

UNIT_TEST(test_defaults_with_only_a_kernel)
{
	ASSERT_OK(PARSE("-kernel", "/vmlinux"));
	UNIT_ASSERT_EQ(cfg.cpus, 1);
	UNIT_ASSERT_EQ(cfg.mem_bytes, 256ull << 20);
	UNIT_ASSERT_EQ(cfg.machine, VMM_MACHINE_MICROVM);
	UNIT_ASSERT(cfg.dump_guest_core);
	UNIT_ASSERT_EQ(cfg.serial, VMM_SERIAL_NONE);
	ASSERT_STREQ(cfg.qmp_path, "");
	ASSERT_STREQ(cfg.name, "");
	UNIT_ASSERT_EQ(err.code, 0);
}

UNIT_TEST(test_kernel_is_required)
{
	ASSERT_ERR(PARSE("-smp", "1"),
		   "-kernel: missing; a guest kernel is required (-kernel PATH)");
	ASSERT_ERR(parse_list((const char *const[]){NULL}),
		   "-kernel: missing; a guest kernel is required (-kernel PATH)");
}

UNIT_TEST(test_kernel_rejects_empty_path)
{
	ASSERT_ERR(PARSE("-kernel", ""), "-kernel: empty path");
}

UNIT_TEST(test_kernel_rejects_path_longer_than_path_max)
{
	ASSERT_ERR_HAS(PARSE("-kernel", repeat('k', PATH_MAX)), "-kernel: path is too long");
	ASSERT_OK(PARSE("-kernel", repeat('k', PATH_MAX - 1)));
}

UNIT_TEST(test_initrd_is_stored)
{
	ASSERT_OK(PARSE_K("-initrd", "/boot/initrd.cpio.gz"));
	ASSERT_STREQ(cfg.initrd, "/boot/initrd.cpio.gz");
}

/* ---- -smp ---- */

UNIT_TEST(test_smp_accepts_1)
{
	ASSERT_OK(PARSE_K("-smp", "1"));
	UNIT_ASSERT_EQ(cfg.cpus, 1);
}

UNIT_TEST(test_smp_accepts_254)
{
	ASSERT_OK(PARSE_K("-smp", "254"));
	UNIT_ASSERT_EQ(cfg.cpus, 254);
}

UNIT_TEST(test_smp_rejects_0)
{
	ASSERT_ERR(PARSE_K("-smp", "0"), "-smp: 0 is out of range; allowed: 1 to 254");
}

UNIT_TEST(test_smp_rejects_255)
{
	ASSERT_ERR(PARSE_K("-smp", "255"), "-smp: 255 is out of range; allowed: 1 to 254");
	UNIT_ASSERT_EQ(err.code, -EINVAL);
}

UNIT_TEST(test_smp_rejects_junk)
{
	ASSERT_ERR(PARSE_K("-smp", "4x"), "-smp: 4x is not a decimal number; allowed: 1 to 254");
	static const char *const junk[] = {"x", "-1", "+2", " 2", "2 ", "0x10", "1.5", "2e1"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		int rc = PARSE_K("-smp", junk[i]);
		if (rc != -EINVAL)
			UNIT_FAIL("-smp '%s' gave %d (%.300s)", junk[i], rc, err.msg);
		ASSERT_CONTAINS(err.msg, "is not a decimal number");
	}
	ASSERT_ERR(PARSE_K("-smp", ""), "-smp: empty argument");
}

UNIT_TEST(test_smp_rejects_values_that_wrap_64_bits)
{
	ASSERT_ERR(PARSE_K("-smp", "18446744073709551616"),
		   "-smp: 18446744073709551616 is out of range; allowed: 1 to 254");
	ASSERT_ERR(PARSE_K("-smp", "18446744073709551617"),
		   "-smp: 18446744073709551617 is out of range; allowed: 1 to 254");
	ASSERT_ERR_HAS(PARSE_K("-smp", "4294967297"), "is out of range");
}

UNIT_TEST(test_smp_accepts_cpus_key)
{
	ASSERT_OK(PARSE_K("-smp", "cpus=4"));
	UNIT_ASSERT_EQ(cfg.cpus, 4);
	ASSERT_ERR(PARSE_K("-smp", "cpus=255"),
		   "-smp: cpus=255 is out of range; allowed: 1 to 254");
}

UNIT_TEST(test_smp_maxcpus_must_equal_cpus)
{
	ASSERT_OK(PARSE_K("-smp", "2,maxcpus=2"));
	UNIT_ASSERT_EQ(cfg.cpus, 2);
	ASSERT_ERR(PARSE_K("-smp", "2,maxcpus=4"),
		   "-smp: maxcpus=4 differs from cpus=2; allowed: maxcpus equal to cpus (microvm "
		   "has no CPU hotplug)");
	ASSERT_OK(PARSE_K("-smp", "maxcpus=3"));
	UNIT_ASSERT_EQ(cfg.cpus, 3);
}

UNIT_TEST(test_smp_checks_topology)
{
	ASSERT_OK(PARSE_K("-smp", "4,sockets=2,cores=2,threads=1"));
	UNIT_ASSERT_EQ(cfg.cpus, 4);
	ASSERT_OK(PARSE_K("-smp", "4,sockets=1"));
	ASSERT_OK(PARSE_K("-smp", "8,cores=2,threads=2,dies=1,clusters=1"));
	ASSERT_ERR(PARSE_K("-smp", "4,sockets=3,cores=1"),
		   "-smp: sockets (3) * dies (1) * clusters (1) * cores (1) * threads (1) = 3; "
		   "allowed: a product equal to cpus (4)");
	ASSERT_ERR_HAS(PARSE_K("-smp", "4,threads=3"), "allowed: a product equal to cpus (4)");
}

UNIT_TEST(test_smp_rejects_unknown_and_repeated_keys)
{
	ASSERT_ERR(PARSE_K("-smp", "2,nodes=1"),
		   "-smp: unknown key 'nodes'; allowed: cpus, maxcpus, sockets, dies, clusters, "
		   "cores, threads");
	ASSERT_ERR(PARSE_K("-smp", "2,cpus=2"), "-smp: key 'cpus' given twice; allowed once");
	ASSERT_ERR(PARSE_K("-smp", "maxcpus=2,maxcpus=2"),
		   "-smp: key 'maxcpus' given twice; allowed once");
	ASSERT_ERR(PARSE_K("-smp", "sockets=1"), "-smp: missing key 'cpus'");
}

UNIT_TEST(test_smp_given_twice_is_rejected)
{
	ASSERT_ERR(PARSE_K("-smp", "1", "-smp", "2"), "-smp: given twice; allowed once");
}

/* ---- -m ---- */

UNIT_TEST(test_mem_rejects_255M)
{
	ASSERT_ERR(PARSE_K("-m", "255M"),
		   "-m: 255M is below the minimum of 256 MiB; allowed: 256 MiB to 512 GiB");
}

UNIT_TEST(test_mem_rejects_128M_with_full_message)
{
	ASSERT_ERR(PARSE_K("-m", "128M"),
		   "-m: 128M is below the minimum of 256 MiB; allowed: 256 MiB to 512 GiB");
}

UNIT_TEST(test_mem_accepts_256M)
{
	ASSERT_OK(PARSE_K("-m", "256M"));
	UNIT_ASSERT_EQ(cfg.mem_bytes, 256ull << 20);
}

UNIT_TEST(test_mem_accepts_512G)
{
	ASSERT_OK(PARSE_K("-m", "512G"));
	UNIT_ASSERT_EQ(cfg.mem_bytes, 512ull << 30);
}

UNIT_TEST(test_mem_rejects_513G)
{
	ASSERT_ERR(PARSE_K("-m", "513G"),
		   "-m: 513G is above the maximum of 512 GiB; allowed: 256 MiB to 512 GiB");
	ASSERT_ERR_HAS(PARSE_K("-m", "524289"), "is above the maximum of 512 GiB");
	ASSERT_OK(PARSE_K("-m", "524288"));
}

UNIT_TEST(test_mem_bare_number_is_mib)
{
	ASSERT_OK(PARSE_K("-m", "1024"));
	UNIT_ASSERT_EQ(cfg.mem_bytes, 1024ull << 20);
	ASSERT_ERR_HAS(PARSE_K("-m", "255"), "-m: 255 is below the minimum of 256 MiB");
}

UNIT_TEST(test_mem_1G_equals_1024M)
{
	ASSERT_OK(PARSE_K("-m", "1G"));
	uint64_t g = cfg.mem_bytes;
	ASSERT_OK(PARSE_K("-m", "1024M"));
	UNIT_ASSERT_EQ(cfg.mem_bytes, g);
	UNIT_ASSERT_EQ(g, 1ull << 30);
}

UNIT_TEST(test_mem_accepts_units_in_any_case)
{
	static const char *const ok[] = {"1024m", "1024MiB", "1024mib", "1g", "1GiB", "1gib"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (PARSE_K("-m", ok[i]) != 0)
			UNIT_FAIL("-m %s: %.300s", ok[i], err.msg);
		UNIT_ASSERT_EQ(cfg.mem_bytes, 1ull << 30);
	}
}

UNIT_TEST(test_mem_accepts_size_key)
{
	ASSERT_OK(PARSE_K("-m", "size=2G"));
	UNIT_ASSERT_EQ(cfg.mem_bytes, 2ull << 30);
}

UNIT_TEST(test_mem_rejects_overflow)
{
	ASSERT_ERR(PARSE_K("-m", "18014398509481984G"),
		   "-m: 18014398509481984G is above the maximum of 512 GiB; allowed: 256 MiB to "
		   "512 GiB");
	ASSERT_ERR_HAS(PARSE_K("-m", "17592186044416M"), "is above the maximum");
	ASSERT_ERR_HAS(PARSE_K("-m", "99999999999999999999999"), "is above the maximum");
}

UNIT_TEST(test_mem_rejects_junk)
{
	ASSERT_ERR(PARSE_K("-m", "1.5G"),
		   "-m: 1.5G is not a size; allowed: an integer with an optional unit M, MiB, G or "
		   "GiB (none means MiB), 256 MiB to 512 GiB");
	static const char *const junk[] = {"G", "1T", "512K", "-1G", " 1G", "1 G", "0x400", "1GB"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		if (PARSE_K("-m", junk[i]) != -EINVAL)
			UNIT_FAIL("-m '%s' was accepted", junk[i]);
		ASSERT_CONTAINS(err.msg, "is not a size");
	}
}

/* ---- -name ---- */

UNIT_TEST(test_name_accepts_255_bytes)
{
	ASSERT_OK(PARSE_K("-name", repeat('n', 255)));
	UNIT_ASSERT_EQ(strlen(cfg.name), 255);
}

UNIT_TEST(test_name_rejects_256_bytes)
{
	ASSERT_ERR(PARSE_K("-name", repeat('n', 256)),
		   "-name: name is too long (256 bytes); allowed: 1 to 255 bytes");
}

UNIT_TEST(test_name_rejects_empty)
{
	ASSERT_ERR(PARSE_K("-name", ""), "-name: empty name (0 bytes); allowed: 1 to 255 bytes");
}

UNIT_TEST(test_name_rejects_control_characters)
{
	ASSERT_ERR_HAS(PARSE_K("-name", "a\nb"), "control character");
	ASSERT_OK(PARSE_K("-name", "web server, 2"));
	ASSERT_STREQ(cfg.name, "web server, 2");
}

/* ---- -machine ---- */

UNIT_TEST(test_machine_accepts_microvm_spellings)
{
	static const char *const ok[] = {"microvm", "MicroVm", "type=microvm", "type=MICROVM"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (PARSE_K("-machine", ok[i]) != 0)
			UNIT_FAIL("-machine %s: %.300s", ok[i], err.msg);
	UNIT_ASSERT_EQ(cfg.machine, VMM_MACHINE_MICROVM);
}

UNIT_TEST(test_machine_rejects_other_types)
{
	ASSERT_ERR(PARSE_K("-machine", "q35"), "-machine: q35 is not supported; allowed: microvm");
	ASSERT_ERR(PARSE_K("-machine", "type=none"),
		   "-machine: type=none is not supported; allowed: microvm");
}

UNIT_TEST(test_machine_type_is_required_when_machine_is_given)
{
	ASSERT_ERR(PARSE_K("-machine", "mem-share=on"), "-machine: missing key 'type'");
}

UNIT_TEST(test_machine_options)
{
	ASSERT_OK(PARSE_K("-machine", "microvm,dump-guest-core=off,mem-share=on,accel=kvm"));
	UNIT_ASSERT(!cfg.dump_guest_core);
	UNIT_ASSERT(cfg.mem_share);
	ASSERT_ERR(PARSE_K("-machine", "microvm,accel=tcg"),
		   "-machine: accel=tcg is not supported; allowed: kvm");
	ASSERT_ERR(
	    PARSE_K("-machine", "microvm,usb=off"),
	    "-machine: unknown key 'usb'; allowed: type, dump-guest-core, mem-share, acpi, accel");
}

UNIT_TEST(test_machine_acpi_defaults_off_and_can_be_enabled)
{
	ASSERT_OK(PARSE_K("-machine", "microvm"));
	UNIT_ASSERT(!cfg.acpi);
	ASSERT_OK(PARSE_K("-machine", "microvm,acpi=on"));
	UNIT_ASSERT(cfg.acpi);
}

/* ---- -append ---- */

UNIT_TEST(test_append_accepts_1536_bytes)
{
	ASSERT_OK(PARSE_K("-append", repeat('a', VMM_APPEND_MAX)));
	UNIT_ASSERT_EQ(strlen(cfg.append), VMM_APPEND_MAX);
}

UNIT_TEST(test_append_rejects_1537_bytes)
{
	ASSERT_ERR(PARSE_K("-append", repeat('a', VMM_APPEND_MAX + 1)),
		   "-append: the command line is too long (1537 bytes); allowed: at most 1536 (the "
		   "rest of 2048 is kept for the virtio_mmio.device= entries)");
}

UNIT_TEST(test_append_leaves_room_for_11_mmio_devices)
{
	/* The longest entry the VMM may add, for each of the 11 slots. */
	size_t entry = strlen(" virtio_mmio.device=4K@0xd000a000:15");
	UNIT_ASSERT(VMM_APPEND_MAX + VMM_MICROVM_MAX_MMIO * (entry + 4) + 1 <= VMM_CMDLINE_MAX);
}

/* ---- -drive ---- */

UNIT_TEST(test_drive_accepts_every_key)
{
	static const char every_key[] = "id=data,file=/img/data.raw,readonly=on,direct=off,"
					"throttling.iops-total=200,if=none,format=raw";
	ASSERT_OK(PARSE_K("-drive", every_key));
	UNIT_ASSERT_EQ(cfg.n_drives, 1);
	const struct vmm_drive *d = vmm_config_find_drive(&cfg, "data");
	UNIT_ASSERT(d != NULL);
	ASSERT_STREQ(d->file, "/img/data.raw");
	UNIT_ASSERT(d->readonly);
	UNIT_ASSERT(!d->direct);
	UNIT_ASSERT_EQ(d->iops_total, 200);
	UNIT_ASSERT(vmm_config_find_drive(&cfg, "other") == NULL);
}

UNIT_TEST(test_drive_requires_id_and_file)
{
	ASSERT_ERR(PARSE_K("-drive", "file=/img"), "-drive: missing key 'id'");
	ASSERT_ERR(PARSE_K("-drive", "id=a"), "-drive: missing key 'file'");
}

UNIT_TEST(test_drive_rejects_unknown_key)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img,cache=none"),
		   "-drive: unknown key 'cache'; allowed: id, file, readonly, direct, "
		   "throttling.iops-total, if, format");
}

UNIT_TEST(test_drive_rejects_key_given_twice)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img,file=/img2"),
		   "-drive: key 'file' given twice; allowed once");
}

UNIT_TEST(test_drive_rejects_empty_values)
{
	ASSERT_ERR(PARSE_K("-drive", "id=,file=/img"), "-drive: empty value for key 'id'");
	ASSERT_ERR(PARSE_K("-drive", "id=a,file="), "-drive: empty value for key 'file'");
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img,"),
		   "-drive: empty item in 'id=a,file=/img,'; separate items with one ','");
	ASSERT_ERR(PARSE_K("-drive", ""), "-drive: empty argument");
	ASSERT_ERR(PARSE_K("-drive", "id=a,file"), "-drive: key 'file' needs a value (file=...)");
}

UNIT_TEST(test_drive_rejects_duplicate_id)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/1", "-drive", "id=a,file=/2"),
		   "-drive: duplicate id 'a'; each drive needs its own id");
}

UNIT_TEST(test_drive_rejects_bad_id)
{
	ASSERT_ERR(PARSE_K("-drive", "id=1disk,file=/img"),
		   "-drive: id=1disk is not a valid id; allowed: a letter, then letters, digits, "
		   "'-', '.', '_', at most 63 characters");
	ASSERT_ERR_HAS(PARSE_K("-drive", "id=a b,file=/img"), "is not a valid id");
	ASSERT_ERR_HAS(PARSE_K("-drive", "id=a/b,file=/img"), "is not a valid id");
	char id[256];
	snprintf(id, sizeof(id), "id=%.150s,file=/img", repeat('d', 63));
	ASSERT_OK(PARSE_K("-drive", id));
	snprintf(id, sizeof(id), "id=%.150s,file=/img", repeat('d', 64));
	ASSERT_ERR_HAS(PARSE_K("-drive", id), "is not a valid id");
}

UNIT_TEST(test_drive_iops_total_accepts_1000000)
{
	ASSERT_OK(PARSE_K("-drive", "id=a,file=/img,throttling.iops-total=1000000"));
	UNIT_ASSERT_EQ(cfg.drives[0].iops_total, 1000000);
	ASSERT_OK(PARSE_K("-drive", "id=a,file=/img,throttling.iops-total=0"));
	UNIT_ASSERT_EQ(cfg.drives[0].iops_total, 0);
}

UNIT_TEST(test_drive_iops_total_rejects_1000001)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img,throttling.iops-total=1000001"),
		   "-drive: throttling.iops-total=1000001 is out of range; allowed: 0 to 1000000");
	ASSERT_ERR_HAS(PARSE_K("-drive", "id=a,file=/img,throttling.iops-total=-1"),
		       "is not a decimal number");
}

UNIT_TEST(test_drive_booleans)
{
	static const struct {
		const char *word;
		bool value;
	} cases[] = {{"on", true},  {"off", false}, {"true", true}, {"false", false},
		     {"yes", true}, {"no", false},  {"ON", true},   {"False", false}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char arg[64];
		snprintf(arg, sizeof(arg), "id=a,file=/img,readonly=%s", cases[i].word);
		if (PARSE_K("-drive", arg) != 0)
			UNIT_FAIL("readonly=%s: %.300s", cases[i].word, err.msg);
		UNIT_ASSERT_EQ(cfg.drives[0].readonly, cases[i].value);
	}
	ASSERT_OK(PARSE_K("-drive", "id=a,file=/img,readonly"));
	UNIT_ASSERT(cfg.drives[0].readonly);
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img,readonly=1"),
		   "-drive: readonly=1 is not a boolean; allowed: on, off, true, false, yes, no");
}

UNIT_TEST(test_drive_rejects_other_formats)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img,format=qcow2"),
		   "-drive: format=qcow2 is not supported; allowed: raw");
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img,if=virtio"),
		   "-drive: if=virtio is not supported; allowed: none");
}

UNIT_TEST(test_drive_doubled_comma_is_a_literal_comma)
{
	ASSERT_OK(PARSE_K("-drive", "id=a,file=/img/a,,b=c.raw,readonly=on"));
	ASSERT_STREQ(cfg.drives[0].file, "/img/a,b=c.raw");
	UNIT_ASSERT(cfg.drives[0].readonly);
}

UNIT_TEST(test_drive_rejects_17th_drive)
{
	const char *args[2 + 2 * (VMM_MAX_DRIVES + 1) + 1];
	char ids[VMM_MAX_DRIVES + 1][32];
	size_t n = 0;
	args[n++] = "-kernel";
	args[n++] = "/vmlinux";
	for (int i = 0; i <= VMM_MAX_DRIVES; i++) {
		snprintf(ids[i], sizeof(ids[i]), "id=d%d,file=/img%d", i, i);
		args[n++] = "-drive";
		args[n++] = ids[i];
	}
	args[n] = NULL;
	ASSERT_ERR(parse_list(args), "-drive: too many drives; allowed: at most 16");
	args[n - 2] = NULL;
	ASSERT_OK(parse_list(args));
	UNIT_ASSERT_EQ(cfg.n_drives, VMM_MAX_DRIVES);
}

/* ---- -device ---- */

UNIT_TEST(test_device_resolves_drive_defined_later)
{
	ASSERT_OK(PARSE_K("-device", "virtio-blk-device,drive=root,id=blk0,serial=SN-1", "-drive",
			  "id=root,file=/img"));
	UNIT_ASSERT_EQ(cfg.n_blks, 1);
	ASSERT_STREQ(cfg.blks[0].id, "blk0");
	ASSERT_STREQ(cfg.blks[0].drive, "root");
	ASSERT_STREQ(cfg.blks[0].serial, "SN-1");
	UNIT_ASSERT(vmm_config_find_drive(&cfg, cfg.blks[0].drive) != NULL);
}

UNIT_TEST(test_device_accepts_driver_key)
{
	ASSERT_OK(PARSE_K("-drive", "id=root,file=/img", "-device",
			  "driver=virtio-blk-device,drive=root"));
	UNIT_ASSERT_EQ(cfg.n_blks, 1);
}

UNIT_TEST(test_device_rejects_missing_drive)
{
	ASSERT_ERR(PARSE_K("-device", "virtio-blk-device,drive=nope"),
		   "-device: drive 'nope' does not exist; allowed: the id of a -drive");
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img", "-device", "virtio-blk-device,id=x"),
		   "-device: missing key 'drive'");
}

UNIT_TEST(test_device_rejects_drive_used_twice)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img", "-device", "virtio-blk-device,drive=a,id=b0",
			   "-device", "virtio-blk-device,drive=a,id=b1"),
		   "-device: drive 'a' is already used by device 'b0'; allowed: one device per "
		   "drive");
}

UNIT_TEST(test_device_rejects_duplicate_id)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/1", "-drive", "id=b,file=/2", "-device",
			   "virtio-blk-device,drive=a,id=x", "-device",
			   "virtio-blk-device,drive=b,id=x"),
		   "-device: duplicate device id 'x' (a device without id= takes its drive or "
		   "netdev id); allowed: one device per id");
	ASSERT_ERR_HAS(PARSE_K("-drive", "id=a,file=/1", "-drive", "id=b,file=/2", "-device",
			       "virtio-blk-device,drive=a,id=b", "-device",
			       "virtio-blk-device,drive=b"),
		       "duplicate device id 'b' (a device without id= takes its drive");
}

UNIT_TEST(test_device_accepts_6_disks_and_rejects_the_7th)
{
	const char *args[2 + 4 * 7 + 1];
	char drives[7][32], devs[7][64];
	size_t n = 0;
	args[n++] = "-kernel";
	args[n++] = "/vmlinux";
	for (int i = 0; i < 7; i++) {
		snprintf(drives[i], sizeof(drives[i]), "id=d%d,file=/img%d", i, i);
		snprintf(devs[i], sizeof(devs[i]), "virtio-blk-device,drive=d%d", i);
		args[n++] = "-drive";
		args[n++] = drives[i];
		args[n++] = "-device";
		args[n++] = devs[i];
	}
	args[n] = NULL;
	ASSERT_ERR(parse_list(args),
		   "-device: too many virtio-blk-device devices; allowed: at most 6 on microvm");
	args[n - 4] = NULL;
	ASSERT_OK(parse_list(args));
	UNIT_ASSERT_EQ(cfg.n_blks, VMM_MICROVM_MAX_DISKS);
	ASSERT_STREQ(cfg.blks[5].id, "d5");
}

UNIT_TEST(test_device_serial_accepts_20_bytes_rejects_21)
{
	char arg[256];
	snprintf(arg, sizeof(arg), "virtio-blk-device,drive=a,serial=%.150s", repeat('s', 20));
	ASSERT_OK(PARSE_K("-drive", "id=a,file=/img", "-device", arg));
	UNIT_ASSERT_EQ(strlen(cfg.blks[0].serial), 20);
	snprintf(arg, sizeof(arg), "virtio-blk-device,drive=a,serial=%.150s", repeat('s', 21));
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img", "-device", arg),
		   "-device: serial is too long (21 bytes); allowed: at most 20");
}

UNIT_TEST(test_device_iothread_must_exist)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img", "-device",
			   "virtio-blk-device,drive=a,iothread=io1"),
		   "-device: device 'a': iothread 'io1' does not exist; allowed: the id of an "
		   "-object iothread");
	ASSERT_OK(PARSE_K("-object", "iothread,id=io1", "-drive", "id=a,file=/img", "-device",
			  "virtio-blk-device,drive=a,iothread=io1"));
	ASSERT_STREQ(cfg.blks[0].iothread, "io1");
}

UNIT_TEST(test_object_iothread_accepts_8_rejects_9)
{
	const char *args[2 + 2 * 9 + 1];
	char ids[9][32];
	size_t n = 0;
	args[n++] = "-kernel";
	args[n++] = "/vmlinux";
	for (int i = 0; i < 9; i++) {
		snprintf(ids[i], sizeof(ids[i]), "iothread,id=io%d", i);
		args[n++] = "-object";
		args[n++] = ids[i];
	}
	args[n] = NULL;
	ASSERT_ERR(parse_list(args), "-object: too many iothreads; allowed: at most 8");
	args[n - 2] = NULL;
	ASSERT_OK(parse_list(args));
	UNIT_ASSERT_EQ(cfg.n_iothreads, VMM_MAX_IOTHREADS);
	ASSERT_ERR(PARSE_K("-object", "iothread,id=a", "-object", "iothread,id=a"),
		   "-object: duplicate id 'a'; each iothread needs its own id");
	ASSERT_ERR(PARSE_K("-object", "memory-backend-ram,id=m"),
		   "-object: unknown object type 'memory-backend-ram'; allowed: iothread, "
		   "rng-random");
}

UNIT_TEST(test_netdev_tap_forms)
{
	ASSERT_OK(PARSE_K("-netdev", "tap,id=n0,ifname=tap0", "-device",
			  "virtio-net-device,netdev=n0,id=nic0,mac=52:54:00:12:34:56"));
	UNIT_ASSERT_EQ(cfg.n_nets, 1);
	ASSERT_STREQ(cfg.netdevs[0].ifname, "tap0");
	UNIT_ASSERT_EQ(cfg.netdevs[0].vhostfd, -1);
	UNIT_ASSERT_EQ(cfg.netdevs[0].queues, 1);
	UNIT_ASSERT(cfg.nets[0].mac_set);
	UNIT_ASSERT_EQ(cfg.nets[0].mac[5], 0x56);
	ASSERT_OK(PARSE_K("-netdev", "tap,id=n0,fds=3:4,vhost=on,vhostfd=9"));
	UNIT_ASSERT_EQ(cfg.netdevs[0].n_fds, 2);
	UNIT_ASSERT_EQ(cfg.netdevs[0].fds[1], 4);
	UNIT_ASSERT_EQ(cfg.netdevs[0].queues, 2);
	UNIT_ASSERT_EQ(cfg.netdevs[0].vhostfd, 9);
	ASSERT_OK(PARSE_K("-netdev", "tap,id=n0,fd=3", "-device", "virtio-net-device,netdev=n0"));
	ASSERT_STREQ(cfg.nets[0].id, "n0");
	UNIT_ASSERT(!cfg.nets[0].mac_set);
}

UNIT_TEST(test_netdev_rejects_bad_values)
{
	ASSERT_ERR(PARSE_K("-netdev", "user,id=n0"), "-netdev: unknown type 'user'; allowed: tap");
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=n0"),
		   "-netdev: netdev 'n0' needs exactly one of ifname=, fd=, fds= (0 given)");
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=n0,ifname=t,fd=3"),
		   "-netdev: netdev 'n0' needs exactly one of ifname=, fd=, fds= (2 given)");
	ASSERT_ERR_HAS(PARSE_K("-netdev", "tap,id=n0,fds=3::4"), "fds '3::4' is not valid");
	ASSERT_ERR_HAS(PARSE_K("-netdev", "tap,id=n0,fds=1:2:3:4:5:6:7:8:9"), "is not valid");
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=n0,ifname=t,queues=9"),
		   "-netdev: queues=9 is out of range; allowed: 1 to 8");
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=n0,fds=3:4,queues=3"),
		   "-netdev: queues=3 but 2 fds; allowed: one fd per queue pair");
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=n0,ifname=t,vhost=off,vhostfd=5"),
		   "-netdev: vhostfd= with vhost=off; allowed: vhostfd only with vhost=on");
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=n0,ifname=abcdefghijklmnop"),
		   "-netdev: ifname is too long (16 bytes); allowed: at most 15");
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=n,ifname=a", "-netdev", "tap,id=n,ifname=b"),
		   "-netdev: duplicate id 'n'; each netdev needs its own id");
	ASSERT_ERR(PARSE_K("-device", "virtio-net-device,netdev=n9"),
		   "-device: netdev 'n9' does not exist; allowed: the id of a -netdev");
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=n,ifname=a", "-device", "virtio-net-device,netdev=n",
			   "-device", "virtio-net-device,netdev=n,id=x"),
		   "-device: netdev 'n' is already used by device 'n'; allowed: one device per "
		   "netdev");
	static const char *const bad_macs[] = {"01:00:00:00:00:00", "52:54:00:12:34",
					       "52:54:00:12:34:5g", "52-54-00-12-34-56",
					       "52:54:00:12:34:56:"};
	for (size_t i = 0; i < sizeof(bad_macs) / sizeof(bad_macs[0]); i++) {
		char dev[96];
		snprintf(dev, sizeof(dev), "virtio-net-device,netdev=n,mac=%s", bad_macs[i]);
		ASSERT_ERR_HAS(PARSE_K("-netdev", "tap,id=n,ifname=a", "-device", dev),
			       "is not valid; allowed: six hex bytes");
	}
}

UNIT_TEST(test_net_device_accepts_2_rejects_3)
{
	ASSERT_ERR(PARSE_K("-netdev", "tap,id=a,ifname=a", "-netdev", "tap,id=b,ifname=b",
			   "-device", "virtio-net-device,netdev=a", "-device",
			   "virtio-net-device,netdev=b", "-device", "virtio-net-device,netdev=a"),
		   "-device: too many virtio-net-device devices; allowed: at most 2 on microvm");
}

UNIT_TEST(test_vsock_guest_cid_range)
{
	ASSERT_OK(PARSE_K("-device", "vhost-vsock-device,id=v,guest-cid=3"));
	UNIT_ASSERT(cfg.vsock.present);
	ASSERT_OK(PARSE_K("-device",
			  "vhost-vsock-device,id=v,guest-cid=4294967295,uds-path=/run/v.sock"));
	ASSERT_STREQ(cfg.vsock.uds_path, "/run/v.sock");
	ASSERT_ERR(PARSE_K("-device", "vhost-vsock-device,id=v,guest-cid=2"),
		   "-device: guest-cid=2 is out of range; allowed: 3 to 4294967295");
	ASSERT_ERR(PARSE_K("-device", "vhost-vsock-device,id=v,guest-cid=4294967296"),
		   "-device: guest-cid=4294967296 is out of range; allowed: 3 to 4294967295");
	ASSERT_ERR(PARSE_K("-device", "vhost-vsock-device,id=v,guest-cid=3", "-device",
			   "vhost-vsock-device,id=w,guest-cid=4"),
		   "-device: a second vhost-vsock-device; allowed: at most one per VM");
	ASSERT_ERR(PARSE_K("-device", "vhost-vsock-device,id=v"),
		   "-device: missing key 'guest-cid'");
}

UNIT_TEST(test_console_rng_balloon_references)
{
	ASSERT_OK(PARSE_K("-chardev", "socket,id=c0,path=/tmp/c.sock,server,nowait", "-device",
			  "virtio-serial-device", "-device", "virtconsole,chardev=c0,id=con0"));
	UNIT_ASSERT(cfg.virtio_serial.console_present);
	ASSERT_ERR(PARSE_K("-device", "virtconsole,chardev=c0,id=con0"),
		   "-device: virtconsole 'con0' needs a virtio-serial-device; add -device "
		   "virtio-serial-device");
	ASSERT_ERR(
	    PARSE_K("-device", "virtio-serial-device", "-device", "virtconsole,chardev=c0,id=con0"),
	    "-device: chardev 'c0' does not exist; allowed: the id of a -chardev");
	ASSERT_OK(PARSE_K("-object", "rng-random,id=r,filename=/dev/urandom", "-device",
			  "virtio-rng-device,rng=r,max-bytes=1024,period=1000"));
	UNIT_ASSERT_EQ(cfg.rng.max_bytes, 1024);
	ASSERT_ERR(PARSE_K("-device", "virtio-rng-device,rng=r"),
		   "-device: rng 'r' does not exist; allowed: the id of an -object rng-random");
	ASSERT_ERR(PARSE_K("-object", "rng-random,id=r,filename=/dev/urandom", "-device",
			   "virtio-rng-device,rng=r,period=10"),
		   "-device: virtio-rng-device: max-bytes and period go together; give both or "
		   "neither");
	ASSERT_ERR(PARSE_K("-object", "rng-random,id=r,filename=/dev/urandom", "-device",
			   "virtio-rng-device,rng=r,max-bytes=1,period=1000001"),
		   "-device: period=1000001 is out of range; allowed: 1 to 1000000");
	ASSERT_OK(PARSE_K("-device", "virtio-balloon-device,deflate-on-oom=true"));
	UNIT_ASSERT(cfg.balloon.deflate_on_oom);
	ASSERT_ERR(PARSE_K("-device", "virtio-balloon-device", "-device", "virtio-balloon-device"),
		   "-device: a second virtio-balloon-device; allowed: at most one per VM");
	ASSERT_ERR_HAS(PARSE_K("-mem-path", "/dev/hugepages", "-device", "virtio-balloon-device"),
		       "virtio-balloon-device cannot be used with -mem-path");
}

UNIT_TEST(test_mmio_devices_at_most_11)
{
	/* 6 disks + 2 NICs + vsock + balloon + rng = 11; a virtio-serial makes 12. */
	const char *args[80];
	char drives[6][32], devs[6][64];
	size_t n = 0;
	args[n++] = "-kernel";
	args[n++] = "/vmlinux";
	for (int i = 0; i < 6; i++) {
		snprintf(drives[i], sizeof(drives[i]), "id=d%d,file=/img%d", i, i);
		snprintf(devs[i], sizeof(devs[i]), "virtio-blk-device,drive=d%d", i);
		args[n++] = "-drive";
		args[n++] = drives[i];
		args[n++] = "-device";
		args[n++] = devs[i];
	}
	static const char *const more[] = {"-netdev", "tap,id=a,ifname=a",
					   "-netdev", "tap,id=b,ifname=b",
					   "-device", "virtio-net-device,netdev=a",
					   "-device", "virtio-net-device,netdev=b",
					   "-device", "vhost-vsock-device,id=v,guest-cid=3",
					   "-device", "virtio-balloon-device",
					   "-object", "rng-random,id=r,filename=/dev/urandom",
					   "-device", "virtio-rng-device,rng=r"};
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		args[n++] = more[i];
	args[n] = NULL;
	ASSERT_OK(parse_list(args));
	args[n++] = "-device";
	args[n++] = "virtio-serial-device";
	args[n] = NULL;
	ASSERT_ERR(parse_list(args), "-device: 12 MMIO devices; allowed: at most 11 on microvm");
}

UNIT_TEST(test_mem_path_and_container_mode)
{
	ASSERT_OK(PARSE_K("-mem-path", "/dev/hugepages"));
	ASSERT_STREQ(cfg.mem_path, "/dev/hugepages");
	ASSERT_ERR_HAS(PARSE_K("-mem-path", "hugepages"), "is not an absolute path");
	ASSERT_OK(PARSE_K("-incoming", "file:/var/lib/snap"));
	ASSERT_STREQ(cfg.incoming, "/var/lib/snap");
	ASSERT_ERR(PARSE_K("-incoming", "tcp:0:4444"),
		   "-incoming: 'tcp:0:4444' is not a snapshot URI; allowed: file:DIR (a directory "
		   "written by QMP migrate)");
	ASSERT_ERR_HAS(PARSE_K("-incoming", "file:"), "not a snapshot URI");
	ASSERT_OK(PARSE_K("-petrel-container", "/run/petrel/c1,notify-fd=5"));
	ASSERT_STREQ(cfg.container_dir, "/run/petrel/c1");
	UNIT_ASSERT_EQ(cfg.container_notify_fd, 5);
	ASSERT_OK(PARSE_K("-petrel-container", "/run/petrel/c1"));
	UNIT_ASSERT_EQ(cfg.container_notify_fd, -1);
	ASSERT_ERR(PARSE_K("-petrel-container", "/x,notify-fd=2"),
		   "-petrel-container: notify-fd=2 is out of range; allowed: 3 to 2147483647");
}

UNIT_TEST(test_device_bootindex_range)
{
	ASSERT_OK(PARSE_K("-drive", "id=a,file=/img", "-device",
			  "virtio-blk-device,drive=a,bootindex=255"));
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img", "-device",
			   "virtio-blk-device,drive=a,bootindex=256"),
		   "-device: bootindex=256 is out of range; allowed: 0 to 255");
}

UNIT_TEST(test_device_rejects_unsupported_drivers)
{
	static const char *const later[] = {"virtio-blk-mmio,drive=a", "virtio-net-pci",
					    "vfio-pci"};
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		if (PARSE_K("-device", later[i]) != -EINVAL)
			UNIT_FAIL("-device %s was accepted", later[i]);
		ASSERT_CONTAINS(err.msg, "is not supported yet; supported: virtio-blk-device, "
					 "virtio-net-device, vhost-vsock-device");
	}
	ASSERT_ERR_HAS(PARSE_K("-device", "floppy"),
		       "-device: unknown driver 'floppy'; supported: ");
	ASSERT_ERR(PARSE_K("-device", "drive=a,driver=virtio-blk-device"),
		   "-device: the driver must come first; syntax: DRIVER,key=value...");
}

UNIT_TEST(test_device_rejects_unknown_key)
{
	ASSERT_ERR(PARSE_K("-drive", "id=a,file=/img", "-device",
			   "virtio-blk-device,drive=a,num-queues=2"),
		   "-device: unknown key 'num-queues'; allowed: drive, id, serial, iothread, "
		   "bootindex");
}

/* ---- -chardev and -serial ---- */

UNIT_TEST(test_chardev_backends)
{
	ASSERT_OK(PARSE_K("-chardev", "stdio,id=c0", "-chardev", "pty,id=c1", "-chardev",
			  "socket,id=c2,path=/run/c2.sock,server,nowait", "-chardev",
			  "file,id=c3,path=/var/log/c3", "-chardev", "socket,id=c4,path=rel.sock"));
	UNIT_ASSERT_EQ(cfg.n_chardevs, 5);
	const struct vmm_chardev *c = vmm_config_find_chardev(&cfg, "c2");
	UNIT_ASSERT(c != NULL);
	UNIT_ASSERT_EQ(c->backend, VMM_CHARDEV_SOCKET);
	ASSERT_STREQ(c->path, "/run/c2.sock");
	UNIT_ASSERT(c->server);
	UNIT_ASSERT(c->nowait);
	c = vmm_config_find_chardev(&cfg, "c4");
	UNIT_ASSERT(!c->server && !c->nowait);
	UNIT_ASSERT_EQ(vmm_config_find_chardev(&cfg, "c0")->backend, VMM_CHARDEV_STDIO);
	UNIT_ASSERT_EQ(vmm_config_find_chardev(&cfg, "c1")->backend, VMM_CHARDEV_PTY);
	UNIT_ASSERT_EQ(vmm_config_find_chardev(&cfg, "c3")->backend, VMM_CHARDEV_FILE);
	ASSERT_STREQ(vmm_config_find_chardev(&cfg, "c3")->path, "/var/log/c3");
	UNIT_ASSERT(vmm_config_find_chardev(&cfg, "c9") == NULL);
}

UNIT_TEST(test_chardev_rejects_bad_forms)
{
	ASSERT_ERR(PARSE_K("-chardev", "udp,id=c"),
		   "-chardev: unknown backend 'udp'; allowed: stdio, pty, socket, file");
	ASSERT_ERR(PARSE_K("-chardev", "socket,id=c"), "-chardev: missing key 'path'");
	ASSERT_ERR(PARSE_K("-chardev", "file,id=c"), "-chardev: missing key 'path'");
	ASSERT_ERR(PARSE_K("-chardev", "stdio"), "-chardev: missing key 'id'");
	ASSERT_ERR(PARSE_K("-chardev", "stdio,id=c,path=/x"),
		   "-chardev: unknown key 'path'; allowed: id");
	ASSERT_ERR(PARSE_K("-chardev", "socket,id=c,path=/s,nowait"),
		   "-chardev: nowait without server; allowed: nowait only with server");
	ASSERT_ERR(PARSE_K("-chardev", "pty,id=c", "-chardev", "stdio,id=c"),
		   "-chardev: duplicate id 'c'; each chardev needs its own id");
}

UNIT_TEST(test_chardev_socket_path_fits_sun_path)
{
	char arg[256];
	snprintf(arg, sizeof(arg), "socket,id=c,path=/%.150s,server,nowait", repeat('p', 106));
	ASSERT_OK(PARSE_K("-chardev", arg));
	snprintf(arg, sizeof(arg), "socket,id=c,path=/%.150s,server,nowait", repeat('p', 107));
	ASSERT_ERR(PARSE_K("-chardev", arg),
		   "-chardev: path is too long (108 bytes); allowed: at most 107");
}

UNIT_TEST(test_chardev_rejects_9th)
{
	const char *args[2 + 2 * 9 + 1];
	char ids[9][32];
	size_t n = 0;
	args[n++] = "-kernel";
	args[n++] = "/vmlinux";
	for (int i = 0; i < 9; i++) {
		snprintf(ids[i], sizeof(ids[i]), "pty,id=c%d", i);
		args[n++] = "-chardev";
		args[n++] = ids[i];
	}
	args[n] = NULL;
	ASSERT_ERR(parse_list(args), "-chardev: too many chardevs; allowed: at most 8");
}

UNIT_TEST(test_serial_kinds)
{
	ASSERT_OK(PARSE_K("-serial", "stdio"));
	UNIT_ASSERT_EQ(cfg.serial, VMM_SERIAL_STDIO);
	ASSERT_OK(PARSE_K("-serial", "pty"));
	UNIT_ASSERT_EQ(cfg.serial, VMM_SERIAL_PTY);
	ASSERT_OK(PARSE_K("-serial", "none"));
	UNIT_ASSERT_EQ(cfg.serial, VMM_SERIAL_NONE);
	ASSERT_OK(PARSE_K("-serial", "file,path=/tmp/console.log"));
	UNIT_ASSERT_EQ(cfg.serial, VMM_SERIAL_FILE);
	ASSERT_STREQ(cfg.serial_path, "/tmp/console.log");
}

UNIT_TEST(test_serial_chardev_resolves_in_any_order)
{
	ASSERT_OK(PARSE_K("-serial", "chardev:con", "-chardev",
			  "socket,id=con,path=/run/con.sock,server,nowait"));
	UNIT_ASSERT_EQ(cfg.serial, VMM_SERIAL_CHARDEV);
	ASSERT_STREQ(cfg.serial_chardev, "con");
	UNIT_ASSERT(vmm_config_find_chardev(&cfg, cfg.serial_chardev) != NULL);
	ASSERT_OK(PARSE_K("-chardev", "pty,id=con", "-serial", "chardev:con"));
}

UNIT_TEST(test_serial_rejects_missing_chardev)
{
	ASSERT_ERR(PARSE_K("-serial", "chardev:nope"),
		   "-serial: chardev 'nope' does not exist; allowed: the id of a -chardev");
	ASSERT_ERR(PARSE_K("-chardev", "pty,id=other", "-serial", "chardev:nope"),
		   "-serial: chardev 'nope' does not exist; allowed: the id of a -chardev");
	ASSERT_ERR_HAS(PARSE_K("-serial", "chardev:"), "is not a valid chardev id");
}

UNIT_TEST(test_serial_rejects_bad_forms)
{
	ASSERT_ERR(PARSE_K("-serial", "tcp:1.2.3.4:5"),
		   "-serial: unknown backend 'tcp:1.2.3.4:5'; allowed: stdio, pty, none, "
		   "chardev:ID, file,path=PATH");
	ASSERT_ERR(PARSE_K("-serial", "file"), "-serial: missing key 'path'");
	ASSERT_ERR(PARSE_K("-serial", "stdio,path=/x"),
		   "-serial: unknown key 'path'; no keys are allowed here");
	ASSERT_ERR(PARSE_K("-serial", "chardev:c,x=1"),
		   "-serial: unknown key 'x'; no keys are allowed after chardev:ID");
	ASSERT_ERR(PARSE_K("-serial", "stdio", "-serial", "pty"),
		   "-serial: given twice; allowed once");
}

/* ---- -qmp ---- */

UNIT_TEST(test_qmp_accepts_unix_server_nowait)
{
	ASSERT_OK(PARSE_K("-qmp", "unix:/run/vm.qmp,server,nowait"));
	ASSERT_STREQ(cfg.qmp_path, "/run/vm.qmp");
	ASSERT_OK(PARSE_K("-qmp", "unix:vm.qmp,nowait,server=on"));
	ASSERT_STREQ(cfg.qmp_path, "vm.qmp");
}

UNIT_TEST(test_qmp_requires_server_and_nowait)
{
	ASSERT_ERR(PARSE_K("-qmp", "unix:/run/vm.qmp,nowait"),
		   "-qmp: 'server' is required: petrel-vmm listens for QMP clients; syntax: "
		   "unix:PATH,server,nowait");
	ASSERT_ERR(PARSE_K("-qmp", "unix:/run/vm.qmp,server"),
		   "-qmp: 'nowait' is required: petrel-vmm does not wait for a QMP client before "
		   "it starts the guest; syntax: unix:PATH,server,nowait");
	ASSERT_ERR_HAS(PARSE_K("-qmp", "unix:/run/vm.qmp,server=off,nowait"),
		       "'server' is required");
}

UNIT_TEST(test_qmp_rejects_bad_syntax)
{
	ASSERT_ERR(PARSE_K("-qmp", "tcp:127.0.0.1:4444,server,nowait"),
		   "-qmp: 'tcp:127.0.0.1:4444' is not a unix socket; allowed: only unix sockets, "
		   "syntax: unix:PATH,server,nowait");
	ASSERT_ERR(PARSE_K("-qmp", "unix:,server,nowait"),
		   "-qmp: empty socket path; syntax: unix:PATH,server,nowait");
	ASSERT_ERR(PARSE_K("-qmp", "unix:/q,server,nowait,wait=off"),
		   "-qmp: unknown key 'wait'; allowed: server, nowait");
	ASSERT_ERR(PARSE_K("-qmp", "unix:/q,server,server,nowait"),
		   "-qmp: key 'server' given twice; allowed once");
	ASSERT_ERR(PARSE_K("-qmp", "unix:/q,server,nowait", "-qmp", "unix:/r,server,nowait"),
		   "-qmp: given twice; allowed once");
}

UNIT_TEST(test_qmp_path_fits_sun_path)
{
	char arg[256];
	snprintf(arg, sizeof(arg), "unix:/%.150s,server,nowait", repeat('q', 106));
	ASSERT_OK(PARSE_K("-qmp", arg));
	UNIT_ASSERT_EQ(strlen(cfg.qmp_path), 107);
	snprintf(arg, sizeof(arg), "unix:/%.150s,server,nowait", repeat('q', 107));
	ASSERT_ERR(PARSE_K("-qmp", arg),
		   "-qmp: socket path is too long (108 bytes); allowed: at most 107 (sun_path)");
}

/* ---- -D, -pidfile, -daemonize and flags ---- */

UNIT_TEST(test_log_without_file_means_stderr)
{
	ASSERT_OK(PARSE_K("-D"));
	UNIT_ASSERT(cfg.log_set);
	ASSERT_STREQ(cfg.logfile, "");
	ASSERT_OK(PARSE("-D", "-kernel", "/vmlinux"));
	UNIT_ASSERT(cfg.log_set);
	ASSERT_STREQ(cfg.logfile, "");
	ASSERT_STREQ(cfg.kernel, "/vmlinux");
}

UNIT_TEST(test_log_with_file)
{
	ASSERT_OK(PARSE_K("-D", "/var/log/vm.log", "-S"));
	UNIT_ASSERT(cfg.log_set);
	ASSERT_STREQ(cfg.logfile, "/var/log/vm.log");
	UNIT_ASSERT(cfg.start_paused);
}

UNIT_TEST(test_pidfile_requires_daemonize)
{
	ASSERT_ERR(PARSE_K("-pidfile", "/run/vm.pid"), "-pidfile: allowed only with -daemonize");
	ASSERT_OK(PARSE_K("-pidfile", "/run/vm.pid", "-daemonize"));
	UNIT_ASSERT(cfg.daemonize);
	ASSERT_STREQ(cfg.pidfile, "/run/vm.pid");
	ASSERT_OK(PARSE_K("-daemonize"));
}

UNIT_TEST(test_daemonize_rejects_stdio)
{
	ASSERT_ERR(PARSE_K("-daemonize", "-serial", "stdio"),
		   "-serial: stdio cannot be used with -daemonize; allowed: pty, file, chardev:ID");
	ASSERT_ERR(PARSE_K("-daemonize", "-chardev", "stdio,id=c"),
		   "-chardev: stdio (id 'c') cannot be used with -daemonize; allowed: pty, socket, "
		   "file");
	ASSERT_ERR(PARSE_K("-daemonize", "-D"),
		   "-D: logging to stderr is not possible with -daemonize; allowed: -D PATH");
	ASSERT_OK(PARSE_K("-daemonize", "-serial", "pty", "-D", "/var/log/vm.log"));
}

UNIT_TEST(test_flags)
{
	ASSERT_OK(PARSE_K("-disable-seccomp", "-S"));
	UNIT_ASSERT(cfg.disable_seccomp);
	UNIT_ASSERT(cfg.start_paused);
	UNIT_ASSERT(!cfg.daemonize);
	ASSERT_ERR(PARSE_K("-S", "-S"), "-S: given twice; allowed once");
}

/* ---- the option words ---- */

UNIT_TEST(test_unknown_option)
{
	ASSERT_ERR(PARSE_K("-foo"), "-foo: unknown option; see -help");
	ASSERT_ERR(PARSE_K("-"), "-: unknown option; see -help");
	ASSERT_ERR(PARSE_K("---smp", "1"), "---smp: unknown option; see -help");
}

UNIT_TEST(test_stray_argument)
{
	ASSERT_ERR(PARSE_K("vmlinux"),
		   "vmlinux: unexpected argument; options start with '-'; see -help");
}

UNIT_TEST(test_missing_argument)
{
	ASSERT_ERR(PARSE_K("-smp"),
		   "-smp: missing argument; syntax: -smp "
		   "[cpus=]N[,maxcpus=N][,sockets=N][,dies=N][,clusters=N][,cores=N][,threads=N]");
	ASSERT_ERR(PARSE("-kernel"), "-kernel: missing argument; syntax: -kernel PATH");
	ASSERT_ERR_HAS(PARSE_K("-device"), "-device: missing argument; syntax: -device ...");
}

UNIT_TEST(test_double_dash_is_kept_in_messages)
{
	ASSERT_OK(PARSE_K("--smp", "2", "--m", "1G"));
	UNIT_ASSERT_EQ(cfg.cpus, 2);
	UNIT_ASSERT_EQ(cfg.mem_bytes, 1ull << 30);
	ASSERT_ERR(PARSE_K("--smp", "300"), "--smp: 300 is out of range; allowed: 1 to 254");
	ASSERT_ERR(PARSE_K("--device", "virtio-blk-device,drive=x"),
		   "--device: drive 'x' does not exist; allowed: the id of a -drive");
}

UNIT_TEST(test_help_and_version_actions)
{
	static const struct {
		const char *word;
		enum vmm_action action;
	} cases[] = {{"-help", VMM_ACTION_HELP},
		     {"--help", VMM_ACTION_HELP},
		     {"-h", VMM_ACTION_HELP},
		     {"-version", VMM_ACTION_VERSION},
		     {"--version", VMM_ACTION_VERSION}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* No kernel needed, and what follows is not read. */
		if (PARSE(cases[i].word, "-smp", "999") != 0)
			UNIT_FAIL("%s: %.300s", cases[i].word, err.msg);
		UNIT_ASSERT_EQ(cfg.action, cases[i].action);
	}
}

/* ---- no side effects, no shared state ---- */

UNIT_TEST(test_parse_creates_nothing)
{
	char dir[] = "/tmp/petrel-test-cli-XXXXXX";
	UNIT_ASSERT(mkdtemp(dir) != NULL);
	char qmp[128], log[128], pid[128], con[128], chr[128];
	snprintf(qmp, sizeof(qmp), "unix:%s/q.sock,server,nowait", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(pid, sizeof(pid), "%s/pid", dir);
	snprintf(con, sizeof(con), "file,path=%s/console", dir);
	snprintf(chr, sizeof(chr), "socket,id=c,path=%s/c.sock,server,nowait", dir);
	int rc = PARSE_K("-qmp", qmp, "-D", log, "-pidfile", pid, "-daemonize", "-serial", con,
			 "-chardev", chr, "-drive", "id=a,file=/nonexistent/disk.img");
	unsigned entries = 0;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				entries++;
		closedir(d);
	}
	rmdir(dir);
	ASSERT_OK(rc);
	UNIT_ASSERT_EQ(entries, 0);
}

UNIT_TEST(test_two_configs_are_independent)
{
	static struct vmm_config a, b;
	struct perr ea, eb;
	const char *argv_a[] = {"petrel-vmm", "-kernel", "/a", "-smp", "2", NULL};
	const char *argv_b[] = {"petrel-vmm", "-kernel", "/b", "-m", "1G", NULL};
	UNIT_ASSERT_EQ(vmm_config_parse(5, (char *const *)argv_a, &a, &ea), 0);
	UNIT_ASSERT_EQ(vmm_config_parse(5, (char *const *)argv_b, &b, &eb), 0);
	UNIT_ASSERT_EQ(a.cpus, 2);
	UNIT_ASSERT_EQ(a.mem_bytes, 256ull << 20);
	UNIT_ASSERT_EQ(b.cpus, 1);
	UNIT_ASSERT_EQ(b.mem_bytes, 1ull << 30);
	ASSERT_STREQ(a.kernel, "/a");
}

UNIT_TEST(test_parse_accepts_null_err)
{
	const char *argv[] = {"petrel-vmm", "-smp", "255", NULL};
	UNIT_ASSERT_EQ(vmm_config_parse(3, (char *const *)argv, &cfg, NULL), -EINVAL);
}

/* ---- the number parsers ---- */

UNIT_TEST(test_u64_parser_edges)
{
	uint64_t v = 0;
	UNIT_ASSERT_EQ(cli_parse_u64("18446744073709551615", &v), 0);
	UNIT_ASSERT(v == UINT64_MAX);
	UNIT_ASSERT_EQ(cli_parse_u64("18446744073709551616", &v), -ERANGE);
	UNIT_ASSERT_EQ(cli_parse_u64("99999999999999999999999999", &v), -ERANGE);
	UNIT_ASSERT_EQ(cli_parse_u64("0", &v), 0);
	UNIT_ASSERT_EQ(v, 0);
	UNIT_ASSERT_EQ(cli_parse_u64("007", &v), 0);
	UNIT_ASSERT_EQ(v, 7);
	static const char *const bad[] = {"", "-0", "-1", "+1", " 1", "1 ", "0x1", "1k", "١"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cli_parse_u64(bad[i], &v) != -EINVAL)
			UNIT_FAIL("'%s' was accepted", bad[i]);
}

UNIT_TEST(test_memsize_parser_edges)
{
	uint64_t v = 0;
	UNIT_ASSERT_EQ(cli_parse_memsize("17179869183G", &v), 0);
	UNIT_ASSERT(v == 17179869183ull << 30);
	UNIT_ASSERT_EQ(cli_parse_memsize("17179869184G", &v), -ERANGE);
	UNIT_ASSERT_EQ(cli_parse_memsize("17592186044415M", &v), 0);
	UNIT_ASSERT_EQ(cli_parse_memsize("17592186044416", &v), -ERANGE);
	UNIT_ASSERT_EQ(cli_parse_memsize("18446744073709551616M", &v), -ERANGE);
	UNIT_ASSERT_EQ(cli_parse_memsize("1Gi", &v), -EINVAL);
	UNIT_ASSERT_EQ(cli_parse_memsize("", &v), -EINVAL);
}

/* ---- -help ---- */

UNIT_TEST(test_help_is_generated_from_the_tables)
{
	char path[] = "/tmp/petrel-test-help-XXXXXX";
	int fd = mkstemp(path);
	UNIT_ASSERT(fd >= 0);
	unlink(path);
	fflush(stdout);
	int saved = dup(1);
	dup2(fd, 1);
	vmm_config_print_help();
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	static char text[16384];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	UNIT_ASSERT(n > 0);
	text[n] = '\0';
	ASSERT_CONTAINS(text, "-drive id=ID,file=PATH[,readonly[=on|off]][,direct[=on|off]]"
			      "[,throttling.iops-total=N][,if=none][,format=raw]");
	ASSERT_CONTAINS(text, "-device virtio-blk-device,drive=ID[,id=ID][,serial=STR]");
	ASSERT_CONTAINS(text, "-chardev socket,id=ID,path=PATH[,server[=on|off]]");
	ASSERT_CONTAINS(text, "-serial chardev:ID");
	ASSERT_CONTAINS(text, "-machine [type=]microvm");
	ASSERT_CONTAINS(text, "-qmp unix:PATH,server,nowait");
	ASSERT_CONTAINS(text, "-m [size=]SIZE");
}

UNIT_MAIN("cli")
