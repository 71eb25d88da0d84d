//! cordonctl: administer a Cordon controller.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cordonctl::Cli::parse();
    cordon_proto::process::init_tracing("warn");
    match cordonctl::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cordonctl: {e}");
            ExitCode::FAILURE
        }
    }
}
