//! The process sensor end to end, with the real binaries: execs on this host reach the
//! controller whole (argv, parent, hash, user, cwd), exits carry their status, and the agent
//! reports which sensor mode it runs in.

use cordon_proto::{ProcessEvent, event, process_event::Kind};
use cordon_tests::deploy::{AgentHandle, Deployment, event_line};
use cordon_tests::{poll, require_root};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

/// Process events stored for `agent` whose summary contains `text`.
fn process_events(d: &Deployment, agent: &AgentHandle, text: &str) -> Vec<ProcessEvent> {
    let out = d.ctl(&[
        "events",
        "query",
        "--agent",
        &agent.id,
        "--kind",
        "process",
        "--contains",
        text,
        "--limit",
        "10000",
        "--json",
    ]);
    out.lines()
        .map(|l| {
            // What a script reads: the kind by name, the body under "process".
            let raw: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let kind = raw["process"]["kind"].as_str();
            assert!(matches!(kind, Some("exec" | "exit")), "kind by name: {l}");
            event_line(l)
        })
        .filter_map(|r| match r.event?.body? {
            event::Body::Process(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn sha256_file(path: &str) -> String {
    cordon_proto::identity::fingerprint(&std::fs::read(path).expect("a readable file"))
        .trim_start_matches("sha256:")
        .to_string()
}

fn online_agent(d: &Deployment, name: &str) -> AgentHandle {
    let mut agent = d.enroll_agent(name, &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    agent
}

#[test]
fn an_exec_burst_is_stored_whole_with_argv_and_parent() {
    if !require_root("an_exec_burst_is_stored_whole_with_argv_and_parent") {
        return;
    }
    let d = Deployment::loopback("");
    let agent = online_agent(&d, "burst");
    let mode = poll(Duration::from_secs(10), || {
        let rec = d.agent_record(&agent.id);
        (rec["process_sensor"] != "").then_some(rec["process_sensor"].clone())
    });
    assert_eq!(
        mode.unwrap_or_default(),
        "ebpf",
        "the first heartbeat names the mode"
    );
    assert!(
        d.ctl(&["agents", "show", &agent.id])
            .contains("process: ebpf"),
        "agents show names the sensor mode"
    );

    // Two shells exec'ing short-lived processes side by side, each with a unique argument.
    const PER_SHELL: usize = 1500;
    let marker = format!("cordon-burst-{}", std::process::id());
    let script =
        format!("i=0; while [ $i -lt {PER_SHELL} ]; do /bin/true {marker}-$1-$i; i=$((i+1)); done");
    let cwd = std::env::current_dir().unwrap();
    let shells: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            let child = Command::new("/bin/sh")
                .args(["-c", &script, "sh", tag])
                .spawn()
                .unwrap();
            (tag.to_string(), child)
        })
        .collect();
    let mut shell_pid = BTreeMap::new();
    for (tag, mut child) in shells {
        shell_pid.insert(tag, child.id());
        assert!(child.wait().unwrap().success());
    }

    let expected: BTreeSet<String> = shell_pid
        .keys()
        .flat_map(|tag| {
            let marker = &marker;
            (0..PER_SHELL).map(move |i| format!("{marker}-{tag}-{i}"))
        })
        .collect();
    let is_burst = |p: &ProcessEvent| p.kind() == Kind::Exec && p.exe.ends_with("/true");
    let execs = poll(Duration::from_secs(90), || {
        let execs: Vec<_> = process_events(&d, &agent, &format!("{marker}-"))
            .into_iter()
            .filter(is_burst)
            .collect();
        (execs.len() >= expected.len()).then_some(execs)
    })
    .unwrap_or_else(|| {
        let got = process_events(&d, &agent, &format!("{marker}-"))
            .into_iter()
            .filter(is_burst)
            .count();
        panic!("{got} of {} execs stored", expected.len())
    });

    assert_eq!(execs.len(), expected.len(), "each exec stored once");
    let seen: BTreeSet<String> = execs.iter().map(|p| p.argv[1].clone()).collect();
    assert_eq!(seen, expected, "every unique argument, exactly");
    let true_exe = cordon_tests::real_path("/bin/true");
    let true_hash = sha256_file(&true_exe);
    let sh_exe = cordon_tests::real_path("/bin/sh");
    for p in &execs {
        let tag = p.argv[1].trim_start_matches(&format!("{marker}-"))[..1].to_string();
        assert_eq!(p.argv, vec!["/bin/true".to_string(), p.argv[1].clone()]);
        assert!(!p.argv_truncated);
        assert_eq!(p.ppid, shell_pid[&tag], "{p:?}");
        assert_eq!(p.parent_exe, sh_exe, "{p:?}");
        assert_eq!(
            p.parent_argv,
            vec![
                "/bin/sh".to_string(),
                "-c".into(),
                script.clone(),
                "sh".into(),
                tag
            ],
        );
        assert_eq!(p.exe, true_exe);
        assert_eq!(p.exe_sha256, true_hash);
        assert_eq!((p.uid, p.user.as_str()), (0, "root"));
        assert_eq!(p.cwd, cwd.to_string_lossy());
        assert!(p.start_ticks > 0 && p.start_time_ms > 0);
        assert_eq!(p.source, "ebpf");
        assert!(!p.partial, "{:?}", p.missing);
    }

    // An exit carries its status and lifetime.
    let exit_marker = format!("{marker}-exit");
    let mut child = Command::new("/bin/sh")
        .args(["-c", "sleep 0.2; exit 7", &exit_marker])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert_eq!(child.wait().unwrap().code(), Some(7));
    let exit = poll(Duration::from_secs(30), || {
        process_events(&d, &agent, &format!("(pid {pid})"))
            .into_iter()
            .find(|p| p.kind() == Kind::Exit && p.pid == pid)
    })
    .expect("the exit is stored");
    assert_eq!((exit.exit_code, exit.exit_signal), (7, 0));
    assert!(
        (200..5000).contains(&exit.lifetime_ms),
        "{}",
        exit.lifetime_ms
    );
    assert_eq!(exit.exe, sh_exe);
}
