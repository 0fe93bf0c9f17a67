//! Everything that watches a run without changing it — progress display, `metrics.jsonl`,
//! resume saves, Ctrl-C, a demo's bookkeeping, the learning-rate finder — is an [`Observer`]
//! that the loop calls at each step and epoch (as burn-train's event processors, or fastai's
//! callbacks). The loop itself only trains.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::EpochRecord;
use super::state::{self, Progress};
use super::step::detached;
use crate::models::Classifier;

/// What an observer asks of the loop after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Control {
    Continue,
    /// End the run here, keeping what it has (the learning-rate finder has seen enough).
    Stop,
    /// Stop for the user (Ctrl-C): observers get [`Observer::interrupted`] to save, and the
    /// loop returns [`Interrupted`].
    Interrupt,
}

/// A run as observers see it after a step or an epoch.
pub struct RunView<'a> {
    /// Where the run is, with the current epoch's running sums and the history so far.
    pub progress: &'a Progress,
    pub model: &'a Classifier,
    /// The weights kept so far (best validation, or the last epoch's).
    pub best: &'a Classifier,
    pub optimizer: &'a ModuleOptimizer,
    /// The epoch being trained (1-based) and how many the run has.
    pub epoch: usize,
    pub epochs: usize,
    /// Steps done in this phase, and the learning rate and loss of the last one.
    pub phase_step: usize,
    pub lr: f64,
    pub loss: f64,
    /// Training examples in an epoch, and what they are (`img`, `texts`).
    pub examples: usize,
    pub noun: &'static str,
    /// When the epoch's training began.
    pub started: Instant,
}

impl RunView<'_> {
    /// Training throughput of the epoch so far.
    pub fn rate(&self) -> f64 {
        self.progress.seen as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }
}

/// Something that watches a run. Every method has a default that does nothing.
pub trait Observer {
    /// An epoch begins; `done` of its `examples` were already trained on (a resumed epoch).
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _examples: usize, _done: usize) {}

    /// A step ended.
    fn step(&mut self, _run: &RunView) -> Result<Control> {
        Ok(Control::Continue)
    }

    /// An epoch ended with `record` (validated; the best weights and progress updated).
    fn epoch_end(&mut self, _run: &RunView, _record: &EpochRecord) -> Result<()> {
        Ok(())
    }

    /// The run stops for the user after this step: the last moment to save.
    fn interrupted(&mut self, _run: &RunView) -> Result<()> {
        Ok(())
    }
}

/// A run stopped by the user (Ctrl-C) after saving its resume state.
#[derive(Debug, thiserror::Error)]
#[error("interrupted at epoch {epoch}, step {step}; the resume state is saved")]
pub struct Interrupted {
    pub epoch: usize,
    pub step: usize,
}

/// Progress for a person: a bar on a terminal, else a plain line every half minute; a line
/// per epoch; a word when early stopping ends the run.
pub struct Display {
    bar: ProgressBar,
    terminal: bool,
    /// Report perplexity rather than accuracy (masked language modelling).
    perplexity: bool,
    last_line: Instant,
    plain_every: Duration,
}

impl Display {
    /// A display for a run; `perplexity` for masked language modelling. Without a terminal, a
    /// progress line comes every `PRETUNE_PROGRESS_SECONDS` (default 30) inside an epoch.
    pub fn new(perplexity: bool) -> Display {
        let seconds = std::env::var("PRETUNE_PROGRESS_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(30.0);
        Display {
            bar: ProgressBar::hidden(),
            // Under mpirun stdout is a pseudo-terminal even when the job's output goes to a
            // file: plain lines there.
            terminal: std::io::stdout().is_terminal() && crate::parallel::place().size == 1,
            perplexity,
            last_line: Instant::now(),
            plain_every: Duration::from_secs_f64(seconds),
        }
    }

    fn running(&self, run: &RunView) -> String {
        let p = run.progress;
        let predicted = p.predicted.max(1) as f64;
        let loss = p.loss_sum / predicted;
        let quality = if self.perplexity {
            format!("ppl {:.1}", loss.exp())
        } else {
            format!("acc {:.4}", p.correct as f64 / predicted)
        };
        format!(
            "loss {loss:.4}  {quality}  {:.0} {}/s",
            run.rate(),
            run.noun
        )
    }
}

impl Observer for Display {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, examples: usize, done: usize) {
        self.bar =
            ProgressBar::with_draw_target(Some(examples as u64), ProgressDrawTarget::hidden());
        if self.terminal {
            self.bar.set_draw_target(ProgressDrawTarget::stdout());
            self.bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
        }
        self.bar.set_prefix(format!(
            "{epoch:>width$}/{epochs}",
            width = epochs.to_string().len()
        ));
        self.bar.set_position(done as u64);
        self.last_line = Instant::now();
    }

    fn step(&mut self, run: &RunView) -> Result<Control> {
        self.bar.set_position(run.progress.seen as u64);
        if self.terminal {
            self.bar.set_message(self.running(run));
        } else if self.last_line.elapsed() >= self.plain_every && run.progress.seen < run.examples {
            // Long epochs (text models) say how far they are, also into a log file.
            self.last_line = Instant::now();
            let left = run.examples.saturating_sub(run.progress.seen) as f64 / run.rate().max(1e-9);
            println!(
                "epoch {}/{}  {}/{} {}  {}  eta {left:.0}s",
                run.epoch,
                run.epochs,
                run.progress.seen,
                run.examples,
                run.noun,
                self.running(run)
            );
        }
        Ok(Control::Continue)
    }

    fn epoch_end(&mut self, run: &RunView, record: &EpochRecord) -> Result<()> {
        self.bar.finish_and_clear();
        println!(
            "{}",
            epoch_line(record, run.epochs, run.noun, self.perplexity)
        );
        if run.progress.stopped {
            println!("early stop: no better validation score in the last epochs (--patience)");
        }
        Ok(())
    }

    fn interrupted(&mut self, _run: &RunView) -> Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}

impl Drop for Display {
    /// A run that fails mid-epoch leaves no half-drawn bar behind its error message.
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// One line per epoch, as printed and for the log.
pub fn epoch_line(r: &EpochRecord, epochs: usize, noun: &str, perplexity: bool) -> String {
    let val = match (r.val_loss, r.val_accuracy) {
        (Some(l), _) if perplexity => format!("  val_loss {l:.4}  val_ppl {:.1}", l.exp()),
        (Some(l), Some(a)) => format!("  val_loss {l:.4}  val_acc {a:.4}"),
        _ => String::new(),
    };
    let train = if perplexity {
        format!("ppl {:.1}", r.train_loss.exp())
    } else {
        format!("acc {:.4}", r.train_accuracy)
    };
    let val = match r.val_error_rate {
        Some(e) => format!("{val}  val_error_rate {e:.4}"),
        None => val,
    };
    let skipped = match r.skipped_steps {
        0 => String::new(),
        n => format!("  ({n} non-finite steps skipped)"),
    };
    format!(
        "epoch {:>w$}/{epochs} {:<4}  loss {:.4}  {train}{val}  lr {:.2e}  {:.0} {noun}/s  {:.1}s{skipped}",
        r.epoch,
        r.phase,
        r.train_loss,
        r.lr,
        r.examples_per_second,
        r.seconds,
        w = epochs.to_string().len()
    )
}

/// `metrics.jsonl`: one JSON line per epoch. On resume it restarts from the history so far.
pub struct MetricsLog {
    file: std::fs::File,
}

impl MetricsLog {
    pub fn create(path: &Path, history: &[EpochRecord]) -> Result<MetricsLog> {
        let lines: String = history
            .iter()
            .map(|r| serde_json::to_string(r).map(|l| l + "\n"))
            .collect::<Result<_, _>>()?;
        crate::fs::write_atomic(path, lines.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        Ok(MetricsLog { file })
    }
}

impl Observer for MetricsLog {
    fn epoch_end(&mut self, _run: &RunView, record: &EpochRecord) -> Result<()> {
        writeln!(self.file, "{}", serde_json::to_string(record)?)?;
        Ok(())
    }
}

/// Saves the resume state after every epoch, every `every` steps, and when interrupted.
pub struct ResumeSaver {
    pub path: PathBuf,
    /// What the run is, saved with its state (the caller's description, e.g. the metadata of
    /// the checkpoint to be).
    pub run: serde_json::Value,
    pub every: Option<usize>,
}

impl ResumeSaver {
    fn save(&self, run: &RunView) -> Result<()> {
        let optim = run
            .optimizer
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("serialising the optimizer state: {e}"))?;
        state::save(
            &self.path,
            &self.run,
            run.progress,
            &detached(run.model),
            run.best,
            &optim,
        )
    }
}

impl Observer for ResumeSaver {
    fn step(&mut self, run: &RunView) -> Result<Control> {
        if self.every.is_some_and(|n| run.phase_step.is_multiple_of(n)) {
            self.save(run)?;
        }
        Ok(Control::Continue)
    }

    fn epoch_end(&mut self, run: &RunView, _record: &EpochRecord) -> Result<()> {
        self.save(run)
    }

    fn interrupted(&mut self, run: &RunView) -> Result<()> {
        self.save(run)
    }
}

/// Stops the run after the current step when `flag` is set (by a Ctrl-C handler).
pub struct Interrupt(pub &'static AtomicBool);

impl Observer for Interrupt {
    fn step(&mut self, _run: &RunView) -> Result<Control> {
        Ok(if self.0.load(Ordering::SeqCst) {
            Control::Interrupt
        } else {
            Control::Continue
        })
    }
}
