//! Matching semantics, one feature at a time, through the public rule set.

use super::*;
use crate::fields::{FILE_EVENT, PROCESS_CREATION};
use crate::parse_rule;
use cordon_proto::{FileEvent, ProcessEvent, event, file_event, process_event};

/// A process_creation rule with this detection (indented by four spaces).
fn rule_with(id: &str, category: &str, detection: &str) -> Rule {
    let yaml = format!(
        "title: Test {id}\nid: {id}\nlevel: high\nauthor: Tester\ntags: [attack.t1]\n\
         logsource:\n    category: {category}\n    product: linux\ndetection:\n{detection}"
    );
    parse_rule(&yaml, "inline").unwrap_or_else(|e| panic!("{e}"))
}

fn set(detection: &str) -> RuleSet {
    let mut s = RuleSet::new();
    s.insert(rule_with("r", PROCESS_CREATION, detection))
        .unwrap();
    s
}

fn fires(s: &RuleSet, fields: &[(&str, &str)]) -> bool {
    !s.evaluate_fields(PROCESS_CREATION, &fields.to_vec())
        .is_empty()
}

#[test]
fn rule_sets_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RuleSet>();
    shareable::<Rule>();
}

#[test]
fn plain_value_is_whole_string_case_insensitive() {
    let s = set("    sel:\n        Image: '/usr/bin/Curl'\n    condition: sel\n");
    assert!(fires(&s, &[("Image", "/usr/bin/curl")]));
    assert!(fires(&s, &[("Image", "/USR/BIN/CURL")]));
    assert!(!fires(&s, &[("Image", "/usr/bin/curl2")]));
    assert!(!fires(&s, &[("Image", "x/usr/bin/curl")]));
    assert!(!fires(&s, &[("CommandLine", "/usr/bin/curl")]));
}

#[test]
fn contains_startswith_endswith() {
    let s = set(concat!(
        "    a:\n        CommandLine|contains: 'EVIL'\n",
        "    b:\n        Image|startswith: '/tmp/'\n",
        "    c:\n        Image|endswith: '/nc'\n",
        "    condition: a or b or c\n"
    ));
    assert!(fires(&s, &[("CommandLine", "run evil now")]));
    assert!(fires(&s, &[("Image", "/tmp/x")]));
    assert!(fires(&s, &[("Image", "/usr/bin/nc")]));
    assert!(!fires(
        &s,
        &[("Image", "/var/tmp/x"), ("CommandLine", "ev il")]
    ));
    assert!(!fires(&s, &[("Image", "/usr/bin/ncat")]));
}

#[test]
fn lists_are_or_and_all_makes_them_and() {
    let or = set(
        "    sel:\n        CommandLine|contains:\n            - ' -e '\n            - ' -c '\n    condition: sel\n",
    );
    assert!(fires(&or, &[("CommandLine", "nc -e /bin/sh")]));
    assert!(fires(&or, &[("CommandLine", "nc -c sh")]));
    assert!(!fires(&or, &[("CommandLine", "nc -l 80")]));
    let all = set(
        "    sel:\n        CommandLine|contains|all:\n            - 'base64'\n            - ' -d'\n    condition: sel\n",
    );
    assert!(fires(&all, &[("CommandLine", "base64 -d x")]));
    assert!(!fires(&all, &[("CommandLine", "base64 x")]));
}

#[test]
fn maps_are_and_and_lists_of_maps_are_or() {
    let and = set(
        "    sel:\n        Image|endswith: '/sh'\n        CommandLine|contains: 'x'\n    condition: sel\n",
    );
    assert!(fires(
        &and,
        &[("Image", "/bin/sh"), ("CommandLine", "sh x")]
    ));
    assert!(!fires(
        &and,
        &[("Image", "/bin/sh"), ("CommandLine", "sh y")]
    ));
    let or = set(
        "    sel:\n        - Image|endswith: '/sh'\n        - CommandLine|contains: 'x'\n    condition: sel\n",
    );
    assert!(fires(&or, &[("Image", "/bin/bash"), ("CommandLine", "x")]));
    assert!(fires(&or, &[("Image", "/bin/sh")]));
    assert!(!fires(&or, &[("Image", "/bin/bash")]));
}

#[test]
fn wildcards_and_escapes() {
    let s = set(
        "    sel:\n        CommandLine:\n            - 'curl * | *sh'\n            - 'a?c'\n            - 'lit\\*eral'\n    condition: sel\n",
    );
    assert!(fires(&s, &[("CommandLine", "curl http://x | bash")]));
    assert!(fires(&s, &[("CommandLine", "CURL x | SH")]));
    assert!(!fires(&s, &[("CommandLine", "curl x > bash")]));
    assert!(fires(&s, &[("CommandLine", "abc")]));
    assert!(!fires(&s, &[("CommandLine", "abbc")]));
    assert!(fires(&s, &[("CommandLine", "lit*eral")]));
    assert!(!fires(&s, &[("CommandLine", "litXeral")]));
}

#[test]
fn cased_and_re_are_case_sensitive() {
    let cased = set("    sel:\n        CommandLine|contains|cased: ' -O '\n    condition: sel\n");
    assert!(fires(&cased, &[("CommandLine", "wget -O x")]));
    assert!(!fires(&cased, &[("CommandLine", "wget -o x")]));
    let re = set("    sel:\n        CommandLine|re: '\\s-[FTd]\\s'\n    condition: sel\n");
    assert!(fires(&re, &[("CommandLine", "curl -F x")]));
    assert!(!fires(&re, &[("CommandLine", "curl -f x")]));
    let re_i = set("    sel:\n        CommandLine|re|i: '^CURL\\b'\n    condition: sel\n");
    assert!(fires(&re_i, &[("CommandLine", "curl x")]));
}

#[test]
fn regex_is_a_search_not_a_full_match() {
    let s = set("    sel:\n        CommandLine|re: '(.){20,}'\n    condition: sel\n");
    assert!(fires(&s, &[("CommandLine", &"x".repeat(25))]));
    assert!(!fires(&s, &[("CommandLine", "short")]));
}

#[test]
fn not_and_or_precedence() {
    // a or not b and c  ==  a or ((not b) and c)
    let s = set(concat!(
        "    a:\n        CommandLine|contains: 'aaa'\n",
        "    b:\n        CommandLine|contains: 'bbb'\n",
        "    c:\n        CommandLine|contains: 'ccc'\n",
        "    condition: a or not b and c\n"
    ));
    assert!(fires(&s, &[("CommandLine", "aaa bbb")]));
    assert!(fires(&s, &[("CommandLine", "ccc")]));
    assert!(!fires(&s, &[("CommandLine", "bbb ccc")]));
    assert!(!fires(&s, &[("CommandLine", "zzz")]));
    let p = set(concat!(
        "    a:\n        CommandLine|contains: 'aaa'\n",
        "    b:\n        CommandLine|contains: 'bbb'\n",
        "    c:\n        CommandLine|contains: 'ccc'\n",
        "    condition: (a or b) and not c\n"
    ));
    assert!(fires(&p, &[("CommandLine", "bbb")]));
    assert!(!fires(&p, &[("CommandLine", "aaa ccc")]));
}

#[test]
fn quantified_selections() {
    let body = concat!(
        "    selection_a:\n        CommandLine|contains: 'aaa'\n",
        "    selection_b:\n        CommandLine|contains: 'bbb'\n",
        "    filter_x:\n        CommandLine|contains: 'xxx'\n",
    );
    let one = set(&format!(
        "{body}    condition: 1 of selection_* and not 1 of filter_*\n"
    ));
    assert!(fires(&one, &[("CommandLine", "bbb")]));
    assert!(!fires(&one, &[("CommandLine", "bbb xxx")]));
    let all = set(&format!("{body}    condition: all of selection_*\n"));
    assert!(fires(&all, &[("CommandLine", "aaa bbb")]));
    assert!(!fires(&all, &[("CommandLine", "aaa")]));
    let them = set(&format!("{body}    condition: all of them\n"));
    assert!(fires(&them, &[("CommandLine", "aaa bbb xxx")]));
    assert!(!fires(&them, &[("CommandLine", "aaa bbb")]));
    let any = set(&format!("{body}    condition: 1 of them\n"));
    assert!(fires(&any, &[("CommandLine", "xxx")]));
    let two = set(&format!("{body}    condition: 2 of them\n"));
    assert!(fires(&two, &[("CommandLine", "aaa xxx")]));
    assert!(!fires(&two, &[("CommandLine", "aaa")]));
}

#[test]
fn null_exists_and_empty() {
    let null = set("    sel:\n        ParentImage: null\n    condition: sel\n");
    assert!(fires(&null, &[("Image", "/bin/x")]));
    assert!(fires(&null, &[("ParentImage", "")]));
    assert!(!fires(&null, &[("ParentImage", "/bin/sh")]));
    let not_null = set("    sel:\n        ParentImage: null\n    condition: not sel\n");
    assert!(fires(&not_null, &[("ParentImage", "/bin/sh")]));
    let exists = set("    sel:\n        User|exists: true\n    condition: sel\n");
    assert!(fires(&exists, &[("User", "root")]));
    assert!(!fires(&exists, &[("Image", "x")]));
    let missing = set("    sel:\n        User|exists: false\n    condition: sel\n");
    assert!(fires(&missing, &[("Image", "x")]));
    let empty = set("    sel:\n        User: ''\n    condition: sel\n");
    assert!(fires(&empty, &[("User", "")]));
    assert!(!fires(&empty, &[("User", "x")]));
    // An absent field fails a positive test, so `not` of it holds.
    let absent = set("    sel:\n        LogonId: 0\n    condition: not sel\n");
    assert!(fires(&absent, &[("Image", "x")]));
}

#[test]
fn keywords_search_command_line_and_image() {
    let s =
        set("    keywords:\n        - 'nc -e'\n        - 'mkfifo*/tmp'\n    condition: keywords\n");
    assert!(fires(&s, &[("CommandLine", "sh -c NC -E /bin/sh")]));
    assert!(fires(&s, &[("CommandLine", "x mkfifo a /tmp/f y")]));
    assert!(!fires(&s, &[("CommandLine", "nc -l")]));
    let img = set("    keywords: 'ncat'\n    condition: keywords\n");
    assert!(fires(&img, &[("Image", "/usr/bin/ncat")]));
    let all = set(
        "    keywords:\n        '|all':\n            - 'aaa'\n            - 'bbb'\n    condition: keywords\n",
    );
    assert!(fires(&all, &[("CommandLine", "aaa"), ("Image", "/bbb")]));
    assert!(!fires(&all, &[("CommandLine", "aaa")]));
}

#[test]
fn keywords_search_target_filename_for_file_events() {
    let mut s = RuleSet::new();
    s.insert(rule_with(
        "f",
        FILE_EVENT,
        "    keywords:\n        - 'authorized_keys'\n    condition: keywords\n",
    ))
    .unwrap();
    let hit = [("TargetFilename", "/root/.ssh/authorized_keys")];
    assert_eq!(s.evaluate_fields(FILE_EVENT, &hit).len(), 1);
    assert!(s.evaluate_fields(PROCESS_CREATION, &hit).is_empty());
}

#[test]
fn cidr_and_numeric_comparisons() {
    let cidr = set(
        "    sel:\n        DestinationIp|cidr:\n            - '10.0.0.0/8'\n            - 'fd00::/8'\n    condition: sel\n",
    );
    assert!(fires(&cidr, &[("DestinationIp", "10.2.3.4")]));
    assert!(fires(&cidr, &[("DestinationIp", "fd12::1")]));
    assert!(!fires(&cidr, &[("DestinationIp", "192.0.2.1")]));
    let lt = set("    sel:\n        ProcessId|lt: 100\n    condition: sel\n");
    assert!(fires(&lt, &[("ProcessId", "42")]));
    assert!(!fires(&lt, &[("ProcessId", "100")]));
    assert!(!fires(&lt, &[("ProcessId", "abc")]));
    let gte = set("    sel:\n        ProcessId|gte: 100\n    condition: sel\n");
    assert!(fires(&gte, &[("ProcessId", "100")]));
}

#[test]
fn numbers_match_as_text_on_numeric_fields() {
    let s = set("    sel:\n        ParentProcessId: 1\n    condition: sel\n");
    let e = proc_event("/bin/x", &["x"]);
    assert_eq!(s.evaluate(&e).len(), 1);
}

#[test]
fn base64offset_finds_encoded_text() {
    let s = set(
        "    sel:\n        CommandLine|base64offset|contains: '/bin/bash'\n    condition: sel\n",
    );
    use base64::Engine as _;
    for prefix in ["", "x", "xy"] {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{prefix}exec /bin/bash -i"));
        assert!(
            fires(
                &s,
                &[("CommandLine", &format!("echo {encoded} | base64 -d"))]
            ),
            "{prefix}"
        );
    }
    // Base64 is matched with its case: lower-casing it changes what it encodes.
    assert!(!fires(&s, &[("CommandLine", "echo l2jpbi9iyxno")]));
    let plain = set("    sel:\n        CommandLine|base64|contains: 'id'\n    condition: sel\n");
    assert!(fires(&plain, &[("CommandLine", "echo aWQ=")]));
}

#[test]
fn windash_matches_every_dash() {
    let s = set("    sel:\n        CommandLine|windash|contains: ' -enc '\n    condition: sel\n");
    assert!(fires(&s, &[("CommandLine", "pwsh -enc x")]));
    assert!(fires(&s, &[("CommandLine", "pwsh /enc x")]));
    assert!(fires(&s, &[("CommandLine", "pwsh \u{2013}enc x")]));
    assert!(!fires(&s, &[("CommandLine", "pwsh enc x")]));
}

#[test]
fn unicode_is_folded_too() {
    let s = set("    sel:\n        CommandLine|contains: 'ÄRGER'\n    condition: sel\n");
    assert!(fires(&s, &[("CommandLine", "x ärger y")]));
}

fn proc_event(exe: &str, argv: &[&str]) -> Event {
    Event {
        body: Some(event::Body::Process(ProcessEvent {
            kind: process_event::Kind::Exec as i32,
            pid: 10,
            ppid: 1,
            exe: exe.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn evaluates_proto_events_by_category() {
    let s = set(
        "    sel:\n        Image|endswith: '/nc'\n        CommandLine|contains: ' -e '\n    condition: sel\n",
    );
    let m = s.evaluate(&proc_event("/usr/bin/nc", &["nc", "-e", "/bin/sh", "h"]));
    assert_eq!(
        m,
        vec![RuleIdentity {
            rule_id: "r".into(),
            title: "Test r".into(),
            level: "high".into(),
            tags: vec!["attack.t1".into()],
            author: "Tester".into(),
        }]
    );
    assert!(
        s.evaluate(&proc_event("/usr/bin/nc", &["nc", "-l"]))
            .is_empty()
    );
    let mut exit = proc_event("/usr/bin/nc", &["nc", "-e", "/bin/sh"]);
    if let Some(event::Body::Process(p)) = exit.body.as_mut() {
        p.kind = process_event::Kind::Exit as i32;
    }
    assert!(s.evaluate(&exit).is_empty());

    let mut f = RuleSet::new();
    f.insert(rule_with(
        "f",
        FILE_EVENT,
        "    sel:\n        TargetFilename|startswith: '/etc/cron.d/'\n    condition: sel\n",
    ))
    .unwrap();
    let file = |kind: file_event::Kind| Event {
        body: Some(event::Body::File(FileEvent {
            kind: kind as i32,
            path: "/etc/cron.d/evil".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_eq!(f.evaluate(&file(file_event::Kind::Create)).len(), 1);
    assert_eq!(f.evaluate(&file(file_event::Kind::Modify)).len(), 1);
    assert!(f.evaluate(&file(file_event::Kind::Delete)).is_empty());
}

#[test]
fn insert_replace_remove_enable() {
    let mut s = RuleSet::new();
    s.insert(rule_with(
        "a",
        PROCESS_CREATION,
        "    sel:\n        Image: '/a'\n    condition: sel\n",
    ))
    .unwrap();
    s.insert(rule_with(
        "b",
        PROCESS_CREATION,
        "    sel:\n        Image: '/b'\n    condition: sel\n",
    ))
    .unwrap();
    assert!(fires(&s, &[("Image", "/a")]));
    // Replacing keeps the place and swaps the detection.
    s.insert(rule_with(
        "a",
        PROCESS_CREATION,
        "    sel:\n        Image: '/c'\n    condition: sel\n",
    ))
    .unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s.rules().next().map(|(r, _)| r.id.as_str()), Some("a"));
    assert!(!fires(&s, &[("Image", "/a")]));
    assert!(fires(&s, &[("Image", "/c")]));
    assert!(s.set_enabled("a", false));
    assert!(!fires(&s, &[("Image", "/c")]));
    assert_eq!(s.get("a").map(|(_, e)| e), Some(false));
    assert!(s.set_enabled("a", true));
    assert!(fires(&s, &[("Image", "/c")]));
    assert!(!s.set_enabled("zzz", true));
    assert!(s.remove("b"));
    assert!(!s.remove("b"));
    assert!(!fires(&s, &[("Image", "/b")]));
}

#[test]
fn every_matching_rule_is_returned_in_rule_order() {
    let mut s = RuleSet::new();
    for id in ["z", "y", "x"] {
        s.insert(rule_with(
            id,
            PROCESS_CREATION,
            "    sel:\n        CommandLine|contains: 'id'\n    condition: sel\n",
        ))
        .unwrap();
    }
    let ids: Vec<String> = s
        .evaluate_fields(PROCESS_CREATION, &[("CommandLine", "id")])
        .into_iter()
        .map(|m| m.rule_id)
        .collect();
    assert_eq!(ids, ["z", "y", "x"]);
}

mod differential {
    //! The indexed evaluation (Aho-Corasick flags, trigger prefilter) against a direct one
    //! over the same compiled rules, on events built from the community rules' own literals.
    use super::*;
    use crate::fields::Fields;
    use crate::sigma::compiled::{Detection, Expr, Leaf, Matcher, Test};
    use crate::sigma::value::Anchor;

    fn expr(d: &Detection, e: &Expr, f: &dyn Fields) -> bool {
        match e {
            Expr::And(v) => v.iter().all(|e| expr(d, e, f)),
            Expr::Or(v) => v.iter().any(|e| expr(d, e, f)),
            Expr::Not(e) => !expr(d, e, f),
            Expr::AtLeast(n, v) => v.iter().filter(|e| expr(d, e, f)).count() >= *n,
            Expr::Leaf(i) => leaf(d, &d.leaves[*i], f),
        }
    }

    fn leaf(d: &Detection, l: &Leaf, f: &dyn Fields) -> bool {
        let v = f.get(&d.fields[l.field]).map(|v| v.to_text().into_owned());
        match (&l.test, v) {
            (Test::Exists(want), v) => v.is_some() == *want,
            (Test::Values { when_absent, .. }, None) => *when_absent,
            (Test::Values { groups, all, .. }, Some(raw)) => {
                let lower = raw.to_lowercase();
                let g = |g: &Vec<Matcher>| g.iter().any(|m| matcher(d, m, &raw, &lower));
                if *all {
                    groups.iter().all(g)
                } else {
                    groups.iter().any(g)
                }
            }
        }
    }

    fn matcher(d: &Detection, m: &Matcher, raw: &str, lower: &str) -> bool {
        match m {
            Matcher::Any => true,
            Matcher::Empty => raw.is_empty(),
            Matcher::Lit(i) => {
                let lit = &d.literals[*i];
                let hay = if lit.cased { raw } else { lower };
                match lit.anchor {
                    Anchor::Contains => hay.contains(&lit.text),
                    Anchor::Start => hay.starts_with(&lit.text),
                    Anchor::End => hay.ends_with(&lit.text),
                    Anchor::Exact => hay == lit.text,
                }
            }
            Matcher::Regex { re, cased, .. } => re.is_match(if *cased { raw } else { lower }),
            Matcher::Cidr(net) => net.contains(raw),
            Matcher::Num(cmp, bound) => raw.parse::<f64>().is_ok_and(|v| cmp.holds(v, *bound)),
        }
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn indexed_evaluation_agrees_with_direct_evaluation() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/sigma/linux");
        let mut rules = Vec::new();
        for sub in ["process_creation", "file_event"] {
            rules.extend(crate::load_dir(&dir.join(sub)).loaded);
        }
        if rules.is_empty() {
            cordon_skips::skip(
                "indexed_evaluation_agrees_with_direct_evaluation",
                &format!("no community rules at {}", dir.display()),
            );
            return;
        }
        let mut set = RuleSet::new();
        for r in &rules {
            set.insert(r.clone()).unwrap();
        }
        // Every literal any rule looks for, in its original case where we can guess it.
        let words: Vec<String> = rules
            .iter()
            .flat_map(|r| r.detection.literals.iter().map(|l| l.text.clone()))
            .collect();
        let seps = [" ", "", "/", " -", "|", "  "];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut fired = 0;
        for round in 0..4000 {
            let phrase = |rng: &mut Rng| {
                let mut s = String::new();
                for _ in 0..1 + rng.below(4) {
                    s.push_str(seps[rng.below(seps.len())]);
                    s.push_str(&words[rng.below(words.len())]);
                }
                if rng.below(3) == 0 {
                    s = s.to_uppercase();
                }
                s
            };
            let image = format!("/usr/bin{}", phrase(&mut rng));
            let cmd = phrase(&mut rng);
            let parent = phrase(&mut rng);
            let target = phrase(&mut rng);
            let mut ev: Vec<(&str, &str)> = vec![
                ("Image", &image),
                ("CommandLine", &cmd),
                ("TargetFilename", &target),
            ];
            if round % 2 == 0 {
                ev.push(("ParentImage", &parent));
                ev.push(("ParentCommandLine", &parent));
            }
            for category in ["process_creation", "file_event"] {
                let got: Vec<String> = set
                    .evaluate_fields(category, &ev)
                    .into_iter()
                    .map(|m| m.rule_id)
                    .collect();
                let want: Vec<String> = rules
                    .iter()
                    .filter(|r| {
                        r.category() == category && expr(&r.detection, &r.detection.expr, &ev)
                    })
                    .map(|r| r.id.clone())
                    .collect();
                assert_eq!(got, want, "{category} {ev:?}");
                fired += got.len();
            }
        }
        assert!(
            fired > 1000,
            "the events fired only {fired} rules: not a useful comparison"
        );
    }
}
