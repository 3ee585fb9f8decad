//! Any byte string given to the loader yields `Ok` or an `Error`, never a panic; and a
//! model it accepts generates a digit without panicking.
#![no_main]

use generator_core::{Generator, Image, MAX_ARENA_BYTES, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_bytes(data) {
        let mut arena = [0u8; MAX_ARENA_BYTES];
        let mut generator =
            Generator::new(&model, &mut arena).expect("accepted models fit MAX_ARENA_BYTES");
        let mut image: Image = [0; 784];
        generator.generate(3, 7, &mut image).expect("accepted models generate");
    }
});
