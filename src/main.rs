//! The `pretune` binary: the command line ([`cli`]), the demos ([`demo`]) and their reports
//! ([`report`]), on top of the `pretune` library.

mod alloc;
mod cli;
mod demo;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Like other Unix tools, stop quietly when the reader of our output goes away (`| head`)
    // instead of panicking on the failed write.
    // And when a file size limit (`ulimit -f`) is hit, fail the write with an error we can
    // report (the default is to die silently), as when the disk is full.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    alloc::keep_freed_memory();
    let cli = cli::Cli::parse();
    // Under mpirun or srun, join the job (the guard finalises MPI when the command is done).
    let result = pretune::parallel::init().and_then(|_job| {
        if !pretune::parallel::is_root() {
            // Rank 0 speaks for the job; the others' errors still reach stderr.
            silence_stdout();
        }
        cli::run(cli)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            // 130: stopped by Ctrl-C (state saved); 2: the user's input needs fixing;
            // 1: something else went wrong.
            ExitCode::from(if err.is::<pretune::train::Interrupted>() {
                130
            } else if pretune::error::is_input_error(&err) {
                2
            } else {
                1
            })
        }
    }
}

/// Send standard output to /dev/null.
fn silence_stdout() {
    #[cfg(unix)]
    // SAFETY: opens /dev/null and duplicates it onto descriptor 1; nothing else holds it.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
}
