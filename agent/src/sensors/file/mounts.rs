//! Which filesystems the fanotify sensor marks: one mount of every real filesystem in
//! /proc/self/mountinfo (the one showing the filesystem's root, where there is one, so paths
//! read back through it are whole). Kernel and pseudo filesystems hold no files anyone writes
//! to disk, and are skipped; tmpfs is kept (/tmp, /dev/shm).

use std::collections::HashMap;
use std::path::PathBuf;

/// Filesystem types never marked.
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "bpf",
    "tracefs",
    "debugfs",
    "securityfs",
    "mqueue",
    "pstore",
    "configfs",
    "fusectl",
    "autofs",
    "binfmt_misc",
    "hugetlbfs",
    "efivarfs",
    "nsfs",
    "rpc_pipefs",
    "selinuxfs",
    "devtmpfs",
];

/// One filesystem to mark, through the mount point given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    pub fstype: String,
    /// `major:minor` of the filesystem: mounts sharing it are one filesystem.
    pub dev: String,
}

/// The filesystems to mark, from the text of a mountinfo file, in the order first seen.
pub fn filesystems(mountinfo: &str) -> Vec<Mount> {
    let mut order: Vec<String> = Vec::new();
    let mut best: HashMap<String, (bool, Mount)> = HashMap::new();
    for line in mountinfo.lines() {
        let Some((mount, whole)) = parse_line(line) else {
            continue;
        };
        if PSEUDO.contains(&mount.fstype.as_str()) {
            continue;
        }
        match best.get(&mount.dev) {
            None => order.push(mount.dev.clone()),
            Some((true, _)) => continue,
            Some((false, _)) if !whole => continue,
            Some(_) => {}
        }
        best.insert(mount.dev.clone(), (whole, mount));
    }
    order
        .into_iter()
        .filter_map(|dev| best.remove(&dev).map(|(_, m)| m))
        .collect()
}

/// One line: the mount, and whether it shows the filesystem's root.
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_line(line: &str) -> Option<(Mount, bool)> {
    let (head, tail) = line.split_once(" - ")?;
    let mut fields = head.split(' ');
    let dev = fields.nth(2)?.to_string();
    let root = fields.next()?;
    let point = unescape(fields.next()?);
    let fstype = tail.split(' ').next()?.to_string();
    Some((
        Mount {
            point: PathBuf::from(point),
            fstype,
            dev,
        },
        root == "/",
    ))
}

/// Mount points have space, tab, newline and backslash written as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')));
        match octal.and_then(|n| u8::try_from(n).ok()) {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:5 / /dev rw,nosuid - devtmpfs udev rw
25 22 0:30 / /tmp rw - tmpfs tmpfs rw
26 22 8:1 /srv/data /mnt/my\\040data rw - ext4 /dev/sda1 rw
27 22 8:2 /sub /data rw - xfs /dev/sda2 rw
28 22 8:2 / /data2 rw - xfs /dev/sda2 rw
29 22 0:31 / /dev/shm rw - tmpfs tmpfs rw
";

    #[test]
    fn each_real_filesystem_once_through_a_mount_of_its_root() {
        let got = filesystems(INFO);
        let points: Vec<_> = got.iter().map(|m| m.point.to_str().unwrap()).collect();
        assert_eq!(points, vec!["/", "/tmp", "/data2", "/dev/shm"]);
        assert_eq!(got[2].fstype, "xfs");
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        assert_eq!(unescape("/mnt/my\\040data\\134x"), "/mnt/my data\\x");
        assert_eq!(unescape("/odd\\9"), "/odd\\9");
        let (m, whole) = parse_line(INFO.lines().nth(4).unwrap()).unwrap();
        assert_eq!(m.point, PathBuf::from("/mnt/my data"));
        assert!(!whole);
    }
}
