//! cordonctl: administer a Cordon controller.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = cordon_controller::ctl::Cli::parse();
    cordon_proto::process::init_tracing("warn");
    if let Err(e) = cordon_controller::ctl::run(cli).await {
        eprintln!("cordonctl: {e:#}");
        std::process::exit(1);
    }
}
