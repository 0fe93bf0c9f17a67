//! The processes a run is spread over: this one alone, or the ranks of an MPI job
//! (`mpirun -np N pretune …`, Slurm's `srun`), one device each. The training loop splits every
//! global batch across ranks and sums gradients and metrics with these collectives; without the
//! `mpi` cargo feature, or outside an MPI launcher, there is one rank and they do nothing.
//!
//! MPI's world is one per process, so this module is too: [`init`] once, at the start of
//! `main`, and keep its guard until the end (dropping it finalises MPI).

use anyhow::Result;

use crate::bail_input;

/// This process's place in the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// 0..size; rank 0 alone writes files and prints.
    pub rank: usize,
    pub size: usize,
    /// Rank among the processes on this machine (which GPU to take).
    pub local_rank: usize,
}

const SINGLE: Place = Place {
    rank: 0,
    size: 1,
    local_rank: 0,
};

static PLACE: std::sync::OnceLock<Place> = std::sync::OnceLock::new();

/// This process's place (rank 0 of 1 before or without [`init`]).
pub fn place() -> Place {
    PLACE.get().copied().unwrap_or(SINGLE)
}

/// Whether this process is the one that writes and prints.
pub fn is_root() -> bool {
    place().rank == 0
}

/// How many processes the launcher says the job has, if this process was started by one:
/// Open MPI's `mpirun`, MPICH/Hydra, PMIx, or Slurm's `srun` with more than one task.
fn launched_size() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_SIZE",
        "SLURM_NTASKS",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
    .filter(|&n| n > 1)
}

/// Keeps MPI initialised; finalises it when dropped.
pub struct Guard {
    #[cfg(feature = "mpi")]
    _universe: Option<()>,
}

#[cfg(feature = "mpi")]
mod mpi_world {
    //! The MPI side: the universe lives in a static so the collectives below can reach the
    //! world communicator from anywhere in the loop; `finalize` drops it.

    use std::sync::Mutex;

    use mpi::collective::SystemOperation;
    use mpi::environment::Universe;
    use mpi::traits::*;

    pub static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);

    pub fn init() -> Option<super::Place> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)?;
        let world = universe.world();
        let local = world.split_shared(world.rank());
        let place = super::Place {
            rank: world.rank() as usize,
            size: world.size() as usize,
            local_rank: local.rank() as usize,
        };
        *UNIVERSE.lock().unwrap_or_else(|e| e.into_inner()) = Some(universe);
        Some(place)
    }

    pub fn finalize() {
        UNIVERSE.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn with_world<T>(f: impl FnOnce(&mpi::topology::SimpleCommunicator) -> T) -> Option<T> {
        let guard = UNIVERSE.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(|u| f(&u.world()))
    }

    pub fn sum_f32(values: &mut [f32]) {
        with_world(|w| {
            let send = values.to_vec();
            w.all_reduce_into(&send[..], values, SystemOperation::sum());
        });
    }

    pub fn sum_f64(values: &mut [f64]) {
        with_world(|w| {
            let send = values.to_vec();
            w.all_reduce_into(&send[..], values, SystemOperation::sum());
        });
    }

    pub fn min_max(value: u64) -> (u64, u64) {
        with_world(|w| {
            let (mut min, mut max) = (0u64, 0u64);
            w.all_reduce_into(&value, &mut min, SystemOperation::min());
            w.all_reduce_into(&value, &mut max, SystemOperation::max());
            (min, max)
        })
        .unwrap_or((value, value))
    }

    pub fn broadcast(bytes: &mut Vec<u8>) {
        with_world(|w| {
            let root = w.process_at_rank(0);
            let mut len = bytes.len() as u64;
            root.broadcast_into(&mut len);
            bytes.resize(len as usize, 0);
            root.broadcast_into(&mut bytes[..]);
        });
    }
}

/// Join the MPI job this process was launched in, if any. Exit 2 when launched with several
/// ranks by a binary built without the `mpi` feature (each would train alone, into the same
/// directory).
pub fn init() -> Result<Guard> {
    let Some(n) = launched_size() else {
        return Ok(Guard {
            #[cfg(feature = "mpi")]
            _universe: None,
        });
    };
    #[cfg(feature = "mpi")]
    {
        let Some(place) = mpi_world::init() else {
            bail_input!("launched as one of {n} MPI ranks, but MPI could not be initialised");
        };
        PLACE.set(place).ok();
        Ok(Guard {
            _universe: Some(()),
        })
    }
    #[cfg(not(feature = "mpi"))]
    bail_input!(
        "launched as one of {n} MPI ranks, but this pretune was built without the `mpi` feature: \
         cargo build --release --features mpi"
    )
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "mpi")]
        if self._universe.is_some() {
            mpi_world::finalize();
        }
    }
}

/// Sum `values` over all ranks, in place (every rank gets the sums).
pub fn sum_f32(values: &mut [f32]) {
    #[cfg(feature = "mpi")]
    if place().size > 1 {
        mpi_world::sum_f32(values);
    }
    let _ = values;
}

/// Sum `values` over all ranks, in place.
pub fn sum_f64(values: &mut [f64]) {
    #[cfg(feature = "mpi")]
    if place().size > 1 {
        mpi_world::sum_f64(values);
    }
    let _ = values;
}

/// Whether every rank holds the same `value`.
pub fn all_agree(value: u64) -> bool {
    #[cfg(feature = "mpi")]
    if place().size > 1 {
        let (min, max) = mpi_world::min_max(value);
        return min == max;
    }
    let _ = value;
    true
}

/// Rank 0's `bytes`, on every rank (what other ranks pass is replaced).
pub fn broadcast(bytes: Vec<u8>) -> Vec<u8> {
    #[cfg(feature = "mpi")]
    if place().size > 1 {
        let mut bytes = bytes;
        mpi_world::broadcast(&mut bytes);
        return bytes;
    }
    bytes
}

/// The rows of a global batch of `n` examples that this rank computes: an even share, the
/// first ranks taking one more when `n` does not divide.
pub fn share(n: usize) -> std::ops::Range<usize> {
    let Place { rank, size, .. } = place();
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_computes_the_whole_batch() {
        assert_eq!(place(), SINGLE);
        assert_eq!(share(7), 0..7);
        let mut v = [1.0f32, 2.0];
        sum_f32(&mut v);
        assert_eq!(v, [1.0, 2.0]);
        assert!(all_agree(42));
        assert_eq!(broadcast(vec![1, 2, 3]), vec![1, 2, 3]);
    }
}
