//! How alerts fold together: a rule firing again on a host within the alert window counts on
//! its alert; a new alert joins the host's most recent incident still collecting alerts if
//! that was updated within the incident window, raising its severity to the highest level
//! among its alerts; otherwise it opens an incident.

/// Sigma's levels, lowest first.
pub const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

/// Rank of a Sigma level (unknown levels rank lowest).
pub fn level_rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

/// The windows that fold repeats into one alert and alerts into one incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grouping {
    pub alert_window_ms: i64,
    pub incident_window_ms: i64,
}

impl Grouping {
    /// Whether a firing at `now_ms` counts on the alert of the same rule and host last seen
    /// at `last_at_ms`.
    pub fn is_repeat(&self, last_at_ms: i64, now_ms: i64) -> bool {
        last_at_ms >= now_ms - self.alert_window_ms
    }

    /// Whether a new alert at `now_ms` joins the incident last updated at `updated_at_ms`.
    pub fn joins_incident(&self, updated_at_ms: i64, now_ms: i64) -> bool {
        updated_at_ms >= now_ms - self.incident_window_ms
    }
}

/// An incident's severity once an alert of `level` joins it: the higher of the two.
pub fn raised_severity<'a>(current: &'a str, level: &'a str) -> &'a str {
    if level_rank(level) > level_rank(current) {
        level
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Grouping = Grouping {
        alert_window_ms: 600_000,
        incident_window_ms: 3_600_000,
    };

    #[test]
    fn windows_include_their_edge_and_nothing_older() {
        let now = 10_000_000;
        assert!(G.is_repeat(now - 600_000, now));
        assert!(!G.is_repeat(now - 600_001, now));
        assert!(G.joins_incident(now - 3_600_000, now));
        assert!(!G.joins_incident(now - 3_600_001, now));
    }

    #[test]
    fn severity_only_rises_and_unknown_levels_rank_lowest() {
        assert_eq!(raised_severity("medium", "high"), "high");
        assert_eq!(raised_severity("critical", "low"), "critical");
        assert_eq!(raised_severity("weird", "informational"), "weird");
        assert_eq!(raised_severity("low", "weird"), "low");
    }
}
