//! The controller's settings as files give them: defaults, each table, and every refusal.
use super::*;

fn parse(extra: &str) -> Result<ControllerConfig, String> {
    let text = format!("listen = \"127.0.0.1:7443\"\nurl = \"https://localhost:7443\"\n{extra}");
    let cfg: ControllerConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
    cfg.validate()?;
    Ok(cfg)
}

#[test]
fn the_store_is_sqlite_unless_a_postgres_url_is_given() {
    let sqlite = parse("").unwrap();
    assert_eq!(sqlite.store.postgres(), None);
    assert!(!toml::to_string(&sqlite).unwrap().contains("[store]"));
    let pg =
        parse("[store]\nurl = \"postgres://cordon:secret@db.example:5432/cordon\"\npool_size = 8")
            .unwrap();
    let o = pg.store.postgres().expect("a PostgreSQL store");
    assert_eq!(o.url, "postgres://cordon:secret@db.example:5432/cordon");
    assert_eq!(o.pool_size, 8);
    assert_eq!(o.statement_timeout, std::time::Duration::from_secs(30));
    for (bad, why) in [
        ("url = \"mysql://db/cordon\"", "postgres:// URL"),
        (
            "url = \"postgres://u:secret@db:notaport/x\"",
            "postgres:// URL",
        ),
        ("url = \"postgres://db/x\"\npool_size = 0", "1 to 256"),
        ("statement_timeout_secs = 0", "1 to 3600"),
    ] {
        let err = parse(&format!("[store]\n{bad}")).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
        assert!(
            !err.contains("secret"),
            "the password stays out of errors: {err}"
        );
    }
}

#[test]
fn event_retention_defaults_to_thirty_days_without_a_row_cap() {
    assert_eq!(parse("").unwrap().events, EventRetention::default());
    assert_eq!(
        parse("[events]\nmax_rows = 50000").unwrap().events,
        EventRetention {
            retention_days: 30,
            max_rows: 50_000
        }
    );
    assert_eq!(
        parse("[events]\nretention_days = 0")
            .unwrap()
            .events
            .cutoff_ms(1_000),
        None
    );
}

#[test]
fn bad_event_retention_is_refused() {
    for (bad, why) in [
        ("retention_days = 36501", "at most"),
        ("max_rows = 10", "at least"),
        ("retention_days = -1", "invalid value"),
        ("max_rows = \"many\"", "invalid type"),
        ("keep = 3", "unknown field"),
    ] {
        let err = parse(&format!("[events]\n{bad}")).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn listener_and_enrolment_limits_have_defaults_and_bad_ones_are_refused() {
    let cfg = parse("").unwrap();
    assert_eq!(cfg.listener, ListenerConfig::default());
    assert_eq!(cfg.enrolment, EnrolmentConfig::default());
    let cfg = parse("[listener]\nmax_connections_per_source = 4\n[enrolment]\nburst = 3").unwrap();
    assert_eq!(cfg.listener.max_connections_per_source, 4);
    assert_eq!(cfg.enrolment.burst, 3);
    for (bad, why) in [
        ("[listener]\nhandshake_timeout_secs = 0", "1 to 300"),
        ("[listener]\nfirst_request_timeout_secs = 301", "1 to 300"),
        (
            "[listener]\nhandshake_timeout_secs = 20",
            "at least handshake",
        ),
        ("[listener]\nmax_connections = 0", "positive"),
        (
            "[listener]\nmax_connections = 10\nmax_connections_per_source = 11",
            "at most",
        ),
        ("[listener]\nrefusal_log_interval_secs = 0", "1 to 3600"),
        ("[listener]\nidle = 3", "unknown field"),
        ("[enrolment]\nburst = 0", "1 to 100000"),
        ("[enrolment]\nrefill_per_minute = 0", "refill_per_minute"),
        ("[enrolment]\nrate = 1", "unknown field"),
    ] {
        let err = parse(bad).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn notify_webhooks_are_read_from_controller_toml() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "0123456789abcdef").unwrap();
    let cfg = parse(&format!(
        "[[notify.webhooks]]\nname = \"soc\"\nurl = \"http://127.0.0.1:9000/hook\"\n\
         secret_file = {:?}\nretries = 1\n\
         [[notify.webhooks]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/x\"\nslack = true",
        secret.path()
    ))
    .unwrap();
    let names: Vec<_> = cfg
        .notify
        .webhooks
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(names, ["soc", "chat"]);
    assert_eq!(cfg.notify.webhooks[0].retries, 1);
    assert!(parse("").unwrap().notify.is_empty());
    let err =
        parse("[[notify.webhooks]]\nname = \"x\"\nurl = \"ftp://h/\"\nslack = true").unwrap_err();
    assert!(err.contains("http or https"), "{err}");
    // An empty [notify] is left out of a written config.
    let written = toml::to_string_pretty(&parse("").unwrap()).unwrap();
    assert!(!written.contains("notify"), "{written}");
}

#[test]
fn the_console_is_off_unless_it_has_an_address() {
    let cfg = parse("").unwrap();
    assert_eq!(cfg.console, ConsoleConfig::default());
    assert_eq!(
        parse("[console]\nlisten = \"\"").unwrap().console.listen,
        None
    );
    let on = parse("[console]\nlisten = \"127.0.0.1:7444\"\nsession_idle_secs = 60").unwrap();
    assert_eq!(on.console.listen, Some("127.0.0.1:7444".parse().unwrap()));
    assert_eq!(on.console.session_idle_secs, 60);
    for (bad, why) in [
        ("listen = \"nowhere\"", "invalid socket address"),
        ("session_idle_secs = 0", "positive"),
        ("session_idle_secs = 100\nsession_max_secs = 50", "at least"),
        ("port = 1", "unknown field"),
        ("listen = \"127.0.0.1:7443\"", "another address"),
    ] {
        let err = parse(&format!("[console]\n{bad}")).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn a_written_config_reads_back_the_same() {
    let mut cfg = ControllerConfig::new(
        "127.0.0.1:7443".parse().unwrap(),
        "https://localhost:7443".into(),
    );
    cfg.events.max_rows = 1_000_000;
    cfg.console.listen = Some("127.0.0.1:7444".parse().unwrap());
    let back: ControllerConfig = toml::from_str(&toml::to_string_pretty(&cfg).unwrap()).unwrap();
    assert_eq!(back.events, cfg.events);
    assert_eq!(back.console, cfg.console);
}

#[test]
fn replica_urls_are_checked_and_go_after_the_controllers_own() {
    let plain = parse("").unwrap();
    assert_eq!(plain.controller_urls(), ["https://localhost:7443"]);
    assert!(!toml::to_string(&plain).unwrap().contains("replica_urls"));
    let two = parse("replica_urls = [\"https://ctl-b.example:7443\"]").unwrap();
    assert_eq!(
        two.controller_urls(),
        ["https://localhost:7443", "https://ctl-b.example:7443"]
    );
    for (bad, why) in [
        ("[\"http://ctl-b:7443\"]", "https://HOST:PORT"),
        ("[\"https://localhost:7443\"]", "listed twice"),
        ("[\"https://b:1\", \"https://b:1/\"]", "listed twice"),
    ] {
        let err = parse(&format!("replica_urls = {bad}")).unwrap_err();
        assert!(
            err.contains("replica_urls") && err.contains(why),
            "{bad}: {err}"
        );
    }
}
