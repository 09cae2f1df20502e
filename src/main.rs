//! deadband command line: parse arguments, call a driver, map errors to exit codes (0 ok, 2 bad input, 1 runtime).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "deadband",
    version,
    about = "Online dead-zone trend fitting for market and measurement streams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {}

fn main() {
    let _cli = Cli::parse();
}
