//! The `.npz` reader (`interop::npz::read_npz_bytes`, which `import --arch g2p-gru` uses) on
//! arbitrary bytes. Must return `Ok` or an error, never panic or allocate past its bound; what
//! it reads has as many values as its shape says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pretune::interop::npz::read_npz_bytes;

fuzz_target!(|data: &[u8]| {
    if let Ok(arrays) = read_npz_bytes(data, "fuzz.npz", 64 << 20) {
        for array in arrays.values() {
            assert_eq!(array.data.len(), array.shape.iter().product::<usize>());
        }
    }
});
