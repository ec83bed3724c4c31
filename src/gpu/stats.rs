//! One-pass tensor statistics on the CPU: NaN and Inf counts, sum of squares and max-abs of the finite values,
//! computed straight from the (mapped) little-endian bytes of a bf16, f16 or f32 tensor in a single read.
//!
//! This is the CPU half of the scan in [`super::scan`]: libtorch needs several passes per chunk for the same numbers
//! (min/max, then a norm, plus NaN/Inf passes when something is not finite), which made the scan memory bound at
//! well under the rate of a plain `read` of the files. Here every element is read once: its absolute-value bits
//! give finiteness and the max (for finite IEEE values the order of the bits is the order of the values), its f32
//! value the square. Squares are summed in f32 lanes over blocks of [`BLOCK`] elements and the blocks in f64, so
//! the relative error of the sum of squares stays around 1e-6 (a lane adds at most `BLOCK / LANES` squares).
//!
//! The loops are written over fixed-size lane arrays so the compiler vectorises them; on x86-64 an AVX2 copy is
//! chosen at run time when the CPU has it.

#![allow(
    unsafe_code,
    reason = "the AVX2 statistics kernel is called after a runtime CPU feature check"
)]

use safetensors::Dtype;

/// Statistics of a tensor (or a part of one); [`Acc::merge`] combines parts.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Acc {
    /// Sum of squares of the finite values.
    pub sumsq: f64,
    /// Largest absolute finite value (0 when there is none).
    pub max_abs: f64,
    pub nan: u64,
    pub inf: u64,
}

impl Acc {
    pub fn merge(&mut self, other: Acc) {
        self.sumsq += other.sumsq;
        self.max_abs = self.max_abs.max(other.max_abs);
        self.nan += other.nan;
        self.inf += other.inf;
    }
}

/// Independent accumulators per block: enough for the compiler to fill a 256-bit vector of f32 twice.
const LANES: usize = 16;
/// Elements per block of f32 partial sums (and per-lane non-finite counters, which must not overflow `u16`).
const BLOCK: usize = 4096;
const _: () = assert!(BLOCK / LANES <= u16::MAX as usize && BLOCK.is_multiple_of(LANES));

/// Whether [`stats`] handles `dtype` (the others go through libtorch).
pub(super) fn supports(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::BF16 | Dtype::F16 | Dtype::F32)
}

/// Statistics of `data`, little-endian elements of `dtype`; `None` when [`supports`] is false. A trailing partial
/// element (not possible in a parsed safetensors view) is ignored.
pub(super) fn stats(data: &[u8], dtype: Dtype) -> Option<Acc> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above); that is the only requirement of the call.
        return unsafe { stats_avx2(data, dtype) };
    }
    stats_portable(data, dtype)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn stats_avx2(data: &[u8], dtype: Dtype) -> Option<Acc> {
    // The kernels are `inline(always)`, so this copy of them is compiled for AVX2.
    stats_portable(data, dtype)
}

#[inline(always)]
fn stats_portable(data: &[u8], dtype: Dtype) -> Option<Acc> {
    Some(match dtype {
        Dtype::BF16 => scan16::<Bf16>(data),
        Dtype::F16 => scan16::<F16>(data),
        Dtype::F32 => scan32(data),
        _ => return None,
    })
}

/// A 16-bit float format: where its non-finite values start, and the value of finite absolute-value bits.
trait Half {
    /// Absolute-value bits from which a value is Inf (equal) or NaN (greater).
    const INF: u16;
    fn to_f32(abs_bits: u16) -> f32;
}

struct Bf16;
impl Half for Bf16 {
    const INF: u16 = 0x7f80;
    #[inline(always)]
    fn to_f32(abs_bits: u16) -> f32 {
        f32::from_bits(u32::from(abs_bits) << 16)
    }
}

struct F16;
impl Half for F16 {
    const INF: u16 = 0x7c00;
    #[inline(always)]
    fn to_f32(abs_bits: u16) -> f32 {
        // Exponent and mantissa moved into f32 position, then scaled by 2^(127-15): exact for normal and subnormal
        // halves (the subnormals become f32 normals through the multiplication).
        f32::from_bits(u32::from(abs_bits) << 13) * f32::from_bits((127 + 112) << 23)
    }
}

#[inline(always)]
fn scan16<H: Half>(data: &[u8]) -> Acc {
    let mut acc = Acc::default();
    let mut max_bits = 0u16;
    for block in data.chunks(BLOCK * 2) {
        let mut sq = [0f32; LANES];
        // Absolute-value bits are at most 0x7fff, so a signed max works (SSE2 has no unsigned 16-bit max).
        let mut mx = [0i16; LANES];
        let mut bad = [0u16; LANES];
        let mut it = block.chunks_exact(LANES * 2);
        for c in &mut it {
            for i in 0..LANES {
                let a = u16::from_le_bytes([c[2 * i], c[2 * i + 1]]) & 0x7fff;
                let finite = a < H::INF;
                let a = if finite { a } else { 0 };
                bad[i] += u16::from(!finite);
                mx[i] = mx[i].max(a as i16);
                let x = H::to_f32(a);
                sq[i] += x * x;
            }
        }
        let mut rest_sq = 0f32;
        for c in it.remainder().chunks_exact(2) {
            let a = u16::from_le_bytes([c[0], c[1]]) & 0x7fff;
            if a < H::INF {
                max_bits = max_bits.max(a);
                let x = H::to_f32(a);
                rest_sq += x * x;
            } else {
                bad[0] += 1;
            }
        }
        if bad.iter().any(|&n| n > 0) {
            // Rare: tell NaN from Inf in this block only.
            for c in block.chunks_exact(2) {
                let a = u16::from_le_bytes([c[0], c[1]]) & 0x7fff;
                acc.nan += u64::from(a > H::INF);
                acc.inf += u64::from(a == H::INF);
            }
        }
        max_bits = max_bits.max(mx.iter().copied().max().unwrap_or(0) as u16);
        acc.sumsq += sq.iter().map(|&s| f64::from(s)).sum::<f64>() + f64::from(rest_sq);
    }
    acc.max_abs = f64::from(H::to_f32(max_bits));
    acc
}

#[inline(always)]
fn scan32(data: &[u8]) -> Acc {
    const INF: u32 = 0x7f80_0000;
    let mut acc = Acc::default();
    let mut max_bits = 0u32;
    for block in data.chunks(BLOCK * 4) {
        let mut sq = [0f32; LANES];
        let mut mx = [0i32; LANES];
        let mut bad = [0u16; LANES];
        let mut it = block.chunks_exact(LANES * 4);
        for c in &mut it {
            for i in 0..LANES {
                let a = u32::from_le_bytes([c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]])
                    & 0x7fff_ffff;
                let finite = a < INF;
                let a = if finite { a } else { 0 };
                bad[i] += u16::from(!finite);
                mx[i] = mx[i].max(a as i32);
                let x = f32::from_bits(a);
                sq[i] += x * x;
            }
        }
        let mut rest_sq = 0f32;
        for c in it.remainder().chunks_exact(4) {
            let a = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff;
            if a < INF {
                max_bits = max_bits.max(a);
                let x = f32::from_bits(a);
                rest_sq += x * x;
            } else {
                bad[0] += 1;
            }
        }
        if bad.iter().any(|&n| n > 0) {
            for c in block.chunks_exact(4) {
                let a = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff;
                acc.nan += u64::from(a > INF);
                acc.inf += u64::from(a == INF);
            }
        }
        max_bits = max_bits.max(mx.iter().copied().max().unwrap_or(0) as u32);
        acc.sumsq += sq.iter().map(|&s| f64::from(s)).sum::<f64>() + f64::from(rest_sq);
    }
    acc.max_abs = f64::from(f32::from_bits(max_bits));
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward f64 reference over decoded values.
    fn reference(values: &[f32]) -> Acc {
        let mut acc = Acc::default();
        for &v in values {
            if v.is_nan() {
                acc.nan += 1;
            } else if v.is_infinite() {
                acc.inf += 1;
            } else {
                acc.sumsq += f64::from(v) * f64::from(v);
                acc.max_abs = acc.max_abs.max(f64::from(v.abs()));
            }
        }
        acc
    }

    fn bf16_bits(v: f32) -> u16 {
        (v.to_bits() >> 16) as u16 // truncation: the decoded value below is what counts
    }

    fn decode_bf16(b: u16) -> f32 {
        f32::from_bits(u32::from(b) << 16)
    }

    /// IEEE half to f32 by the book (sign, exponent cases), independent of the kernel's trick.
    fn decode_f16(b: u16) -> f32 {
        let sign = if b & 0x8000 != 0 { -1.0 } else { 1.0 };
        let exp = i32::from((b >> 10) & 0x1f);
        let man = f32::from(b & 0x3ff);
        match exp {
            0 => sign * man * 2f32.powi(-24),
            31 if man == 0.0 => sign * f32::INFINITY,
            31 => f32::NAN,
            e => sign * (1.0 + man / 1024.0) * 2f32.powi(e - 15),
        }
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    fn close(a: Acc, b: Acc) {
        assert_eq!((a.nan, a.inf), (b.nan, b.inf), "{a:?} vs {b:?}");
        assert_eq!(a.max_abs, b.max_abs, "{a:?} vs {b:?}");
        assert!(
            (a.sumsq - b.sumsq).abs() <= 1e-5 * b.sumsq.max(1e-30),
            "{a:?} vs {b:?}"
        );
    }

    /// Odd length (block and lane remainders), specials placed in the vector part, the remainder and a later block.
    fn with_specials(mut v: Vec<f32>) -> Vec<f32> {
        let n = v.len();
        v[3] = f32::NAN;
        v[17] = f32::NEG_INFINITY;
        v[BLOCK + 5] = f32::INFINITY;
        v[n - 1] = f32::NAN;
        v[n - 2] = -0.0;
        v
    }

    #[test]
    fn bf16_matches_reference() {
        for (n, specials) in [(3 * BLOCK + 21, false), (3 * BLOCK + 21, true), (5, false)] {
            let mut v = values(n, 7);
            if specials {
                v = with_specials(v);
            }
            let bits: Vec<u16> = v.iter().map(|&x| bf16_bits(x)).collect();
            let decoded: Vec<f32> = bits.iter().map(|&b| decode_bf16(b)).collect();
            let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
            let got = stats(&bytes, Dtype::BF16).unwrap();
            close(got, reference(&decoded));
            assert_eq!(stats_portable(&bytes, Dtype::BF16), Some(got));
            if specials {
                assert_eq!((got.nan, got.inf), (2, 2));
            }
        }
    }

    #[test]
    fn f16_matches_reference_including_subnormals() {
        // Every 16-bit pattern once: all normals, subnormals, zeros, Infs and NaNs of both signs.
        let bits: Vec<u16> = (0..=u16::MAX).collect();
        let decoded: Vec<f32> = bits.iter().map(|&b| decode_f16(b)).collect();
        let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        let got = stats(&bytes, Dtype::F16).unwrap();
        close(got, reference(&decoded));
        assert_eq!(got.max_abs, 65504.0);
        assert_eq!(got.inf, 2);
        assert_eq!(got.nan, 2 * 1023);
    }

    #[test]
    fn f32_matches_reference() {
        let v = with_specials(values(2 * BLOCK + 13, 11));
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let got = stats(&bytes, Dtype::F32).unwrap();
        close(got, reference(&v));
        assert_eq!((got.nan, got.inf), (2, 2));
    }

    #[test]
    fn all_zero_and_empty_and_unsupported() {
        let zeros = [0u8, 0, 0, 0x80, 0, 0]; // 0.0, -0.0, 0.0 as bf16
        assert_eq!(stats(&zeros, Dtype::BF16), Some(Acc::default()));
        assert_eq!(stats(&[], Dtype::F32), Some(Acc::default()));
        assert_eq!(stats(&zeros, Dtype::I16), None);
        assert!(!supports(Dtype::F64) && supports(Dtype::F16));
    }

    #[test]
    fn parts_merge_to_the_whole() {
        let v = values(BLOCK * 2 + 100, 3);
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let whole = stats(&bytes, Dtype::F32).unwrap();
        let mut parts = Acc::default();
        for c in bytes.chunks(4 * 1000) {
            parts.merge(stats(c, Dtype::F32).unwrap());
        }
        close(parts, whole);
    }
}
