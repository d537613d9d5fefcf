//! RSA's public operation and OAEP (RFC 8017, 7.1.1, with SHA-256), for
//! `TPM2_MakeCredential` to an RSA endorsement key: the seed encrypted to
//! the key. Public data only (a random seed and a public key): nothing
//! here needs to run in constant time.

use ring::rand::{self, SecureRandom};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;

/// A big unsigned integer: 32-bit limbs, least significant first.
type Big = Vec<u32>;

fn from_be(bytes: &[u8]) -> Big {
    let mut out: Big =
        bytes.rchunks(4).map(|c| c.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b))).collect();
    trim(&mut out);
    out
}

/// `a` as `len` big-endian bytes (`a` fits).
fn to_be(a: &[u32], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, limb) in a.iter().enumerate() {
        for (j, byte) in limb.to_le_bytes().iter().enumerate() {
            let at = i * 4 + j;
            if at < len {
                out[len - 1 - at] = *byte;
            }
        }
    }
    out
}

fn trim(a: &mut Big) {
    while a.last() == Some(&0) {
        a.pop();
    }
}

fn cmp(a: &[u32], b: &[u32]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

fn mul(a: &[u32], b: &[u32]) -> Big {
    let mut out = vec![0u32; a.len() + b.len()];
    for (i, x) in a.iter().enumerate() {
        let mut carry = 0u64;
        for (j, y) in b.iter().enumerate() {
            let t = u64::from(*x) * u64::from(*y) + u64::from(out[i + j]) + carry;
            out[i + j] = t as u32;
            carry = t >> 32;
        }
        out[i + b.len()] = carry as u32;
    }
    trim(&mut out);
    out
}

/// `a - b` in place (`a >= b`).
fn sub(a: &mut Big, b: &[u32]) {
    let mut borrow = 0i64;
    for (i, limb) in a.iter_mut().enumerate() {
        let t = i64::from(*limb) - i64::from(*b.get(i).unwrap_or(&0)) - borrow;
        *limb = t as u32;
        borrow = i64::from(t < 0);
    }
    trim(a);
}

/// `a mod n`, a bit at a time.
fn rem(a: &[u32], n: &[u32]) -> Big {
    let mut r: Big = Vec::new();
    for i in (0..a.len() * 32).rev() {
        // r = 2r + bit i of a.
        let mut carry = (a[i / 32] >> (i % 32)) & 1;
        for limb in r.iter_mut() {
            let next = *limb >> 31;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry != 0 {
            r.push(carry);
        }
        if cmp(&r, n) != Ordering::Less {
            sub(&mut r, n);
        }
    }
    r
}

/// `m^65537 mod n`.
fn public_op(m: &[u32], n: &[u32]) -> Big {
    let mut r = rem(m, n);
    for _ in 0..16 {
        r = rem(&mul(&r, &r), n);
    }
    rem(&mul(&r, m), n)
}

/// MGF1 with SHA-256.
fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend(h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// RSAES-OAEP with SHA-256 and `label` of `message` to the key whose
/// modulus is `modulus` (big-endian) and exponent 65537.
pub fn encrypt(modulus: &[u8], label: &[u8], message: &[u8]) -> Result<Vec<u8>, &'static str> {
    let modulus = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return Err("its modulus is zero"),
    };
    let k = modulus.len();
    if k < 128 || modulus[k - 1] & 1 == 0 {
        return Err("its modulus is not an RSA modulus of 1024 bits or more");
    }
    if message.len() + 2 * 32 + 2 > k {
        return Err("the message is too long for its modulus");
    }
    // DB = lHash ‖ PS ‖ 01 ‖ M.
    let mut db = Sha256::digest(label).to_vec();
    db.resize(k - message.len() - 32 - 2, 0);
    db.push(1);
    db.extend(message);
    let mut seed = [0u8; 32];
    rand::SystemRandom::new().fill(&mut seed).map_err(|_| "no randomness for the OAEP seed")?;
    let masked_db: Vec<u8> = db.iter().zip(mgf1(&seed, db.len())).map(|(a, b)| a ^ b).collect();
    let masked_seed: Vec<u8> = seed.iter().zip(mgf1(&masked_db, 32)).map(|(a, b)| a ^ b).collect();
    let mut em = vec![0u8];
    em.extend(masked_seed);
    em.extend(masked_db);
    Ok(to_be(&public_op(&from_be(&em), &from_be(modulus)), k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arithmetic_is_right_on_numbers_one_can_check() {
        let n = from_be(&[0x01, 0x00, 0x00, 0x00, 0x0d]); // 2^32 + 13
        assert_eq!(to_be(&rem(&from_be(&[0x02, 0, 0, 0, 0x1b]), &n), 5), [0, 0, 0, 0, 1]);
        assert_eq!(mul(&[0xffff_ffff], &[0xffff_ffff]), vec![1, 0xffff_fffe]);
        let mut a = vec![0, 1];
        sub(&mut a, &[1]);
        assert_eq!(a, vec![0xffff_ffff]);
        // 3^65537 mod 1000003 (a prime): by Fermat, 3^(65537 mod 1000002).
        let m = from_be(&[3]);
        let p = from_be(&1_000_003u32.to_be_bytes());
        let mut want = 1u64;
        for _ in 0..65537 {
            want = want * 3 % 1_000_003;
        }
        assert_eq!(public_op(&m, &p), from_be(&(want as u32).to_be_bytes()));
    }

    #[test]
    fn oaep_refuses_what_cannot_be_a_key() {
        assert!(encrypt(&[0; 256], b"L\0", &[1; 32]).is_err());
        assert!(encrypt(&[0xff; 64], b"L\0", &[1; 32]).is_err(), "512 bits");
        let mut even = vec![0xff; 256];
        even[255] = 0xfe;
        assert!(encrypt(&even, b"L\0", &[1; 32]).is_err());
        assert_eq!(encrypt(&[0xff; 256], b"L\0", &[1; 32]).unwrap().len(), 256);
    }
}
