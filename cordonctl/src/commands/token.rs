//! `cordonctl token create`: an enrolment token, printed with the controller URL and the CA
//! fingerprint an agent needs to enrol.

use crate::cli::JSON_ONE;
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rpc::call;
use crate::term::outln;
use crate::text::time;
use crate::{json, parse};
use clap::Subcommand;
use cordon_proto::limits::parse_label;
use cordon_proto::{CreateTokenRequest, CreateTokenResponse};
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Creates an enrolment token and prints it with the controller URL and CA fingerprint.
    Create {
        /// How long the token stays valid (e.g. 30m, 1h, 7d).
        #[arg(long, default_value = "1h", value_parser = parse::ttl)]
        ttl: Duration,
        /// How many enrolments it allows (1 to 100000).
        #[arg(long, default_value_t = 1, value_parser = parse::uses)]
        uses: u32,
        /// Label every agent enrolled with it (key=value; repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: TokenCmd) -> Result<(), CtlError> {
    let TokenCmd::Create {
        ttl,
        uses,
        labels,
        json,
    } = cmd;
    let req = CreateTokenRequest {
        ttl_secs: ttl.as_secs(),
        uses,
        labels: labels.into_iter().collect(),
    };
    let t = call(admin.create_token(req)).await?;
    if json {
        return json::print_one(&t);
    }
    show(&t);
    Ok(())
}

fn show(t: &CreateTokenResponse) {
    outln!("token:          {}", t.token);
    outln!("controller:     {}", t.controller_url);
    for replica in &t.replica_urls {
        outln!("replica:        {replica}");
    }
    outln!("ca fingerprint: {}", t.ca_fingerprint);
    outln!(
        "expires:        {}   uses: {}",
        time(t.expires_at_ms),
        t.uses
    );
    outln!();
    outln!(
        "enrol a host with (the token in the environment or a file, not on the command line,\n\
         where every process listing shows it):\n  \
         CORDON_TOKEN={} cordon-agent enroll {}--ca-fingerprint {}\n\
         or put the token in a file readable only by root and pass --token-file FILE",
        t.token,
        std::iter::once(&t.controller_url)
            .chain(&t.replica_urls)
            .map(|u| format!("--controller {u} "))
            .collect::<String>(),
        t.ca_fingerprint
    );
}
