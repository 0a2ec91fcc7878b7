//! Gzip bodies put together from pieces compressed once (RFC 1951 and 1952): a piece is
//! raw deflate ended by a sync flush, so whatever follows it starts on a byte boundary;
//! text between pieces goes in stored blocks; the member's CRC-32 is combined from the
//! pieces' own. A piece compressed once then serves every answer that holds it, which is
//! how pigz compresses in parallel.

use std::io;

use actix_web::web::Bytes;
use crc32fast::Hasher;
use flate2::{Compress, Compression, FlushCompress};

/// A piece of a body, compressed on its own.
#[derive(Debug, Clone)]
pub struct Deflated {
    bytes: Bytes,
    /// The CRC-32 of the plain piece, and its length.
    crc: Hasher,
    length: usize,
}

impl Deflated {
    /// How many compressed bytes it holds.
    pub fn compressed_len(&self) -> usize {
        self.bytes.len()
    }
}

/// `plain` as raw deflate (the fast level, as whole answers were), ended by a sync flush.
pub fn deflate(plain: &[u8]) -> io::Result<Deflated> {
    thread_local! {
        // Each thread keeps one compressor and resets it, rather than allocating one,
        // with its tables of hundreds of kilobytes, for every part.
        static COMPRESS: std::cell::RefCell<Compress> =
            std::cell::RefCell::new(Compress::new(Compression::fast(), false));
    }
    COMPRESS.with_borrow_mut(|compress| {
        compress.reset();
        deflate_with(compress, plain)
    })
}

/// The bytes that end a sync flush: an empty stored block's length and its complement.
const SYNC_MARKER: [u8; 4] = [0, 0, 0xff, 0xff];

fn deflate_with(compress: &mut Compress, plain: &[u8]) -> io::Result<Deflated> {
    // Room for the worst case (incompressible bytes cost a little over a byte each at
    // this level, plus the flush), so one call does it all: a call that had to stop for
    // room may have read all the input and still owe a block and the flush.
    let mut out = Vec::with_capacity(plain.len() + plain.len() / 16 + 128);
    for _ in 0..64 {
        let read = usize::try_from(compress.total_in()).map_err(io::Error::other)?;
        compress
            .compress_vec(&plain[read..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        if compress.total_in() == plain.len() as u64
            && out.len() < out.capacity()
            && out.ends_with(&SYNC_MARKER)
        {
            let mut crc = Hasher::new();
            crc.update(plain);
            return Ok(Deflated {
                // Exactly its bytes: the room reserved above would otherwise stay
                // allocated, many times what the cache counts.
                bytes: out.into_boxed_slice().into(),
                crc,
                length: plain.len(),
            });
        }
        out.reserve(out.capacity().max(256));
    }
    Err(io::Error::other("the compressor did not finish its flush"))
}

/// One gzip member being written.
pub struct Member {
    out: Vec<u8>,
    crc: Hasher,
    length: usize,
}

impl Member {
    /// A member with room for about `capacity` compressed bytes.
    pub fn new(capacity: usize) -> Member {
        let mut out = Vec::with_capacity(capacity + 32);
        // Deflate, no name or time, unknown system: what flate2's encoder writes.
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        Member {
            out,
            crc: Hasher::new(),
            length: 0,
        }
    }

    /// `text` as it is, in stored blocks.
    pub fn text(&mut self, text: &[u8]) {
        for chunk in text.chunks(usize::from(u16::MAX)) {
            let length = chunk.len() as u16;
            // Not the last block, stored; the rest of the byte is padding.
            self.out.push(0);
            self.out.extend_from_slice(&length.to_le_bytes());
            self.out.extend_from_slice(&(!length).to_le_bytes());
            self.out.extend_from_slice(chunk);
        }
        self.crc.update(text);
        self.length += text.len();
    }

    pub fn deflated(&mut self, piece: &Deflated) {
        self.out.extend_from_slice(&piece.bytes);
        self.crc.combine(&piece.crc);
        self.length += piece.length;
    }

    pub fn finish(self) -> Vec<u8> {
        let Member {
            mut out,
            crc,
            length,
        } = self;
        // The last block: stored and empty.
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        // The length modulo 2^32, as RFC 1952 has it.
        out.extend_from_slice(&(length as u32).to_le_bytes());
        out
    }
}

/// `body` decoded as its first gzip member: a client that stops at the first member must
/// still read the whole answer.
#[cfg(test)]
pub fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut plain).unwrap();
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_and_text_make_one_member_that_any_decoder_reads_whole() {
        let day = br#"{"starts_at":"2026-06-01T09:00:00+01:00"},"#.repeat(300);
        let pieces = [
            deflate(&day).unwrap(),
            deflate(b"").unwrap(),
            deflate(b"x").unwrap(),
        ];
        let long_text = vec![b'.'; 70_000];
        let mut member = Member::new(1024);
        let mut expected = Vec::new();
        for (piece, plain) in pieces.iter().zip([&day[..], b"", b"x"]) {
            member.text(b"[");
            member.deflated(piece);
            expected.extend_from_slice(b"[");
            expected.extend_from_slice(plain);
        }
        member.text(&long_text);
        expected.extend_from_slice(&long_text);
        let body = member.finish();
        assert_eq!(gunzip(&body), expected);
        assert!(
            pieces[0].compressed_len() < day.len() / 10,
            "the piece is compressed"
        );
    }

    #[test]
    fn incompressible_pieces_larger_than_the_compressors_buffers_read_back() {
        // Bytes that do not compress, past the compressor's block and window sizes.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for piece in [&noise[..60_000], &noise[..]] {
            let deflated = deflate(piece).unwrap();
            assert!(deflated.bytes.ends_with(&SYNC_MARKER));
            let mut member = Member::new(0);
            member.deflated(&deflated);
            member.text(b"]");
            member.deflated(&deflated);
            assert_eq!(gunzip(&member.finish()), [piece, b"]", piece].concat());
        }
    }

    #[test]
    fn an_empty_member_is_valid() {
        assert_eq!(gunzip(&Member::new(0).finish()), b"");
    }

    proptest::proptest! {
        #[test]
        fn any_pieces_in_any_order_read_back(
            pieces in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..3000), 0..6),
            text in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let mut member = Member::new(0);
            let mut expected = Vec::new();
            for piece in &pieces {
                member.deflated(&deflate(piece).unwrap());
                member.text(&text);
                expected.extend_from_slice(piece);
                expected.extend_from_slice(&text);
            }
            proptest::prop_assert_eq!(gunzip(&member.finish()), expected);
        }
    }
}
