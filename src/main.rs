//! The `pretune` binary: the command line ([`cli`]), the demos ([`demo`]) and their reports
//! ([`report`]), on top of the `pretune` library.

mod cli;
mod demo;
mod report;

use std::process::ExitCode;

use clap::Parser;

/// Training allocates and frees large tensors every step; mimalloc keeps that memory mapped
/// instead of returning it to the kernel each time (measured: about +50% training throughput
/// on the CNN with Burn's flex backend). The binary chooses; the library leaves it to its users.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keep freed memory mapped for reuse instead of handing it back to the kernel after mimalloc's
/// default second: a training step frees and reallocates the same large buffers, and each
/// re-fault made the kernel zero fresh 2 MB pages (17% of BERT-Mini training in perf; measured
/// +24% texts/s without purging). Peak memory is unchanged: memory is reused, not added.
fn keep_freed_memory() {
    // mimalloc v3's `mi_option_purge_delay` (mimalloc.h); -1 = never purge.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a process-wide option; mimalloc reads it when it considers purging.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

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
    keep_freed_memory();
    let cli = cli::Cli::parse();
    match cli::run(cli) {
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
