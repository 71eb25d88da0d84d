//! A rule's `logsource`, and whether Cordon produces events for it.

use super::error::Problem;
use crate::fields::{FILE_EVENT, PROCESS_CREATION};
use crate::fields_net::{DNS_QUERY, NETWORK_CONNECTION};

/// The `logsource` section of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSource {
    pub category: Option<String>,
    pub product: Option<String>,
    pub service: Option<String>,
}

impl LogSource {
    /// The Cordon category rules of this log source run on, or why they are skipped.
    pub(crate) fn cordon_category(&self) -> Result<&'static str, Problem> {
        let skip = |reason: String| Err(Problem::Skipped(reason));
        if let Some(product) = self.product.as_deref()
            && !product.eq_ignore_ascii_case("linux")
        {
            return skip(format!(
                "product `{product}`: Cordon watches Linux hosts only"
            ));
        }
        if let Some(service) = self.service.as_deref() {
            return skip(match service {
                "auditd" => "service `auditd`: needs the Linux audit log, which Cordon's sensors \
                             do not read (its process and file events cover exec and writes)"
                    .to_string(),
                _ => format!(
                    "service `{service}`: needs that service's log lines; Cordon does not \
                     collect log files"
                ),
            });
        }
        match self.category.as_deref() {
            Some(PROCESS_CREATION) => Ok(PROCESS_CREATION),
            Some(FILE_EVENT) => Ok(FILE_EVENT),
            Some(NETWORK_CONNECTION) => Ok(NETWORK_CONNECTION),
            Some(DNS_QUERY) => Ok(DNS_QUERY),
            Some(other) => skip(format!(
                "category `{other}`: not produced by Cordon (it produces process_creation, \
                 file_event, network_connection and dns_query)"
            )),
            None => skip(
                "no category or service (generic Linux log lines such as syslog and auth.log): \
                 Cordon does not collect log files"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(category: Option<&str>, product: Option<&str>, service: Option<&str>) -> LogSource {
        LogSource {
            category: category.map(Into::into),
            product: product.map(Into::into),
            service: service.map(Into::into),
        }
    }

    #[test]
    fn supported_and_skipped_sources() {
        let linux = Some("linux");
        assert_eq!(
            ls(Some("process_creation"), linux, None).cordon_category(),
            Ok(PROCESS_CREATION)
        );
        assert_eq!(
            ls(Some("file_event"), None, None).cordon_category(),
            Ok(FILE_EVENT)
        );
        assert_eq!(
            ls(Some("network_connection"), linux, None).cordon_category(),
            Ok(NETWORK_CONNECTION)
        );
        assert_eq!(
            ls(Some("dns_query"), linux, None).cordon_category(),
            Ok(DNS_QUERY)
        );
        for (source, word) in [
            (ls(None, linux, Some("auditd")), "auditd"),
            (ls(None, linux, None), "no category"),
            (ls(None, linux, Some("sshd")), "sshd"),
            (
                ls(Some("process_creation"), Some("windows"), None),
                "windows",
            ),
            (ls(Some("file_delete"), linux, None), "file_delete"),
        ] {
            match source.cordon_category() {
                Err(Problem::Skipped(reason)) => assert!(reason.contains(word), "{reason}"),
                other => panic!("{source:?}: {other:?}"),
            }
        }
    }
}
