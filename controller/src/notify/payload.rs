//! Request bodies: the notification as JSON, or a Slack-compatible message.

use super::Notification;
use serde_json::json;

/// Slack's limits on a header block and a section's text, in characters.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_TEXT_MAX: usize = 3000;

/// The exact bytes POSTed (and signed).
pub fn body(n: &Notification, slack: bool) -> Result<Vec<u8>, serde_json::Error> {
    if slack {
        serde_json::to_vec(&slack_message(n))
    } else {
        serde_json::to_vec(n)
    }
}

/// `{"text": ..., "blocks": [...]}`: `text` alone is a complete message (and what Slack shows
/// in notifications and where blocks are not rendered); the blocks lay out the same facts.
pub fn slack_message(n: &Notification) -> serde_json::Value {
    let facts = facts(n);
    let text = truncate(
        &format!(
            "*[{}] {}*\n{}\n{}",
            escape(&n.level),
            escape(&n.title),
            escape(&n.text),
            facts.join(" · ")
        ),
        SLACK_TEXT_MAX,
    );
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&n.title, SLACK_HEADER_MAX)}}),
    ];
    if !n.text.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&escape(&n.text), SLACK_TEXT_MAX)}}));
    }
    let context: Vec<_> = facts
        .iter()
        .map(|f| json!({"type": "mrkdwn", "text": f}))
        .collect();
    blocks.push(json!({"type": "context", "elements": context}));
    json!({"text": text, "blocks": blocks})
}

/// Short `label: value` lines, escaped for mrkdwn.
fn facts(n: &Notification) -> Vec<String> {
    let mut facts = vec![format!("level: {}", escape(&n.level))];
    for (label, value) in [
        ("host", &n.hostname),
        ("agent", &n.agent_id),
        ("incident", &n.incident_id),
        ("playbook", &n.playbook),
    ] {
        if let Some(v) = value {
            facts.push(format!("{label}: {}", escape(&truncate(v, 200))));
        }
    }
    facts
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters; text from alerts (command
/// lines) must not turn into links or mentions.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let keep: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{keep}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_truncate_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 3).chars().count(), 3);
        assert_eq!(truncate("", 3), "");
    }
}
