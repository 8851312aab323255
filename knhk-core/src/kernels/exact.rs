//! Exact integer arithmetic for the statistics kernels: 256-bit numbers and
//! the correctly rounded quotient of two of them.
//!
//! The variance of `u64` data is `(n·Σx² − (Σx)²) / n²`. With `Σx²` up to
//! 192 bits and the numerator up to 256, it cannot be computed in `u128`,
//! and computing it in `f64` loses everything when the values are large and
//! close together (`[2^60, 2^60 + 2]` has variance exactly 1, and a naive
//! `f64` computation gives 0). So the sums are exact integers, and the one
//! division is rounded once, to nearest-even, like an IEEE operation.

/// An unsigned 256-bit integer, four little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct U256(pub(crate) [u64; 4]);

impl U256 {
    pub(crate) const ZERO: U256 = U256([0; 4]);

    pub(crate) fn from_u128(x: u128) -> U256 {
        U256([x as u64, (x >> 64) as u64, 0, 0])
    }

    /// The low 128 bits.
    pub(crate) fn low_u128(self) -> u128 {
        u128::from(self.0[0]) | (u128::from(self.0[1]) << 64)
    }

    /// Whether the value fits in 128 bits.
    pub(crate) fn fits_u128(self) -> bool {
        self.0[2] == 0 && self.0[3] == 0
    }

    /// Number of significant bits (0 for zero).
    pub(crate) fn bits(self) -> u32 {
        for i in (0..4).rev() {
            if self.0[i] != 0 {
                return 64 * i as u32 + (64 - self.0[i].leading_zeros());
            }
        }
        0
    }

    pub(crate) fn bit(self, i: u32) -> bool {
        (self.0[(i / 64) as usize] >> (i % 64)) & 1 == 1
    }

    /// `self + other`, wrapping at 2^256 (callers size their sums below it).
    pub(crate) fn add(self, other: U256) -> U256 {
        let mut out = [0_u64; 4];
        let mut carry = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let (s, c1) = self.0[i].overflowing_add(other.0[i]);
            let (s, c2) = s.overflowing_add(u64::from(carry));
            *slot = s;
            carry = c1 | c2;
        }
        U256(out)
    }

    /// `self - other`; `other` must not exceed `self`.
    pub(crate) fn sub(self, other: U256) -> U256 {
        let mut out = [0_u64; 4];
        let mut borrow = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let (d, b1) = self.0[i].overflowing_sub(other.0[i]);
            let (d, b2) = d.overflowing_sub(u64::from(borrow));
            *slot = d;
            borrow = b1 | b2;
        }
        U256(out)
    }

    /// `self · m`, wrapping at 2^256.
    pub(crate) fn mul_u64(self, m: u64) -> U256 {
        let mut out = [0_u64; 4];
        let mut carry = 0_u128;
        for (i, slot) in out.iter_mut().enumerate() {
            let p = u128::from(self.0[i]) * u128::from(m) + carry;
            *slot = p as u64;
            carry = p >> 64;
        }
        U256(out)
    }

    /// The full product of two `u128`s.
    pub(crate) fn mul_u128(a: u128, b: u128) -> U256 {
        let (a0, a1) = (a as u64, (a >> 64) as u64);
        let (b0, b1) = (b as u64, (b >> 64) as u64);
        let low = U256::from_u128(u128::from(a0) * u128::from(b0));
        let mid1 = U256::from_u128(u128::from(a0) * u128::from(b1)).shl(64);
        let mid2 = U256::from_u128(u128::from(a1) * u128::from(b0)).shl(64);
        let high = U256::from_u128(u128::from(a1) * u128::from(b1)).shl(128);
        low.add(mid1).add(mid2).add(high)
    }

    /// `self << s`, for `s < 256`, dropping bits shifted out.
    pub(crate) fn shl(self, s: u32) -> U256 {
        let (limbs, bits) = ((s / 64) as usize, s % 64);
        let mut out = [0_u64; 4];
        for i in (limbs..4).rev() {
            let src = i - limbs;
            out[i] = self.0[src] << bits;
            if bits != 0 && src > 0 {
                out[i] |= self.0[src - 1] >> (64 - bits);
            }
        }
        U256(out)
    }

    /// `self >> s`, for `s < 256`.
    pub(crate) fn shr(self, s: u32) -> U256 {
        let (limbs, bits) = ((s / 64) as usize, s % 64);
        let mut out = [0_u64; 4];
        for (i, slot) in out.iter_mut().enumerate().take(4 - limbs) {
            let src = i + limbs;
            *slot = self.0[src] >> bits;
            if bits != 0 && src + 1 < 4 {
                *slot |= self.0[src + 1] << (64 - bits);
            }
        }
        U256(out)
    }

    /// Whether any of the low `s` bits is set.
    pub(crate) fn low_bits_set(self, s: u32) -> bool {
        self != self.shr(s).shl(s)
    }

    /// Quotient and remainder by a non-zero `d`; the quotient must fit in
    /// 128 bits.
    pub(crate) fn div_rem_u128(self, d: u128) -> (u128, u128) {
        debug_assert!(d != 0);
        let n_bits = self.bits();
        let d_bits = 128 - d.leading_zeros();
        if n_bits < d_bits {
            return (0, self.low_u128());
        }
        if self.fits_u128() {
            let n = self.low_u128();
            return (n / d, n % d);
        }
        // Long division, one quotient bit per step, starting where the
        // remainder first can reach `d`: the top `d_bits - 1` bits of `self`
        // are below `d` and go straight into the remainder.
        let start = n_bits - (d_bits - 1);
        let mut rem: u128 = 0;
        for i in (start..n_bits).rev() {
            rem = (rem << 1) | u128::from(self.bit(i));
        }
        let mut q: u128 = 0;
        for i in (0..start).rev() {
            let carry = rem >> 127;
            rem = (rem << 1) | u128::from(self.bit(i));
            q <<= 1;
            if carry == 1 || rem >= d {
                rem = rem.wrapping_sub(d);
                q |= 1;
            }
        }
        (q, rem)
    }
}

/// `n / d` rounded once to the nearest `f64` (ties to even), for `d > 0`
/// and `n / d < 2^127`.
pub(crate) fn ratio_to_f64(n: U256, d: u128) -> f64 {
    if n == U256::ZERO {
        return 0.0;
    }
    // Scale the numerator by 2^shift so that the quotient has 55 or 56
    // bits: 53 kept, a guard bit, and room. Bits shifted out to the right
    // only matter as "something non-zero was below", the sticky bit, as
    // does the remainder. For n < 2^36 values the scaled numerator fits in
    // 128 bits and one native division does it.
    let d_bits = 128 - d.leading_zeros();
    let shift = 55 + d_bits as i32 - n.bits() as i32;
    let (scaled, lost) = if shift >= 0 {
        (n.shl(shift as u32), false)
    } else {
        let k = (-shift) as u32;
        (n.shr(k), n.low_bits_set(k))
    };
    let (q, r) = if scaled.fits_u128() {
        let x = scaled.low_u128();
        (x / d, x % d)
    } else {
        scaled.div_rem_u128(d)
    };
    round_scaled(q, r != 0 || lost, -shift)
}

/// `q · 2^exp`, rounded to nearest-even, where `sticky` says whether
/// anything non-zero lies below `q`'s last bit.
fn round_scaled(q: u128, sticky: bool, exp: i32) -> f64 {
    let bits = 128 - q.leading_zeros();
    if bits <= 53 {
        // Exact in 53 bits (only possible when nothing was scaled in).
        return scale(q as u64 as f64, exp);
    }
    let drop = bits - 53;
    let mut mantissa = (q >> drop) as u64;
    let rest = q & ((1_u128 << drop) - 1);
    let half = 1_u128 << (drop - 1);
    // Above half: up. Exactly half: up if anything non-zero lies further
    // below (sticky), else to even. Below half: down.
    if rest > half || (rest == half && (sticky || mantissa & 1 == 1)) {
        mantissa += 1;
    }
    // `mantissa` has at most 54 bits: exact in f64.
    scale(mantissa as f64, drop as i32 + exp)
}

/// `x · 2^e`, exact for the exponents the kernels produce (|e| < 300).
fn scale(x: f64, e: i32) -> f64 {
    let mut x = x;
    let mut e = e;
    // Multiply by powers of two in steps that stay normal.
    while e > 0 {
        let step = e.min(1000);
        x *= f64::from_bits(((1023 + step) as u64) << 52);
        e -= step;
    }
    while e < 0 {
        let step = (-e).min(1000);
        x *= f64::from_bits(((1023 - step) as u64) << 52);
        e += step;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_round_trips() {
        let a = u128::MAX;
        let p = U256::mul_u128(a, a);
        // (2^128 - 1)^2 = 2^256 - 2^129 + 1
        assert_eq!(p.0, [1, 0, u64::MAX - 1, u64::MAX]);
        assert_eq!(p.bits(), 256);
        let (q, r) = U256::mul_u128(a, 12345)
            .add(U256::from_u128(77))
            .div_rem_u128(12345);
        assert_eq!((q, r), (a, 77));
        assert_eq!(
            U256::from_u128(5).sub(U256::from_u128(3)),
            U256::from_u128(2)
        );
        assert_eq!(U256::from_u128(1).shl(200).bits(), 201);
        assert_eq!(U256::from_u128(1).shl(200).shr(199), U256::from_u128(2));
        assert_eq!(
            U256::from_u128(u128::MAX).shr(64).low_u128(),
            u128::from(u64::MAX)
        );
        assert!(U256::from_u128(0b1011).low_bits_set(2));
        assert!(!U256::from_u128(0b1100).low_bits_set(2));
        assert_eq!(
            U256::from_u128(3).mul_u64(u64::MAX).low_u128(),
            3 * u128::from(u64::MAX)
        );
    }

    /// 2^e, built from its bits (`powi` may be imprecise, and Miri makes it so).
    fn pow2(e: i32) -> f64 {
        f64::from_bits(((1023 + e) as u64) << 52)
    }

    #[test]
    fn ratios_round_once_to_nearest_even() {
        assert_eq!(ratio_to_f64(U256::from_u128(1), 3), 1.0 / 3.0);
        assert_eq!(ratio_to_f64(U256::from_u128(2), 3), 2.0 / 3.0);
        assert_eq!(ratio_to_f64(U256::from_u128(10), 4), 2.5);
        assert_eq!(ratio_to_f64(U256::ZERO, 9), 0.0);
        // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: even wins.
        assert_eq!(
            ratio_to_f64(U256::from_u128((1 << 53) + 1), 1),
            9007199254740992.0
        );
        assert_eq!(
            ratio_to_f64(U256::from_u128((1 << 53) + 3), 1),
            9007199254740996.0
        );
        // A value just above a tie rounds up: (2^54 + 2 + 1/3).
        let n = U256::from_u128(((1 << 54) + 2) * 3 + 1);
        assert_eq!(ratio_to_f64(n, 3), 18014398509481988.0);
        // Large quotients.
        let big = U256::mul_u128(1 << 100, 3);
        assert_eq!(ratio_to_f64(big, 3), pow2(100));
        assert_eq!(ratio_to_f64(U256::from_u128(u128::MAX), 2), pow2(127));
        // A 256-bit numerator whose dropped low bits decide a tie: the
        // quotient is 2^200 + 2^147 (a tie at 53 bits) plus a tiny bit more.
        let tie = U256::from_u128(1).shl(200).add(U256::from_u128(1).shl(147));
        assert_eq!(ratio_to_f64(tie, 1), pow2(200));
        assert_eq!(
            ratio_to_f64(tie.add(U256::from_u128(1)), 1),
            pow2(200) + pow2(148)
        );
    }
}
