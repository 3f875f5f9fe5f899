//! The `jwtgate` command: parse the arguments, hand them to [`jwtgate::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    jwtgate::cli::main(jwtgate::cli::Cli::parse())
}
