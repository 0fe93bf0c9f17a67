//! Errors the user can fix (bad input) are told apart from failures, so the CLI can
//! exit with 2 for the first and 1 for the second, as ripgrep does.

/// A problem with what the user gave us: a file, a flag, a checkpoint. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Build an [`InputError`] wrapped in `anyhow::Error`, `format!`-style.
#[macro_export]
macro_rules! input_error {
    ($($arg:tt)*) => { ::anyhow::Error::new($crate::error::InputError(format!($($arg)*))) };
}

/// Return early with an [`InputError`].
#[macro_export]
macro_rules! bail_input {
    ($($arg:tt)*) => { return Err($crate::input_error!($($arg)*)) };
}

/// Whether an error is the user's to fix: an [`InputError`] or an I/O error (a missing or
/// unreadable file) anywhere in its chain — but not a full disk, which is the machine's.
pub fn is_input_error(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
    err.chain().any(|e| {
        e.is::<InputError>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| !matches!(io.kind(), StorageFull | FileTooLarge | QuotaExceeded))
    })
}

/// `items` for a message: the first `shown` of them, then how many more there are. A file
/// that lacks a hundred thousand tensors gets a readable line, not a 75 MB one.
pub fn listed<T: std::fmt::Display>(items: &[T], shown: usize) -> String {
    let mut out: Vec<String> = items.iter().take(shown).map(T::to_string).collect();
    if items.len() > shown {
        out.push(format!("… ({} more)", items.len() - shown));
    }
    out.join(", ")
}
