//! The states of the things the store keeps (commands, incidents, playbook runs, their steps
//! and approvals), as enums. Each is stored as text; this file is the only mapping between the
//! two, so a name is spelled once and an unknown one in the database is a corrupt row, not a
//! state nobody handles.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

/// Declares a status enum with its stored names.
macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every stored name, in declaration order.
            pub const NAMES: &[&str] = &[$($text,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The state a stored name stands for.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl tokio_postgres::types::ToSql for $name {
            fn to_sql(
                &self,
                ty: &tokio_postgres::types::Type,
                out: &mut bytes::BytesMut,
            ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                <&str as tokio_postgres::types::ToSql>::to_sql(&self.as_str(), ty, out)
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                <&str as tokio_postgres::types::ToSql>::accepts(ty)
            }

            tokio_postgres::types::to_sql_checked!();
        }

        impl<'a> tokio_postgres::types::FromSql<'a> for $name {
            fn from_sql(
                ty: &tokio_postgres::types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                let name = <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
                Self::parse(name)
                    .ok_or_else(|| format!("unknown {} {name:?}", stringify!($name)).into())
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                <&str as tokio_postgres::types::FromSql>::accepts(ty)
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let name = value.as_str()?;
                Self::parse(name).ok_or_else(|| {
                    FromSqlError::Other(format!("unknown {} {name:?}", stringify!($name)).into())
                })
            }
        }
    };
}

status_enum! {
    /// Where a command stands: every command ends succeeded, failed or expired.
    CommandStatus {
        Pending = "pending",
        Delivered = "delivered",
        Succeeded = "succeeded",
        Failed = "failed",
        Expired = "expired",
    }
}

impl CommandStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Expired)
    }
}

status_enum! {
    /// An incident's state, set by people and playbooks.
    IncidentStatus {
        Open = "open",
        Contained = "contained",
        Resolved = "resolved",
        FalsePositive = "false_positive",
    }
}

status_enum! {
    /// A playbook run's state.
    RunStatus {
        Running = "running",
        WaitingApproval = "waiting_approval",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Stopped by a denial or an approval that timed out.
        Aborted = "aborted",
    }
}

impl RunStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Aborted)
    }
}

status_enum! {
    /// How a run's step stands or ended.
    StepStatus {
        /// Its command is sent and the agent's result awaited.
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Its condition did not hold.
        Skipped = "skipped",
        DryRun = "dry_run",
        Denied = "denied",
        /// Its approval was not decided in time.
        Expired = "expired",
    }
}

impl StepStatus {
    /// The run goes on after a step that ended this way, whatever `on_failure` says.
    pub fn ok(self) -> bool {
        matches!(self, Self::Succeeded | Self::Skipped | Self::DryRun)
    }
}

status_enum! {
    /// A request for a person's decision.
    ApprovalStatus {
        Pending = "pending",
        Approved = "approved",
        Denied = "denied",
        Expired = "expired",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_maps_back_to_its_state_and_unknown_names_are_refused() {
        for name in RunStatus::NAMES {
            assert_eq!(RunStatus::parse(name).map(|s| s.as_str()), Some(*name));
        }
        for name in StepStatus::NAMES {
            assert_eq!(StepStatus::parse(name).map(|s| s.as_str()), Some(*name));
        }
        assert_eq!(
            IncidentStatus::parse("false_positive"),
            Some(IncidentStatus::FalsePositive)
        );
        assert_eq!(ApprovalStatus::parse("Approved"), None);
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let bad: rusqlite::Result<CommandStatus> =
            conn.query_row("SELECT 'done'", [], |r| r.get(0));
        assert!(bad.is_err());
        let good: CommandStatus = conn
            .query_row("SELECT ?1", [CommandStatus::Expired], |r| r.get(0))
            .unwrap();
        assert_eq!(good, CommandStatus::Expired);
    }
}
