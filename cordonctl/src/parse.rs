//! Parsers for cordonctl's arguments: times, durations and bounded counts. An argument is
//! refused with the reason, never quietly changed.

use cordon_proto::limits;
use std::time::Duration;

/// Parses RFC 3339, Unix milliseconds, or an age (`15m` = 15 minutes ago) into Unix ms.
pub fn time(s: &str) -> Result<i64, String> {
    if let Some(ms) = absolute(s) {
        return Ok(ms);
    }
    let age = duration(s)
        .map_err(|_| format!("{s:?} is not RFC 3339, Unix milliseconds or an age like 15m"))?;
    Ok(cordon_proto::time::now_ms() - age.as_millis() as i64)
}

/// Parses RFC 3339, Unix milliseconds, or a time from now (`90d` = in 90 days) into Unix ms.
pub fn until(s: &str) -> Result<i64, String> {
    if let Some(ms) = absolute(s) {
        return Ok(ms);
    }
    let ahead = duration(s)
        .map_err(|_| format!("{s:?} is not RFC 3339, Unix milliseconds or a span like 90d"))?;
    Ok(cordon_proto::time::now_ms() + ahead.as_millis() as i64)
}

/// RFC 3339 or Unix milliseconds, as Unix ms.
fn absolute(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Parses `90s`, `15m`, `1h`, `7d` or a bare number of seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("duration {s:?} must look like 90s, 15m, 1h or 7d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "duration {s:?}: unknown unit {unit:?} (use s, m, h or d)"
            ));
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

/// A duration that must not be zero (a TTL of nothing would be a silent default).
pub fn ttl(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: must be longer than 0s")),
        d => Ok(d),
    }
}

/// A listing's `--limit`: 1 to [`limits::MAX_LIST`], never quietly changed.
pub fn limit(s: &str) -> Result<u32, String> {
    bounded(s, limits::MAX_LIST)
}

/// A token's `--uses`: 1 to [`limits::MAX_TOKEN_USES`].
pub fn uses(s: &str) -> Result<u32, String> {
    bounded(s, limits::MAX_TOKEN_USES)
}

/// A stored event, as `events query` shows it: its agent (id or prefix) and sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId {
    pub agent: String,
    pub seq: u64,
}

/// Parses `AGENT:SEQ` (an agent id or unambiguous prefix, a colon, the event's sequence
/// number).
pub fn event_id(s: &str) -> Result<EventId, String> {
    let form = "AGENT:SEQ, an agent id (or prefix) and the event's sequence number as `events query` shows them";
    let Some((agent, seq)) = s.trim().rsplit_once(':') else {
        return Err(format!("{s:?} is not an event: use {form}"));
    };
    if agent.is_empty() {
        return Err(format!("{s:?} names no agent: use {form}"));
    }
    let seq = seq
        .parse::<u64>()
        .map_err(|_| format!("{seq:?} is not a sequence number (a whole number): use {form}"))?;
    Ok(EventId {
        agent: agent.to_string(),
        seq,
    })
}

fn bounded(s: &str, max: u32) -> Result<u32, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=u64::from(max)).contains(&n) => Ok(n as u32),
        _ => Err(format!("{s:?}: must be a whole number from 1 to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(duration("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert!(duration("1w").is_err());
        assert!(duration("h").is_err());
        assert!(ttl("0s").is_err());
    }

    #[test]
    fn events_are_agent_colon_seq() {
        let e = event_id("ab12cd:42").unwrap();
        assert_eq!((e.agent.as_str(), e.seq), ("ab12cd", 42));
        let no_colon = event_id("foo").unwrap_err();
        assert!(
            no_colon.contains("\"foo\" is not an event: use AGENT:SEQ"),
            "{no_colon}"
        );
        let bad_seq = event_id("a:b").unwrap_err();
        assert!(
            bad_seq.contains("\"b\" is not a sequence number"),
            "{bad_seq}"
        );
        assert!(event_id(":7").unwrap_err().contains("names no agent"));
        assert!(event_id("a:-1").is_err() && event_id("a:").is_err());
    }

    #[test]
    fn counts_are_bounded_not_clamped() {
        assert_eq!(limit("10000"), Ok(10_000));
        assert!(limit("10001").is_err());
        assert!(limit("0").is_err());
        assert!(uses("-1").is_err());
    }
}
