//! The samples: one per rule, in the order of the rules' files.

use super::{Sample, Seen, run};

macro_rules! bin {
    ($name:literal) => {
        concat!("/usr/bin/", $name)
    };
}

pub const SAMPLES: &[Sample] = &[
    Sample {
        rule_id: "e2072cab-8c9a-459b-b63c-40ae79e27031",
        title: "Decode Base64 Encoded Text",
        command: "echo aWQK | base64 -d",
        seen: &[run(bin!("base64"), "base64 -d")],
        near_miss: "echo id | base64",
        near_miss_seen: &[run(bin!("base64"), "base64")],
    },
    Sample {
        rule_id: "ba592c6d-6888-43c3-b8c6-689b8fe47337",
        title: "Linux Base64 Encoded Pipe to Shell",
        command: "echo aWQK | base64 -d | sh",
        seen: &[
            run(bin!("base64"), "base64 -d"),
            run(bin!("dash"), "sh"),
            run(bin!("id"), "id"),
        ],
        near_miss: "echo aWQK | base64 -d | cat",
        near_miss_seen: &[run(bin!("base64"), "base64 -d"), run(bin!("cat"), "cat")],
    },
    Sample {
        rule_id: "880973f3-9708-491c-a77b-2a35a1921158",
        title: "Linux Shell Pipe to Shell",
        command: "echo id | sh",
        seen: &[run(bin!("dash"), "sh"), run(bin!("id"), "id")],
        near_miss: "echo id | cat",
        near_miss_seen: &[run(bin!("cat"), "cat")],
    },
    Sample {
        rule_id: "312b42b1-bded-4441-8b58-163a3af58775",
        title: "Potentially Suspicious Execution From Tmp Folder",
        command: "cp /usr/bin/true /tmp/cordon-sample-true && /tmp/cordon-sample-true; rm -f /tmp/cordon-sample-true",
        seen: &[
            run(bin!("cp"), "cp /usr/bin/true /tmp/cordon-sample-true"),
            run("/tmp/cordon-sample-true", "/tmp/cordon-sample-true"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-true"),
        ],
        near_miss: "cp /usr/bin/true /var/tmp/cordon-sample-true && /var/tmp/cordon-sample-true; rm -f /var/tmp/cordon-sample-true",
        near_miss_seen: &[
            run(bin!("cp"), "cp /usr/bin/true /var/tmp/cordon-sample-true"),
            run("/var/tmp/cordon-sample-true", "/var/tmp/cordon-sample-true"),
            run(bin!("rm"), "rm -f /var/tmp/cordon-sample-true"),
        ],
    },
    Sample {
        rule_id: "5cd16c8f-44a6-4654-81e7-a84d6db507d4",
        title: "Process Execution From Shared Memory Directory",
        command: "cp /usr/bin/true /dev/shm/cordon-sample-true && /dev/shm/cordon-sample-true; rm -f /dev/shm/cordon-sample-true",
        seen: &[
            run(bin!("cp"), "cp /usr/bin/true /dev/shm/cordon-sample-true"),
            run("/dev/shm/cordon-sample-true", "/dev/shm/cordon-sample-true"),
            run(bin!("rm"), "rm -f /dev/shm/cordon-sample-true"),
        ],
        near_miss: "cp /usr/bin/true /dev/shm/cordon-sample-true && /usr/bin/true /dev/shm/cordon-sample-true; rm -f /dev/shm/cordon-sample-true",
        near_miss_seen: &[
            run(bin!("cp"), "cp /usr/bin/true /dev/shm/cordon-sample-true"),
            run(bin!("true"), "/usr/bin/true /dev/shm/cordon-sample-true"),
            run(bin!("rm"), "rm -f /dev/shm/cordon-sample-true"),
        ],
    },
    Sample {
        rule_id: "c21c4eaa-ba2e-419a-92b2-8371703cbe21",
        title: "Setuid and Setgid",
        command: "touch /tmp/cordon-sample-suid && chown root /tmp/cordon-sample-suid && chmod u+s /tmp/cordon-sample-suid; rm -f /tmp/cordon-sample-suid",
        seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-suid"),
            run(bin!("chown"), "chown root /tmp/cordon-sample-suid"),
            run(bin!("chmod"), "chmod u+s /tmp/cordon-sample-suid"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-suid"),
        ],
        near_miss: "touch /tmp/cordon-sample-suid && chown root /tmp/cordon-sample-suid && chmod u+x /tmp/cordon-sample-suid; rm -f /tmp/cordon-sample-suid",
        near_miss_seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-suid"),
            run(bin!("chown"), "chown root /tmp/cordon-sample-suid"),
            run(bin!("chmod"), "chmod u+x /tmp/cordon-sample-suid"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-suid"),
        ],
    },
    Sample {
        rule_id: "34979410-e4b5-4e5d-8cfb-389fdff05c12",
        title: "Remove Immutable File Attribute",
        command: "touch /tmp/cordon-sample-attr && chattr -i /tmp/cordon-sample-attr; rm -f /tmp/cordon-sample-attr",
        seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-attr"),
            run(bin!("chattr"), "chattr -i /tmp/cordon-sample-attr"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-attr"),
        ],
        near_miss: "touch /tmp/cordon-sample-attr && chattr -d /tmp/cordon-sample-attr; rm -f /tmp/cordon-sample-attr",
        near_miss_seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-attr"),
            run(bin!("chattr"), "chattr -d /tmp/cordon-sample-attr"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-attr"),
        ],
    },
    Sample {
        rule_id: "d3feb4ee-ff1d-4d3d-bd10-5b28a238cc72",
        title: "File and Directory Discovery - Linux",
        command: "ls -R /tmp/cordon-sample-none",
        seen: &[run(bin!("ls"), "ls -R /tmp/cordon-sample-none")],
        near_miss: "ls -l /tmp/cordon-sample-none",
        near_miss_seen: &[run(bin!("ls"), "ls -l /tmp/cordon-sample-none")],
    },
    Sample {
        rule_id: "1182f3b3-e716-4efa-99ab-d2685d04360f",
        title: "History File Deletion",
        command: "rm -f /tmp/cordon-sample-home/.bash_history",
        seen: &[run(
            bin!("rm"),
            "rm -f /tmp/cordon-sample-home/.bash_history",
        )],
        near_miss: "rm -f /tmp/cordon-sample-home/.bash_profile",
        near_miss_seen: &[run(
            bin!("rm"),
            "rm -f /tmp/cordon-sample-home/.bash_profile",
        )],
    },
    Sample {
        rule_id: "d7821ff1-4527-4e33-9f84-d0d57fa2fb66",
        title: "Print History File Contents",
        command: "cat /tmp/cordon-sample-home/.bash_history",
        seen: &[run(
            bin!("cat"),
            "cat /tmp/cordon-sample-home/.bash_history",
        )],
        near_miss: "cat /tmp/cordon-sample-home/.bashrc",
        near_miss_seen: &[run(bin!("cat"), "cat /tmp/cordon-sample-home/.bashrc")],
    },
    Sample {
        rule_id: "0f79c4d2-4e1f-4683-9c36-b5469a665e06",
        title: "Access of Sudoers File Content",
        command: "head -c 0 /etc/sudoers",
        seen: &[run(bin!("head"), "head -c 0 /etc/sudoers")],
        near_miss: "head -c 0 /etc/hostname",
        near_miss_seen: &[run(bin!("head"), "head -c 0 /etc/hostname")],
    },
    Sample {
        rule_id: "676381a6-15ca-4d73-a9c8-6a22e970b90d",
        title: "Local Groups Discovery - Linux",
        command: "head -c 0 /etc/group",
        seen: &[run(bin!("head"), "head -c 0 /etc/group")],
        near_miss: "head -c 0 /etc/hostname",
        near_miss_seen: &[run(bin!("head"), "head -c 0 /etc/hostname")],
    },
    Sample {
        rule_id: "42df45e7-e6e9-43b5-8f26-bec5b39cc239",
        title: "System Information Discovery",
        command: "uname -a",
        seen: &[run(bin!("uname"), "uname -a")],
        near_miss: "arch",
        near_miss_seen: &[run(bin!("arch"), "arch")],
    },
    Sample {
        rule_id: "999c3b12-0a8c-40b6-8e13-dd7d62b75c7a",
        title: "Potentially Suspicious Named Pipe Created Via Mkfifo",
        command: "mkfifo /tmp/cordon-sample-fifo; rm -f /tmp/cordon-sample-fifo",
        seen: &[
            run(bin!("mkfifo"), "mkfifo /tmp/cordon-sample-fifo"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-fifo"),
        ],
        near_miss: "mkfifo /var/tmp/cordon-sample-fifo; rm -f /var/tmp/cordon-sample-fifo",
        near_miss_seen: &[
            run(bin!("mkfifo"), "mkfifo /var/tmp/cordon-sample-fifo"),
            run(bin!("rm"), "rm -f /var/tmp/cordon-sample-fifo"),
        ],
    },
    Sample {
        rule_id: "457df417-8b9d-4912-85f3-9dbda39c3645",
        title: "Suspicious Nohup Execution",
        command: "nohup true /tmp/cordon-sample >/dev/null 2>&1",
        seen: &[
            run(bin!("nohup"), "nohup true /tmp/cordon-sample"),
            run(bin!("true"), "true /tmp/cordon-sample"),
        ],
        near_miss: "nohup true /var/cordon-sample >/dev/null 2>&1",
        near_miss_seen: &[
            run(bin!("nohup"), "nohup true /var/cordon-sample"),
            run(bin!("true"), "true /var/cordon-sample"),
        ],
    },
    Sample {
        rule_id: "093d68c7-762a-42f4-9f46-95e79142571a",
        title: "Shell Execution via Nice - Linux",
        command: "echo true | nice /bin/sh",
        seen: &[
            run(bin!("nice"), "nice /bin/sh"),
            run(bin!("dash"), "/bin/sh"),
        ],
        near_miss: "echo true | nice /bin/cat",
        near_miss_seen: &[
            run(bin!("nice"), "nice /bin/cat"),
            run(bin!("cat"), "/bin/cat"),
        ],
    },
    Sample {
        rule_id: "bed978f8-7f3a-432b-82c5-9286a9b3031a",
        title: "Shell Invocation via Env Command - Linux",
        command: "env /bin/sh -c true",
        seen: &[
            run(bin!("env"), "env /bin/sh -c true"),
            run(bin!("dash"), "/bin/sh -c true"),
        ],
        near_miss: "env /bin/true",
        near_miss_seen: &[
            run(bin!("env"), "env /bin/true"),
            run(bin!("true"), "/bin/true"),
        ],
    },
    Sample {
        rule_id: "6adfbf8f-52be-4444-9bac-81b539624146",
        title: "Shell Execution via Find - Linux",
        command: "find . -maxdepth 0 -exec /bin/sh -c true \\;",
        seen: &[
            run(bin!("find"), "find . -maxdepth 0 -exec /bin/sh -c true ;"),
            Seen::ExecBy {
                image: bin!("dash"),
                command_line: "/bin/sh -c true",
                parent_image: bin!("find"),
                parent_command_line: "find . -maxdepth 0 -exec /bin/sh -c true ;",
            },
        ],
        near_miss: "find . -maxdepth 0 -exec /bin/true \\;",
        near_miss_seen: &[
            run(bin!("find"), "find . -maxdepth 0 -exec /bin/true ;"),
            Seen::ExecBy {
                image: bin!("true"),
                command_line: "/bin/true",
                parent_image: bin!("find"),
                parent_command_line: "find . -maxdepth 0 -exec /bin/true ;",
            },
        ],
    },
    Sample {
        rule_id: "4b09c71e-4269-4111-9cdd-107d8867f0cc",
        title: "Shell Execution via Flock - Linux",
        command: "flock -u /tmp /bin/sh -c true",
        seen: &[
            run(bin!("flock"), "flock -u /tmp /bin/sh -c true"),
            run(bin!("dash"), "/bin/sh -c true"),
        ],
        near_miss: "flock -u /tmp /bin/true",
        near_miss_seen: &[
            run(bin!("flock"), "flock -u /tmp /bin/true"),
            run(bin!("true"), "/bin/true"),
        ],
    },
    Sample {
        rule_id: "8c1a5675-cb85-452f-a298-b01b22a51856",
        title: "Suspicious Invocation of Shell via AWK - Linux",
        command: "awk 'BEGIN {system(\"/bin/sh -c true\")}'",
        seen: &[
            run(bin!("mawk"), "awk BEGIN {system(\"/bin/sh -c true\")}"),
            Seen::ExecBy {
                image: bin!("dash"),
                command_line: "sh -c /bin/sh -c true",
                parent_image: bin!("mawk"),
                parent_command_line: "awk BEGIN {system(\"/bin/sh -c true\")}",
            },
        ],
        near_miss: "awk 'BEGIN {print \"/bin/sh\"}'",
        near_miss_seen: &[run(bin!("mawk"), "awk BEGIN {print \"/bin/sh\"}")],
    },
    Sample {
        rule_id: "2953194b-e33c-4859-b9e8-05948c167447",
        title: "DD File Overwrite",
        command: "dd if=/dev/zero of=/tmp/cordon-sample-dd bs=1 count=1 2>/dev/null; rm -f /tmp/cordon-sample-dd",
        seen: &[
            run(
                bin!("dd"),
                "dd if=/dev/zero of=/tmp/cordon-sample-dd bs=1 count=1",
            ),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-dd"),
        ],
        near_miss: "dd if=/dev/urandom of=/tmp/cordon-sample-dd bs=1 count=1 2>/dev/null; rm -f /tmp/cordon-sample-dd",
        near_miss_seen: &[
            run(
                bin!("dd"),
                "dd if=/dev/urandom of=/tmp/cordon-sample-dd bs=1 count=1",
            ),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-dd"),
        ],
    },
    Sample {
        rule_id: "8344c0e5-5783-47cc-9cf9-a0f7fd03e6cf",
        title: "Potential Discovery Activity Using Find - Linux",
        command: "find /tmp/cordon-sample-none -perm -4000",
        seen: &[run(
            bin!("find"),
            "find /tmp/cordon-sample-none -perm -4000",
        )],
        near_miss: "find /tmp/cordon-sample-none -perm -0644",
        near_miss_seen: &[run(
            bin!("find"),
            "find /tmp/cordon-sample-none -perm -0644",
        )],
    },
    Sample {
        rule_id: "0cf7a157-8879-41a2-8f55-388dd23746b7",
        title: "Linux Recon Indicators",
        command: "find /tmp/cordon-sample-none -name .htpasswd",
        seen: &[run(
            bin!("find"),
            "find /tmp/cordon-sample-none -name .htpasswd",
        )],
        near_miss: "find /tmp/cordon-sample-none -name .htaccess",
        near_miss_seen: &[run(
            bin!("find"),
            "find /tmp/cordon-sample-none -name .htaccess",
        )],
    },
    Sample {
        rule_id: "30bcce26-51c5-49f2-99c8-7b59e3af36c7",
        title: "Execution Of Script Located In Potentially Suspicious Directory",
        command: "true /tmp/cordon-sample",
        seen: &[],
        near_miss: "true /var/cordon-sample",
        near_miss_seen: &[],
    },
    Sample {
        rule_id: "31545105-3444-4584-bebf-c466353230d2",
        title: "Touch Suspicious Service File",
        command: "touch -t 202001010000 /tmp/cordon-sample.service; rm -f /tmp/cordon-sample.service",
        seen: &[
            run(
                bin!("touch"),
                "touch -t 202001010000 /tmp/cordon-sample.service",
            ),
            run(bin!("rm"), "rm -f /tmp/cordon-sample.service"),
        ],
        near_miss: "touch -t 202001010000 /tmp/cordon-sample.conf; rm -f /tmp/cordon-sample.conf",
        near_miss_seen: &[
            run(
                bin!("touch"),
                "touch -t 202001010000 /tmp/cordon-sample.conf",
            ),
            run(bin!("rm"), "rm -f /tmp/cordon-sample.conf"),
        ],
    },
    Sample {
        rule_id: "d27ab432-2199-483f-a297-03633c05bae6",
        title: "OS Architecture Discovery Via Grep",
        command: "echo x86_64 | grep x86_64",
        seen: &[run(bin!("grep"), "grep x86_64")],
        near_miss: "echo amd64 | grep amd64",
        near_miss_seen: &[run(bin!("grep"), "grep amd64")],
    },
    Sample {
        rule_id: "c9d8b7fd-78e4-44fe-88f6-599135d46d60",
        title: "Security Software Discovery - Linux",
        command: "echo x | grep falcond",
        seen: &[run(bin!("grep"), "grep falcond")],
        near_miss: "echo x | grep falcon",
        near_miss_seen: &[run(bin!("grep"), "grep falcon")],
    },
    Sample {
        rule_id: "11701de9-d5a5-44aa-8238-84252f131895",
        title: "Docker Container Discovery Via Dockerenv Listing",
        command: "ls /.dockerenv",
        seen: &[run(bin!("ls"), "ls /.dockerenv")],
        near_miss: "ls /.dockerinit",
        near_miss_seen: &[run(bin!("ls"), "ls /.dockerinit")],
    },
    Sample {
        rule_id: "fa4aaed5-4fe0-498d-bbc0-08e3346387ba",
        title: "Copy Passwd Or Shadow From TMP Path",
        command: "cp /etc/passwd /tmp/cordon-sample-passwd && rm -f /tmp/cordon-sample-passwd",
        seen: &[
            run(bin!("cp"), "cp /etc/passwd /tmp/cordon-sample-passwd"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-passwd"),
        ],
        near_miss: "cp /etc/hostname /tmp/cordon-sample-hostname && rm -f /tmp/cordon-sample-hostname",
        near_miss_seen: &[
            run(bin!("cp"), "cp /etc/hostname /tmp/cordon-sample-hostname"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-hostname"),
        ],
    },
    Sample {
        rule_id: "6419afd1-3742-47a5-a7e6-b50386cd15f8",
        title: "Chmod Targeting Sensitive Directories",
        command: "touch /tmp/cordon-sample-mode && chmod 600 /tmp/cordon-sample-mode; rm -f /tmp/cordon-sample-mode",
        seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-mode"),
            run(bin!("chmod"), "chmod 600 /tmp/cordon-sample-mode"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-mode"),
        ],
        near_miss: "cd /tmp && touch cordon-sample-mode && chmod 600 cordon-sample-mode; rm -f cordon-sample-mode",
        near_miss_seen: &[
            run(bin!("touch"), "touch cordon-sample-mode"),
            run(bin!("chmod"), "chmod 600 cordon-sample-mode"),
            run(bin!("rm"), "rm -f cordon-sample-mode"),
        ],
    },
    Sample {
        rule_id: "fe2f9663-41cb-47e2-b954-8a228f3b9dff",
        title: "Linux Base64 Encoded Shebang In CLI",
        command: "echo IyEvYmluL3NoCg== | base64 -d",
        seen: &[run(bin!("base64"), "base64 -d")],
        near_miss: "echo IyEvdXNyL2Jpbgo= | base64 -d",
        near_miss_seen: &[run(bin!("base64"), "base64 -d")],
    },
    Sample {
        rule_id: "72f4ab3f-787d-495d-a55d-68c2ff46cf4c",
        title: "Connection Proxy",
        command: "env http_proxy=http://127.0.0.1:9 true",
        seen: &[
            run(bin!("env"), "env http_proxy=http://127.0.0.1:9 true"),
            run(bin!("true"), "true"),
        ],
        near_miss: "env no_proxy=127.0.0.1 true",
        near_miss_seen: &[
            run(bin!("env"), "env no_proxy=127.0.0.1 true"),
            run(bin!("true"), "true"),
        ],
    },
    Sample {
        rule_id: "746c86fb-ccda-4816-8997-01386263acc4",
        title: "Container Residence Discovery Via Proc Virtual FS",
        command: "head -c 0 /proc/2/status",
        seen: &[run(bin!("head"), "head -c 0 /proc/2/status")],
        near_miss: "head -c 0 /proc/1/status",
        near_miss_seen: &[run(bin!("head"), "head -c 0 /proc/1/status")],
    },
    Sample {
        rule_id: "b45e3d6f-42c6-47d8-a478-df6bd6cf534c",
        title: "Local System Accounts Discovery - Linux",
        command: "head -c 0 /etc/passwd",
        seen: &[run(bin!("head"), "head -c 0 /etc/passwd")],
        near_miss: "head -c 0 /etc/hostname",
        near_miss_seen: &[run(bin!("head"), "head -c 0 /etc/hostname")],
    },
    Sample {
        rule_id: "2fade0b6-7423-4835-9d4f-335b39b83867",
        title: "Shell Execution Of Process Located In Tmp Directory",
        command: "cp /usr/bin/dash /tmp/cordon-sample-sh && /tmp/cordon-sample-sh -c '/bin/sh -c true; true'; rm -f /tmp/cordon-sample-sh",
        seen: &[
            run(bin!("cp"), "cp /usr/bin/dash /tmp/cordon-sample-sh"),
            run(
                "/tmp/cordon-sample-sh",
                "/tmp/cordon-sample-sh -c /bin/sh -c true; true",
            ),
            Seen::ExecBy {
                image: bin!("dash"),
                command_line: "/bin/sh -c true",
                parent_image: "/tmp/cordon-sample-sh",
                parent_command_line: "/tmp/cordon-sample-sh -c /bin/sh -c true; true",
            },
            run(bin!("rm"), "rm -f /tmp/cordon-sample-sh"),
        ],
        near_miss: "cp /usr/bin/dash /var/tmp/cordon-sample-sh && /var/tmp/cordon-sample-sh -c '/bin/sh -c true; true'; rm -f /var/tmp/cordon-sample-sh",
        near_miss_seen: &[
            run(bin!("cp"), "cp /usr/bin/dash /var/tmp/cordon-sample-sh"),
            run(
                "/var/tmp/cordon-sample-sh",
                "/var/tmp/cordon-sample-sh -c /bin/sh -c true; true",
            ),
            Seen::ExecBy {
                image: bin!("dash"),
                command_line: "/bin/sh -c true",
                parent_image: "/var/tmp/cordon-sample-sh",
                parent_command_line: "/var/tmp/cordon-sample-sh -c /bin/sh -c true; true",
            },
            run(bin!("rm"), "rm -f /var/tmp/cordon-sample-sh"),
        ],
    },
    Sample {
        rule_id: "179b3686-6271-4d87-807d-17d843a8af73",
        title: "Suspicious Filename with Embedded Base64 Commands",
        command: "touch '/tmp/cordon-sample-{echo,aWQK}'; rm -f '/tmp/cordon-sample-{echo,aWQK}'",
        seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-{echo,aWQK}"),
            Seen::File("/tmp/cordon-sample-{echo,aWQK}"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-{echo,aWQK}"),
        ],
        near_miss: "touch /tmp/cordon-sample-echo; rm -f /tmp/cordon-sample-echo",
        near_miss_seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-echo"),
            Seen::File("/tmp/cordon-sample-echo"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-echo"),
        ],
    },
    Sample {
        rule_id: "c0239255-822c-4630-b7f1-35362bcb8f44",
        title: "Triple Cross eBPF Rootkit Default LockFile",
        command: "touch /tmp/rootlog; rm -f /tmp/rootlog",
        seen: &[
            run(bin!("touch"), "touch /tmp/rootlog"),
            Seen::File("/tmp/rootlog"),
            run(bin!("rm"), "rm -f /tmp/rootlog"),
        ],
        near_miss: "touch /tmp/rootlog.cordon-sample; rm -f /tmp/rootlog.cordon-sample",
        near_miss_seen: &[
            run(bin!("touch"), "touch /tmp/rootlog.cordon-sample"),
            Seen::File("/tmp/rootlog.cordon-sample"),
            run(bin!("rm"), "rm -f /tmp/rootlog.cordon-sample"),
        ],
    },
    Sample {
        rule_id: "1a2ea919-d11d-4d1e-8535-06cda13be20f",
        title: "Triple Cross eBPF Rootkit Default Persistence",
        command: "touch /tmp/cordon-sample-ebpfbackdoor; rm -f /tmp/cordon-sample-ebpfbackdoor",
        seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-ebpfbackdoor"),
            Seen::File("/tmp/cordon-sample-ebpfbackdoor"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-ebpfbackdoor"),
        ],
        near_miss: "touch /tmp/cordon-sample-ebpfbackdoor.txt; rm -f /tmp/cordon-sample-ebpfbackdoor.txt",
        near_miss_seen: &[
            run(bin!("touch"), "touch /tmp/cordon-sample-ebpfbackdoor.txt"),
            Seen::File("/tmp/cordon-sample-ebpfbackdoor.txt"),
            run(bin!("rm"), "rm -f /tmp/cordon-sample-ebpfbackdoor.txt"),
        ],
    },
];
