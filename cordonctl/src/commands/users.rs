//! `cordonctl users`: people and service accounts. `invite` prints a one-time code for the
//! invitee's `cordonctl login`; `list`, `show`, `enable`, `disable`, `revoke`, `set-role` and
//! `set-password` manage them; `set-totp` gives a person a TOTP secret for the console; `whoami` shows the caller's own identity and permissions.

use crate::cli::{JSON_LINES, JSON_ONE};
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rpc::call;
use crate::term::{clean, outln};
use crate::text::time;
use crate::{json, parse};
use clap::Subcommand;
use cordon_proto::*;

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Creates a person (or, with --service, a service account) and prints a one-time
    /// invite code for their `cordonctl login`.
    Invite {
        /// 1 to 64 of a-z, 0-9, '.', '_', '-'; unique across people and service accounts.
        name: String,
        /// viewer, analyst, responder, approver or admin.
        #[arg(long)]
        role: String,
        /// A service account (an automation calling the API), not a person.
        #[arg(long)]
        service: bool,
        /// When the principal expires: RFC 3339, Unix milliseconds, or a time from now such
        /// as 90d. Never, when not given.
        #[arg(long, value_parser = parse::until)]
        expires: Option<i64>,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Every person and service account.
    List {
        #[arg(long, help = JSON_LINES)]
        json: bool,
    },
    /// One person or service account.
    Show {
        /// The person's or service account's name.
        name: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Lets a disabled principal act again.
    Enable {
        /// The person's or service account's name.
        name: String,
    },
    /// Stops a principal at once (their open streams close); `enable` undoes it.
    Disable {
        /// The person's or service account's name.
        name: String,
    },
    /// Stops a principal for good: the name is never reused.
    Revoke {
        /// The person's or service account's name.
        name: String,
    },
    /// Changes a principal's role.
    SetRole {
        /// The person's or service account's name.
        name: String,
        /// viewer, analyst, responder, approver or admin.
        role: String,
    },
    /// Sets the web console password, read from standard input (one line).
    SetPassword {
        /// The person's or service account's name.
        name: String,
    },
    /// Gives a person a new TOTP secret for console sign-in and prints it (once), or with
    /// --off removes theirs.
    SetTotp {
        /// The person's name.
        name: String,
        /// Remove the secret: sign-in then needs no code.
        #[arg(long)]
        off: bool,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Who this credential belongs to, and what its role allows.
    Whoami {
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: UsersCmd) -> Result<(), CtlError> {
    let state = |name: String, state: &str| SetUserStateRequest {
        name,
        state: state.into(),
    };
    let changed = match cmd {
        UsersCmd::Invite {
            name,
            role,
            service,
            expires,
            json,
        } => {
            let req = InviteUserRequest {
                name,
                kind: if service { "service" } else { "user" }.into(),
                role,
                expires_at_ms: expires.unwrap_or(0),
            };
            let made = call(admin.invite_user(req)).await?;
            return if json {
                json::print_one(&made)
            } else {
                show_invite(&made)
            };
        }
        UsersCmd::List { json } => {
            let all = call(admin.list_users(ListUsersRequest {})).await?.users;
            return if json {
                json::print_lines(&all)
            } else {
                list(&all)
            };
        }
        UsersCmd::Show { name, json } => {
            let u = call(admin.get_user(GetUserRequest { name })).await?;
            return if json { json::print_one(&u) } else { show(&u) };
        }
        UsersCmd::SetTotp { name, off, json } => {
            let req = SetUserTotpRequest { name, enable: !off };
            let set = call(admin.set_user_totp(req)).await?;
            return if json {
                json::print_one(&set)
            } else {
                show_totp(&set)
            };
        }
        UsersCmd::Whoami { json } => {
            let me = call(admin.who_am_i(WhoAmIRequest {})).await?;
            return if json {
                json::print_one(&me)
            } else {
                whoami(&me)
            };
        }
        UsersCmd::Enable { name } => call(admin.set_user_state(state(name, "enabled"))).await?,
        UsersCmd::Disable { name } => call(admin.set_user_state(state(name, "disabled"))).await?,
        UsersCmd::Revoke { name } => call(admin.set_user_state(state(name, "revoked"))).await?,
        UsersCmd::SetRole { name, role } => {
            call(admin.set_user_role(SetUserRoleRequest { name, role })).await?
        }
        UsersCmd::SetPassword { name } => {
            let password = read_password()?;
            call(admin.set_user_password(SetUserPasswordRequest { name, password })).await?
        }
    };
    show(&changed)
}

/// One line of standard input, without its line end.
fn read_password() -> Result<String, CtlError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(CtlError::read("standard input"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn show_invite(i: &InviteUserResponse) -> Result<(), CtlError> {
    let u = i.user.clone().unwrap_or_default();
    outln!("invited:        {} {} ({})", u.kind, clean(&u.name), u.role);
    outln!("invite code:    {}", i.code);
    outln!("code expires:   {}", time(i.code_expires_at_ms));
    outln!();
    outln!(
        "give the code to them privately; on their own machine they run:\n  \
         cordonctl login --controller {} --ca-fingerprint {} --invite-file FILE\n\
         (or CORDON_INVITE=CODE in the environment). The code works once.",
        i.controller_url,
        i.ca_fingerprint
    );
    Ok(())
}

fn list(all: &[UserRecord]) -> Result<(), CtlError> {
    outln!(
        "{:<24}  {:<8}  {:<10}  {:<9}  {:<25}  CREATED BY",
        "NAME",
        "KIND",
        "ROLE",
        "STATE",
        "LAST CREDENTIAL"
    );
    for u in all {
        outln!(
            "{:<24}  {:<8}  {:<10}  {:<9}  {:<25}  {}",
            clean(&u.name),
            u.kind,
            u.role,
            u.state,
            when(u.last_login_ms),
            clean(&u.created_by)
        );
    }
    Ok(())
}

fn when(ms: i64) -> String {
    if ms == 0 { "never".into() } else { time(ms) }
}

fn show(u: &UserRecord) -> Result<(), CtlError> {
    outln!("name:            {}", clean(&u.name));
    outln!("kind:            {}", u.kind);
    outln!("role:            {}", u.role);
    outln!("state:           {}", u.state);
    outln!("expires:         {}", when(u.expires_at_ms));
    outln!(
        "created:         {} by {}",
        time(u.created_at_ms),
        clean(&u.created_by)
    );
    outln!(
        "last credential: {} (serial {})",
        when(u.last_login_ms),
        u.cert_serial
    );
    outln!(
        "password set:    {}",
        if u.has_password { "yes" } else { "no" }
    );
    outln!("totp set:        {}", if u.has_totp { "yes" } else { "no" });
    Ok(())
}

fn show_totp(t: &SetUserTotpResponse) -> Result<(), CtlError> {
    let u = t.user.clone().unwrap_or_default();
    if t.secret.is_empty() {
        outln!(
            "TOTP removed for {}: console sign-in needs no code",
            clean(&u.name)
        );
        return Ok(());
    }
    outln!("TOTP secret for {}: {}", clean(&u.name), t.secret);
    outln!("for an authenticator app: {}", t.otpauth_uri);
    outln!("give it to them privately; it is not shown again. The console now asks for a code.");
    Ok(())
}

fn whoami(me: &WhoAmIResponse) -> Result<(), CtlError> {
    let u = me.user.clone().unwrap_or_default();
    outln!(
        "{} {} ({}), certificate serial {}",
        u.kind,
        clean(&u.name),
        u.role,
        me.cert_serial
    );
    outln!("may: {}", me.permissions.join(", "));
    Ok(())
}
