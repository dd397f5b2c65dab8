#include "loader.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../common/cleanup.h"
#include "../../core/guest_mem.h"
#include "layout.h"

#define LOADER_HEAD_SIZE   4096
#define ELF_MAX_PHDRS	   64
#define ELF_MAX_NOTES_SIZE (64ul * 1024)

const char *x86_kernel_format_name(enum x86_kernel_format f)
{
	switch (f) {
	case X86_KERNEL_BZIMAGE:
		return "bzImage";
	case X86_KERNEL_ELF:
		return "ELF";
	case X86_KERNEL_RAW:
		return "raw";
	}
	return "?";
}

/* Reads exactly len bytes at off; a short file is -EINVAL. */
static int read_full_at(int fd, void *buf, size_t len, uint64_t off, struct perr *err)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return perr_set(err, -errno, "read");
		}
		if (n == 0)
			return perr_setx(err, -EINVAL, "file is truncated");
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * An image file (kernel, initrd), read with pread() straight into guest RAM.
 * Not mapped: in the testbed a mapping's page faults made loading a 19 MB
 * vmlinux take 2-3 times as long as reading it (9p and tmpfs alike), and a
 * mapped file truncated during the copy would fault.
 */
struct image_file {
	int fd;
	uint64_t size;
	bool regular;
};

static int image_open(const char *path, struct image_file *f, struct perr *err)
{
	/* Fully set on failure too: the caller's autoimage cleanup reads it. */
	*f = (struct image_file){.fd = -1};
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return perr_setx(err, -errno, "%s", strerror(errno));
	struct stat st;
	if (fstat(f->fd, &st) < 0) {
		int rc = perr_set(err, -errno, "stat");
		close(f->fd);
		f->fd = -1;
		return rc;
	}
	f->size = (uint64_t)st.st_size;
	f->regular = S_ISREG(st.st_mode);
	return 0;
}

static void image_close(struct image_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

#define autoimage __attribute__((cleanup(image_close)))

/* Reads len file bytes at off into guest RAM at gpa, which must lie below ram_end. */
static int read_into_guest(struct guest_mem *mem, uint64_t ram_end, const struct image_file *f,
			   uint64_t off, uint64_t gpa, uint64_t len, const char *what,
			   struct perr *err)
{
	void *dst = gpa + len <= ram_end ? guest_mem_slice(mem, gpa, len) : NULL;
	if (!dst || gpa + len < gpa)
		return perr_setx(err, -EINVAL,
				 "%s (%#llx bytes at %#llx) does not fit in guest RAM below %#llx",
				 what, (unsigned long long)len, (unsigned long long)gpa,
				 (unsigned long long)ram_end);
	return read_full_at(f->fd, dst, (size_t)len, off, err);
}

static int load_bzimage(struct guest_mem *mem, uint64_t ram_end, const struct image_file *f,
			const uint8_t *head, size_t head_len, struct x86_kernel *k,
			struct perr *err)
{
	int rc = x86_bzimage_parse(head, head_len, f->size, &k->bz, err);
	if (rc < 0)
		return rc;

	/* Loaded at 1 MiB like a BIOS loader does; a relocatable kernel moves
	 * itself to its preferred address while decompressing. */
	k->format = X86_KERNEL_BZIMAGE;
	k->mode = X86_ENTRY_LONG64;
	k->load_gpa = X86_HIMEM_GPA;
	k->entry = X86_HIMEM_GPA + X86_STARTUP64_OFFSET;
	k->initrd_addr_max = k->bz.initrd_addr_max;
	rc = read_into_guest(mem, ram_end, f, k->bz.payload_offset, k->load_gpa, k->bz.payload_size,
			     "bzImage payload", err);
	if (rc < 0)
		return rc;
	uint64_t end = k->load_gpa + k->bz.payload_size;
	uint64_t run_base = k->bz.pref_address > k->load_gpa ? k->bz.pref_address : k->load_gpa;
	if (run_base + k->bz.init_size > end)
		end = run_base + k->bz.init_size;
	if (end > ram_end)
		return perr_setx(err, -EINVAL,
				 "bzImage needs memory up to %#llx; guest RAM below 3 GiB ends at "
				 "%#llx",
				 (unsigned long long)end, (unsigned long long)ram_end);
	k->end_gpa = end;
	return 0;
}

/* Finds XEN_ELFNOTE_PHYS32_ENTRY ("Xen", type 18) in a PT_NOTE segment. */
static int elf_find_pvh_entry(const struct image_file *f, const Elf64_Phdr *ph, uint64_t *entry,
			      struct perr *err)
{
	if (ph->p_filesz > ELF_MAX_NOTES_SIZE || ph->p_filesz < sizeof(Elf64_Nhdr))
		return 0;
	/* Freed by hand at the one exit below, not autofree. */
	uint8_t *buf = malloc(ph->p_filesz);
	if (!buf)
		return perr_setx(err, -ENOMEM, "out of memory");
	int rc = read_full_at(f->fd, buf, ph->p_filesz, ph->p_offset, err);
	size_t off = 0;
	while (rc == 0 && off + sizeof(Elf64_Nhdr) <= ph->p_filesz) {
		Elf64_Nhdr nh;
		memcpy(&nh, buf + off, sizeof(nh));
		size_t name_off = off + sizeof(nh);
		size_t desc_off = name_off + ((nh.n_namesz + 3u) & ~3u);
		size_t next = desc_off + ((nh.n_descsz + 3u) & ~3u);
		if (next > ph->p_filesz || next <= off)
			break;
		if (nh.n_type == X86_PVH_NOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(buf + name_off, "Xen", 4) == 0) {
			/* .long on 32-bit builds, .quad (_ASM_PTR) on 64-bit ones. */
			if (nh.n_descsz == 4) {
				uint32_t v;
				memcpy(&v, buf + desc_off, 4);
				*entry = v;
				rc = 1;
				break;
			}
			if (nh.n_descsz == 8) {
				uint64_t v;
				memcpy(&v, buf + desc_off, 8);
				*entry = v;
				rc = 1;
				break;
			}
		}
		off = next;
	}
	free(buf);
	return rc;
}

static int load_elf(struct guest_mem *mem, uint64_t ram_end, const struct image_file *f,
		    const uint8_t *head, size_t head_len, struct x86_kernel *k, struct perr *err)
{
	Elf64_Ehdr eh;
	if (head_len < sizeof(eh))
		return perr_setx(err, -EINVAL, "ELF header is truncated");
	memcpy(&eh, head, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64)
		return perr_setx(err, -EINVAL, "ELF image is not a little-endian x86_64 ELF64");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > ELF_MAX_PHDRS)
		return perr_setx(err, -EINVAL, "ELF image has %u program headers of %u bytes",
				 eh.e_phnum, eh.e_phentsize);

	Elf64_Phdr phdrs[ELF_MAX_PHDRS];
	int rc =
	    read_full_at(f->fd, phdrs, (size_t)eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff, err);
	if (rc < 0)
		return rc;

	k->format = X86_KERNEL_ELF;
	k->load_gpa = UINT64_MAX;
	k->end_gpa = 0;
	uint64_t pvh_entry = 0;
	bool pvh = false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *ph = &phdrs[i];
		if (ph->p_type == PT_NOTE && !pvh) {
			rc = elf_find_pvh_entry(f, ph, &pvh_entry, err);
			if (rc < 0)
				return rc;
			pvh = rc == 1;
		}
		if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
			continue;
		if (ph->p_filesz > ph->p_memsz)
			return perr_setx(err, -EINVAL,
					 "ELF segment %u: file size exceeds memory size", i);
		rc = read_into_guest(mem, ram_end, f, ph->p_offset, ph->p_paddr, ph->p_filesz,
				     "ELF segment", err);
		if (rc < 0)
			return rc;
		uint8_t *bss =
		    guest_mem_slice(mem, ph->p_paddr + ph->p_filesz, ph->p_memsz - ph->p_filesz);
		if (!bss || ph->p_paddr + ph->p_memsz > ram_end)
			return perr_setx(
			    err, -EINVAL,
			    "ELF segment %u (%#llx bytes at %#llx) does not fit in guest "
			    "RAM",
			    i, (unsigned long long)ph->p_memsz, (unsigned long long)ph->p_paddr);
		memset(bss, 0, ph->p_memsz - ph->p_filesz);
		if (ph->p_paddr < k->load_gpa)
			k->load_gpa = ph->p_paddr;
		if (ph->p_paddr + ph->p_memsz > k->end_gpa)
			k->end_gpa = ph->p_paddr + ph->p_memsz;
	}
	if (k->end_gpa == 0)
		return perr_setx(err, -EINVAL, "ELF image has no loadable segment");

	k->mode = pvh ? X86_ENTRY_PVH32 : X86_ENTRY_LONG64;
	k->entry = pvh ? pvh_entry : eh.e_entry;
	k->initrd_addr_max = 0xffffffffull;
	if (!guest_mem_slice(mem, k->entry, 1) || k->entry >= ram_end)
		return perr_setx(err, -EINVAL,
				 "ELF entry point %#llx is not in guest RAM (a virtual address? "
				 "the kernel's e_entry must be physical)",
				 (unsigned long long)k->entry);
	return 0;
}

static int load_raw(struct guest_mem *mem, uint64_t ram_end, const struct image_file *f,
		    struct x86_kernel *k, struct perr *err)
{
	if (f->size == 0)
		return perr_setx(err, -EINVAL, "image is empty");
	k->format = X86_KERNEL_RAW;
	k->mode = X86_ENTRY_LONG64;
	k->load_gpa = X86_HIMEM_GPA;
	k->entry = X86_HIMEM_GPA;
	k->end_gpa = X86_HIMEM_GPA + f->size;
	k->initrd_addr_max = 0xffffffffull;
	return read_into_guest(mem, ram_end, f, 0, k->load_gpa, f->size, "raw image", err);
}

int x86_kernel_load(struct guest_mem *mem, uint64_t ram_end, const char *path,
		    struct x86_kernel *out, struct perr *err)
{
	memset(out, 0, sizeof(*out));
	autoimage struct image_file f;
	int rc = image_open(path, &f, err);
	if (rc < 0)
		return rc;
	uint8_t head[LOADER_HEAD_SIZE];
	size_t len = f.size < sizeof(head) ? (size_t)f.size : sizeof(head);
	rc = read_full_at(f.fd, head, len, 0, err);
	if (rc < 0)
		return rc;

	if (len >= SELFMAG && memcmp(head, ELFMAG, SELFMAG) == 0)
		return load_elf(mem, ram_end, &f, head, len, out, err);
	if (len >= 0x206 && head[0x1fe] == 0x55 && head[0x1ff] == 0xaa &&
	    memcmp(head + 0x202, "HdrS", 4) == 0)
		return load_bzimage(mem, ram_end, &f, head, len, out, err);
	return load_raw(mem, ram_end, &f, out, err);
}

int x86_initrd_load(struct guest_mem *mem, uint64_t ram_end, const struct x86_kernel *k,
		    const char *path, uint64_t *gpa, uint64_t *size, struct perr *err)
{
	autoimage struct image_file f;
	int rc = image_open(path, &f, err);
	if (rc < 0)
		return rc;
	if (!f.regular || f.size == 0)
		return perr_setx(err, -EINVAL, "not a non-empty regular file");

	uint64_t len = f.size;
	uint64_t top = ram_end;
	if (k->initrd_addr_max < UINT64_MAX && k->initrd_addr_max + 1 < top)
		top = k->initrd_addr_max + 1;
	uint64_t addr = top > len ? (top - len) & ~0xfffull : 0;
	if (top <= len || addr < k->end_gpa)
		return perr_setx(err, -EINVAL,
				 "%llu bytes do not fit between the kernel (ends at %#llx) and "
				 "%#llx; give the guest more memory (-m)",
				 (unsigned long long)len, (unsigned long long)k->end_gpa,
				 (unsigned long long)top);
	rc = read_into_guest(mem, ram_end, &f, 0, addr, len, "initrd", err);
	if (rc < 0)
		return rc;
	*gpa = addr;
	*size = len;
	return 0;
}
