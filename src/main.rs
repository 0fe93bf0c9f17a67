use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = pretune::cli::Cli::parse();
    match pretune::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            // 2: the user's input needs fixing; 1: something else went wrong.
            ExitCode::from(if pretune::error::is_input_error(&err) {
                2
            } else {
                1
            })
        }
    }
}
