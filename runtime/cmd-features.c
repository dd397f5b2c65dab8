/* petrel features: the runtime-spec features document (features.md), with
 * only what petrel honours. */
#include <errno.h>
#include <stdio.h>

#include "runtime/cgroup.h"
#include "runtime/commands.h"
#include "runtime/lifecycle.h"

int petrel_features(FILE *out, struct perr *err)
{
	(void)err;
	/* Only what petrel honours (runtime-spec features.md). */
	fputs(
	    "{\n"
	    "  \"ociVersionMin\": \"1.0.0\",\n"
	    "  \"ociVersionMax\": \"1.1.0\",\n"
	    "  \"hooks\": [\"prestart\", \"createRuntime\", \"poststart\", \"poststop\"],\n"
	    "  \"mountOptions\": [\"async\", \"atime\", \"bind\", \"defaults\", \"dev\", "
	    "\"diratime\", \"exec\", \"iversion\", \"lazytime\", \"loud\", \"mand\", "
	    "\"noatime\", \"nodev\", \"nodiratime\", \"noexec\", \"noiversion\", "
	    "\"nolazytime\", \"nomand\", \"norelatime\", \"nostrictatime\", \"nosuid\", "
	    "\"nosymfollow\", \"private\", \"rbind\", \"relatime\", \"ro\", \"rprivate\", "
	    "\"rshared\", \"rslave\", \"runbindable\", \"rw\", \"shared\", \"silent\", "
	    "\"slave\", \"strictatime\", \"suid\", \"symfollow\", \"sync\", \"tmpcopyup\", "
	    "\"unbindable\"],\n"
	    "  \"linux\": {\n"
	    "    \"namespaces\": [\"mount\", \"pid\", \"uts\", \"ipc\", \"cgroup\", \"network\"],\n"
	    "    \"capabilities\": [\"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", "
	    "\"CAP_DAC_READ_SEARCH\", \"CAP_FOWNER\", \"CAP_FSETID\", \"CAP_KILL\", "
	    "\"CAP_SETGID\", \"CAP_SETUID\", \"CAP_SETPCAP\", \"CAP_LINUX_IMMUTABLE\", "
	    "\"CAP_NET_BIND_SERVICE\", \"CAP_NET_BROADCAST\", \"CAP_NET_ADMIN\", "
	    "\"CAP_NET_RAW\", \"CAP_IPC_LOCK\", \"CAP_IPC_OWNER\", \"CAP_SYS_MODULE\", "
	    "\"CAP_SYS_RAWIO\", \"CAP_SYS_CHROOT\", \"CAP_SYS_PTRACE\", \"CAP_SYS_PACCT\", "
	    "\"CAP_SYS_ADMIN\", \"CAP_SYS_BOOT\", \"CAP_SYS_NICE\", \"CAP_SYS_RESOURCE\", "
	    "\"CAP_SYS_TIME\", \"CAP_SYS_TTY_CONFIG\", \"CAP_MKNOD\", \"CAP_LEASE\", "
	    "\"CAP_AUDIT_WRITE\", \"CAP_AUDIT_CONTROL\", \"CAP_SETFCAP\", "
	    "\"CAP_MAC_OVERRIDE\", \"CAP_MAC_ADMIN\", \"CAP_SYSLOG\", \"CAP_WAKE_ALARM\", "
	    "\"CAP_BLOCK_SUSPEND\", \"CAP_AUDIT_READ\", \"CAP_PERFMON\", \"CAP_BPF\", "
	    "\"CAP_CHECKPOINT_RESTORE\"],\n"
	    "    \"cgroup\": {\"v1\": false, \"v2\": true, \"systemd\": false, "
	    "\"systemdUser\": false, \"rdma\": false},\n"
	    /* What the agent's libseccomp compiles (guest/agent/seccomp.c); other
	     * architectures of the spec's list are skipped, as libseccomp does not
	     * know them. */
	    "    \"seccomp\": {\n"
	    "      \"enabled\": true,\n"
	    "      \"actions\": [\"SCMP_ACT_ALLOW\", \"SCMP_ACT_ERRNO\", \"SCMP_ACT_KILL\", "
	    "\"SCMP_ACT_KILL_PROCESS\", \"SCMP_ACT_KILL_THREAD\", \"SCMP_ACT_LOG\", "
	    "\"SCMP_ACT_TRACE\", \"SCMP_ACT_TRAP\"],\n"
	    "      \"operators\": [\"SCMP_CMP_EQ\", \"SCMP_CMP_GE\", \"SCMP_CMP_GT\", "
	    "\"SCMP_CMP_LE\", \"SCMP_CMP_LT\", \"SCMP_CMP_MASKED_EQ\", \"SCMP_CMP_NE\"],\n"
	    "      \"archs\": [\"SCMP_ARCH_AARCH64\", \"SCMP_ARCH_ARM\", \"SCMP_ARCH_MIPS\", "
	    "\"SCMP_ARCH_MIPS64\", \"SCMP_ARCH_MIPS64N32\", \"SCMP_ARCH_MIPSEL\", "
	    "\"SCMP_ARCH_MIPSEL64\", \"SCMP_ARCH_MIPSEL64N32\", \"SCMP_ARCH_PARISC\", "
	    "\"SCMP_ARCH_PARISC64\", \"SCMP_ARCH_PPC\", \"SCMP_ARCH_PPC64\", "
	    "\"SCMP_ARCH_PPC64LE\", \"SCMP_ARCH_RISCV64\", \"SCMP_ARCH_S390\", "
	    "\"SCMP_ARCH_S390X\", \"SCMP_ARCH_X32\", \"SCMP_ARCH_X86\", "
	    "\"SCMP_ARCH_X86_64\"],\n"
	    "      \"knownFlags\": [\"SECCOMP_FILTER_FLAG_TSYNC\", \"SECCOMP_FILTER_FLAG_LOG\", "
	    "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\", \"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\"],\n"
	    "      \"supportedFlags\": [\"SECCOMP_FILTER_FLAG_TSYNC\", "
	    "\"SECCOMP_FILTER_FLAG_LOG\", \"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"]\n"
	    "    },\n"
	    "    \"apparmor\": {\"enabled\": false},\n"
	    "    \"selinux\": {\"enabled\": false},\n"
	    "    \"intelRdt\": {\"enabled\": false},\n"
	    "    \"mountExtensions\": {\"idmap\": {\"enabled\": false}}\n"
	    "  },\n"
	    "  \"annotations\": {\n"
	    "    \"io.petrel.runtime\": \"microvm\",\n"
	    "    \"io.petrel.version\": \"" PETREL_VERSION "\"\n"
	    "  }\n"
	    "}\n",
	    out);
	return 0;
}

int cmd_features(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	(void)cli;
	if (argc > 1)
		return perr_setx(err, -EINVAL, "features: unexpected argument \"%s\"", argv[1]);
	int rc = petrel_features(stdout, err);
	return rc < 0 ? rc : 0;
}
