//! π to `MAX_DIGITS` decimal places, computed once and then sliced per request.
//!
//! Machin's formula, π = 16·arctan(1/5) − 4·arctan(1/239), summed in fixed point with
//! base-10⁹ limbs. Each series term costs one pass of small divisions over the limbs that
//! are not yet zero, about 10 million divisions in all: tens of milliseconds in a release
//! build, paid by the first request that asks for digits.

/// The most decimal places a request may ask for.
pub const MAX_DIGITS: usize = 10_000;

const BASE: u64 = 1_000_000_000;
const LIMB_DIGITS: usize = 9;
/// Extra limbs absorb the truncation error of every term (one unit each, ~10⁴ terms).
const GUARD_LIMBS: usize = 3;

/// Returns "3." followed by exactly `MAX_DIGITS` decimal places.
pub fn digits() -> String {
    // Limb 0 is the integer part; the rest are fractional, most significant first.
    let limbs = 1 + MAX_DIGITS.div_ceil(LIMB_DIGITS) + GUARD_LIMBS;
    // Unnormalised: limbs may exceed BASE or go negative until the final carry pass.
    let mut acc = vec![0i64; limbs];
    add_arctan_inv::<5>(&mut acc, 16);
    add_arctan_inv::<239>(&mut acc, -4);

    let base = BASE as i64;
    let mut carry = 0;
    for limb in acc.iter_mut().rev() {
        let v = *limb + carry;
        carry = v.div_euclid(base);
        *limb = v.rem_euclid(base);
    }

    let mut out = String::with_capacity(2 + (limbs - 1) * LIMB_DIGITS);
    out.push_str(&acc[0].to_string());
    out.push('.');
    for limb in &acc[1..] {
        out.push_str(&format!("{limb:09}"));
    }
    out.truncate(2 + MAX_DIGITS);
    out
}

/// Adds `factor · arctan(1/X)` to `acc`, using arctan(1/x) = Σ (−1)ᵏ / ((2k+1)·x^(2k+1)).
/// `X` is a const so that the division by X² compiles to a multiplication.
fn add_arctan_inv<const X: u64>(acc: &mut [i64], factor: i64) {
    // power = |factor| / X^(2k+1), starting at k = 0.
    let mut power = vec![0u64; acc.len()];
    power[0] = factor.unsigned_abs();
    divide(&mut power, X);
    let mut first = 0;
    let mut k = 0u64;
    loop {
        while first < power.len() && power[first] == 0 {
            first += 1;
        }
        if first == power.len() {
            return;
        }
        let sign = if k.is_multiple_of(2) == (factor > 0) {
            1
        } else {
            -1
        };
        let d = 2 * k + 1;
        let (mut rem_term, mut rem_power) = (0u64, 0u64);
        for i in first..power.len() {
            let cur = rem_term * BASE + power[i];
            acc[i] += sign * (cur / d) as i64;
            rem_term = cur % d;
            let cur = rem_power * BASE + power[i];
            power[i] = cur / (X * X);
            rem_power = cur % (X * X);
        }
        k += 1;
    }
}

fn divide(limbs: &mut [u64], d: u64) {
    let mut rem = 0;
    for limb in limbs.iter_mut() {
        let cur = rem * BASE + *limb;
        *limb = cur / d;
        rem = cur % d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digits() {
        let pi = digits();
        assert_eq!(pi.len(), 2 + MAX_DIGITS);
        assert!(pi.starts_with("3.14159265358979323846264338327950288419716939937510"));
        // The Feynman point: six nines starting at decimal place 762.
        assert_eq!(&pi[2 + 761..2 + 767], "999999");
        assert!(pi.ends_with("5256375678"));
    }
}
