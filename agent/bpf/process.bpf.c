// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//
// Cordon's process sensor: BTF-enabled tracepoints at exec, fork and exit fill one ring buffer.
// Everything that can vanish with the process (argv, filename, ids, cgroup, tty, session) is
// read here in the kernel. Records that do not fit in the ring buffer are counted in `drops`,
// which user space reports; nothing is dropped silently.
//
// Kernel types are declared below with only the fields used; `preserve_access_index` makes
// every access a CO-RE relocation, resolved against the running kernel's BTF at load time.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define ARGS_MAX 8192
#define FILENAME_MAX 256
#define TTY_MAX 32
#define COMM_MAX 16

#define KIND_EXEC 1
#define KIND_FORK 2
#define KIND_EXIT 3

#define FLAG_ARGS_TRUNCATED 1
#define FLAG_ARGS_UNREAD 2
#define FLAG_FILENAME_UNREAD 4
#define FLAG_CWD_INCOMPLETE 8
#define FLAG_EXE_INCOMPLETE 16

// A path is sent as its components, last first; each cut at NAME_MAX_ bytes.
#define PATH_DEPTH 16
#define NAME_MAX_ 64

#define PIDTYPE_SID 3

// Standard streams: the kind of each of fd 0, 1, 2 (values shared with ebpf.rs).
#define STDIO_NONE 1
#define STDIO_FILE 2
#define STDIO_PIPE 3
#define STDIO_TTY 4
#define STDIO_SOCKET 5
#define STDIO_OTHER 6

#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define MINORBITS 20
#define AF_INET 2
#define AF_INET6 10

typedef struct { int counter; } atomic_t;
typedef struct { __u32 val; } kuid_t;
typedef struct { __u32 val; } kgid_t;

struct cred {
	kuid_t uid;
	kgid_t gid;
	kuid_t euid;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct tty_struct {
	char name[64];
} __attribute__((preserve_access_index));

struct upid {
	int nr;
} __attribute__((preserve_access_index));

struct pid {
	struct upid numbers[1];
} __attribute__((preserve_access_index));

struct signal_struct {
	atomic_t live;
	struct tty_struct *tty;
	struct pid *pids[4];
} __attribute__((preserve_access_index));

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

// The fields of struct sock_common sit in anonymous unions in the kernel; CO-RE finds them by
// name.
struct sock_common {
	__be32 skc_daddr;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	__be16 skc_dport;
	struct in6_addr skc_v6_daddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
	unsigned int i_rdev;
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	__u64 start_boottime;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	const struct cred *cred;
	struct mm_struct *mm;
	struct signal_struct *signal;
	struct fs_struct *fs;
	struct files_struct *files;
	char comm[16];
} __attribute__((preserve_access_index));

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct dentry *mnt_root;
} __attribute__((preserve_access_index));

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path pwd;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct linux_binprm {
	struct file *file;
	const char *filename;
} __attribute__((preserve_access_index));

// One standard stream: what kind of file it is, and for a socket its family, protocol, state
// and peer (port and address in network order, as the kernel keeps them).
struct stdio {
	__u32 kind;
	__u16 family;
	__u16 protocol;
	__u64 inode;
	__u16 dport;
	__u8 state;
	__u8 pad[5];
	__u8 daddr[16];
};

// One record. Shared layout with agent/src/sensors/process/ebpf.rs (little endian, no padding
// surprises: every field is naturally aligned). An exec record is sent up to the used part of
// `args`; fork and exit records only up to `comm` (HEADER_SIZE bytes), which is all they use.
struct record {
	__u32 kind;
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 session;
	__s32 exit_code;
	__u32 flags;
	__u32 args_len;
	__u32 cwd_depth;
	__u32 exe_depth;
	__u64 start_boottime_ns;
	__u64 parent_start_boottime_ns;
	__u64 cgroup_id;
	__u64 time_boot_ns;
	char comm[COMM_MAX];
	char tty[TTY_MAX];
	char filename[FILENAME_MAX];
	char cwd[PATH_DEPTH][NAME_MAX_];
	char exe[PATH_DEPTH][NAME_MAX_];
	// fd 0, 1, 2 of the new process, then of its parent.
	struct stdio stdio[6];
	char args[ARGS_MAX];
};

#define HEADER_SIZE __builtin_offsetof(struct record, comm)

// 4 MiB: room for about 6,000 exec/fork/exit triples the reader has not yet taken (an exec
// record is about 400 bytes plus its arguments, fork and exit 80). User space maps the data
// area twice, so this counts twice in the agent's resident memory.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

// Scratch space for building one record (too big for the BPF stack).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record);
} scratch SEC(".maps");

// Records that did not fit in the ring buffer, per kind (index = kind).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void count_drop(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &kind);
	if (n)
		*n += 1;
}

static __always_inline struct record *start(__u32 kind, struct task_struct *task)
{
	__u32 zero = 0;
	struct record *r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r) {
		count_drop(kind);
		return 0;
	}
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	const struct cred *cred = BPF_CORE_READ(task, cred);
	r->kind = kind;
	r->pid = BPF_CORE_READ(task, tgid);
	r->ppid = BPF_CORE_READ(parent, tgid);
	r->uid = BPF_CORE_READ(cred, uid.val);
	r->euid = BPF_CORE_READ(cred, euid.val);
	r->gid = BPF_CORE_READ(cred, gid.val);
	r->session = 0;
	r->exit_code = 0;
	r->flags = 0;
	r->args_len = 0;
	r->cwd_depth = 0;
	r->exe_depth = 0;
	// Processes are known by their thread-group leader's start time, as /proc shows it.
	r->start_boottime_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	r->parent_start_boottime_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
	r->cgroup_id = bpf_get_current_cgroup_id();
	r->time_boot_ns = bpf_ktime_get_boot_ns();
	BPF_CORE_READ_INTO(&r->comm, task, comm);
	r->tty[0] = 0;
	r->filename[0] = 0;
	return r;
}

static __always_inline void submit(struct record *r, __u64 size)
{
	if (bpf_ringbuf_output(&events, r, size, 0) != 0)
		count_drop(r->kind);
}

// At a mount's root, moves to where that mount sits in its parent (stacked mounts: up to
// twice). Returns 1 when (d, mnt) is the root of the whole tree.
static __always_inline int cross_mounts(struct dentry **d, struct mount **mnt)
{
#pragma unroll
	for (int k = 0; k < 2; k++) {
		if (*d != BPF_CORE_READ(*mnt, mnt.mnt_root))
			return 0;
		struct mount *up = BPF_CORE_READ(*mnt, mnt_parent);
		if (!up || up == *mnt)
			return 1;
		*d = BPF_CORE_READ(*mnt, mnt_mountpoint);
		*mnt = up;
	}
	return 0;
}

// Writes the components of (dentry, mount) into out[], last first, up to the root. Returns
// how many, or -1 if the path is deeper or a name longer than the record holds. Every
// iteration ends at the same depth whatever branch it took, so the verifier's work stays
// linear in PATH_DEPTH.
static __always_inline int walk_path(struct dentry *d, struct vfsmount *vm,
				     char out[PATH_DEPTH][NAME_MAX_])
{
	if (!d || !vm)
		return -1;
	struct mount *mnt = (struct mount *)((void *)vm - bpf_core_field_offset(struct mount, mnt));
#pragma unroll
	for (int i = 0; i < PATH_DEPTH; i++) {
		if (cross_mounts(&d, &mnt))
			return i;
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (!parent || parent == d)
			return i;
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		long n = bpf_probe_read_kernel_str(out[i], NAME_MAX_, name);
		if (n < 0 || n >= NAME_MAX_)
			return -1;
		d = parent;
	}
	if (cross_mounts(&d, &mnt) || BPF_CORE_READ(d, d_parent) == d)
		return PATH_DEPTH;
	return -1;
}

static __always_inline int is_tty(unsigned int rdev)
{
	unsigned int major = rdev >> MINORBITS;
	return major == 4 || major == 5 || (major >= 136 && major <= 143);
}

// Fills `out` for fd `fd` of `task`: the kind from the inode's mode, and for a socket what its
// struct sock says.
static __always_inline void read_stdio(struct task_struct *task, int fd, struct stdio *out)
{
	__builtin_memset(out, 0, sizeof(*out));
	out->kind = STDIO_NONE;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || BPF_CORE_READ(fdt, max_fds) <= (unsigned int)fd)
		return;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) < 0 || !file)
		return;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	unsigned short mode = BPF_CORE_READ(inode, i_mode) & S_IFMT;
	out->inode = BPF_CORE_READ(inode, i_ino);
	switch (mode) {
	case S_IFREG:
		out->kind = STDIO_FILE;
		return;
	case S_IFIFO:
		out->kind = STDIO_PIPE;
		return;
	case S_IFCHR:
		out->kind = is_tty(BPF_CORE_READ(inode, i_rdev)) ? STDIO_TTY : STDIO_OTHER;
		return;
	case S_IFSOCK:
		break;
	default:
		out->kind = STDIO_OTHER;
		return;
	}
	out->kind = STDIO_SOCKET;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out->protocol = BPF_CORE_READ(sk, sk_protocol);
	out->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	out->dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	// Read into typed locals: BPF_CORE_READ_INTO reads sizeof(*dst), one byte for an array.
	if (out->family == AF_INET) {
		__be32 a4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(out->daddr, &a4, sizeof(a4));
	} else if (out->family == AF_INET6) {
		struct in6_addr a6;
		BPF_CORE_READ_INTO(&a6, sk, __sk_common.skc_v6_daddr);
		__builtin_memcpy(out->daddr, &a6, sizeof(a6));
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(cordon_exec, struct task_struct *task, int old_pid, struct linux_binprm *bprm)
{
	struct record *r = start(KIND_EXEC, task);
	if (!r)
		return 0;

	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	struct tty_struct *tty = BPF_CORE_READ(sig, tty);
	if (tty)
		bpf_probe_read_kernel_str(r->tty, sizeof(r->tty), &tty->name);
	struct pid *sid = BPF_CORE_READ(sig, pids[PIDTYPE_SID]);
	if (sid)
		r->session = BPF_CORE_READ(sid, numbers[0].nr);

	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	int depth = walk_path(BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt), r->cwd);
	if (depth < 0)
		r->flags |= FLAG_CWD_INCOMPLETE;
	else
		r->cwd_depth = depth;
	struct file *file = BPF_CORE_READ(bprm, file);
	depth = walk_path(BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt),
			  r->exe);
	if (depth < 0)
		r->flags |= FLAG_EXE_INCOMPLETE;
	else
		r->exe_depth = depth;

	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
#pragma unroll
	for (int fd = 0; fd < 3; fd++) {
		read_stdio(task, fd, &r->stdio[fd]);
		read_stdio(parent, fd, &r->stdio[3 + fd]);
	}

	const char *filename = BPF_CORE_READ(bprm, filename);
	if (bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), filename) < 0)
		r->flags |= FLAG_FILENAME_UNREAD;

	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len > ARGS_MAX) {
		len = ARGS_MAX;
		r->flags |= FLAG_ARGS_TRUNCATED;
	}
	if (len > 0) {
		__u32 n = len;
		if (n > ARGS_MAX)
			n = ARGS_MAX;
		if (bpf_probe_read_user(r->args, n & (2 * ARGS_MAX - 1), (void *)arg_start) < 0) {
			r->flags |= FLAG_ARGS_UNREAD;
			len = 0;
		}
	}
	r->args_len = len;
	__u64 size = sizeof(*r) - ARGS_MAX + (len & (ARGS_MAX - 1));
	if (len >= ARGS_MAX)
		size = sizeof(*r);
	submit(r, size);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(cordon_fork, struct task_struct *parent, struct task_struct *child)
{
	// A new thread shares its parent's thread group: not a new process.
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	struct record *r = start(KIND_FORK, child);
	if (!r)
		return 0;
	r->ppid = BPF_CORE_READ(parent, tgid);
	r->parent_start_boottime_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
	submit(r, HEADER_SIZE);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(cordon_exit, struct task_struct *task)
{
	// Once per process: when its last thread exits.
	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	if (BPF_CORE_READ(sig, live.counter) != 0)
		return 0;
	struct record *r = start(KIND_EXIT, task);
	if (!r)
		return 0;
	r->exit_code = BPF_CORE_READ(task, exit_code);
	submit(r, HEADER_SIZE);
	return 0;
}

// The kernel asks BPF programs for a GPL-compatible licence string; this file may be used
// under the GPL-2.0 (or Apache-2.0), so it says "GPL".
char LICENSE[] SEC("license") = "GPL";
