//! Any byte string given to the loader yields `Ok` or an `Error`, never a panic; and a
//! model it accepts generates a digit without panicking.
//!
//! Each input is tried twice: as given (header, length and CRC checks) and with its CRC
//! fixed up, so that mutations of the payload reach the decoder, the validator and
//! `generate` instead of stopping at the checksum.
#![no_main]

use generator_core::{Generator, Image, MAX_ARENA_BYTES, Model};
use libfuzzer_sys::fuzz_target;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

fn exercise(bytes: &[u8]) {
    if let Ok(model) = Model::from_bytes(bytes) {
        let mut arena = [0xA5u8; MAX_ARENA_BYTES];
        let mut generator =
            Generator::new(&model, &mut arena).expect("accepted models fit MAX_ARENA_BYTES");
        let mut image: Image = [0; 784];
        let digit = bytes.len() as u8 % 10;
        generator
            .generate(digit, 7, &mut image)
            .expect("accepted models generate");
    }
}

/// `data` with the four bytes after its payload replaced by the payload's CRC, when the
/// header and the length varint (read leniently: up to 10 groups) leave room for them.
fn with_fixed_crc(data: &[u8]) -> Option<Vec<u8>> {
    let rest = data.get(6..)?;
    let (mut len, mut used) = (0u64, 0);
    for (i, &b) in rest.iter().enumerate().take(10) {
        len |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            used = i + 1;
            break;
        }
    }
    if used == 0 {
        return None;
    }
    let start = 6 + used;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    let crc_at = data.get(end..end.checked_add(4)?)?;
    let crc = CRC.checksum(&data[start..end]).to_le_bytes();
    if crc_at == crc {
        return None;
    }
    let mut fixed = data.to_vec();
    fixed[end..end + 4].copy_from_slice(&crc);
    Some(fixed)
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if let Some(fixed) = with_fixed_crc(data) {
        exercise(&fixed);
    }
});
