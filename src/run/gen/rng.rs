//! The per-key random source: ChaCha8 seeded through SplitMix64, and the samplers (uniform,
//! normal, Student-t, geometric) written on top of its raw `u64`s.

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Domain tags so market and sensor streams of the same seed are unrelated.
pub(super) const MARKET_DOMAIN: u64 = 0x6d61_726b_6574_0001;
pub(super) const SENSOR_DOMAIN: u64 = 0x7365_6e73_6f72_0002;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Per-key random source: ChaCha8 with a seed expanded by SplitMix64 and the key as stream.
pub(super) struct KeyRng {
    rng: ChaCha8Rng,
    spare_normal: Option<f64>,
}

impl KeyRng {
    pub(super) fn new(seed: u64, domain: u64, key: usize) -> Self {
        let mut state = seed ^ domain;
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        let mut rng = ChaCha8Rng::from_seed(bytes);
        rng.set_stream(key as u64);
        KeyRng {
            rng,
            spare_normal: None,
        }
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe for `ln`.
    pub(super) fn uniform_pos(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    pub(super) fn between(&mut self, (lo, hi): (f64, f64)) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    pub(super) fn log_between(&mut self, (lo, hi): (f64, f64)) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.uniform()).exp()
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    pub(super) fn sign(&mut self) -> f64 {
        if self.rng.next_u64() >> 63 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// Uniform integer in lo..=hi.
    pub(super) fn int_between(&mut self, lo: u32, hi: u32) -> u32 {
        let span = u64::from(hi - lo) + 1;
        lo + ((u128::from(self.rng.next_u64()) * u128::from(span)) >> 64) as u32
    }

    /// Standard normal by Box–Muller, using both outputs of each pair.
    pub(super) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let r = (-2.0 * self.uniform_pos().ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * self.uniform()).sin_cos();
        self.spare_normal = Some(r * s);
        r * c
    }

    /// Student-t with integer `dof` >= 3, scaled to unit variance: Z / sqrt(chi2_dof / dof)
    /// with chi2 as a sum of squared normals, times sqrt((dof - 2) / dof).
    pub(super) fn student_t_unit(&mut self, dof: u32) -> f64 {
        let z = self.normal();
        let mut chi2 = 0.0;
        for _ in 0..dof {
            let g = self.normal();
            chi2 += g * g;
        }
        let nu = f64::from(dof);
        z / (chi2 / nu).sqrt() * ((nu - 2.0) / nu).sqrt()
    }

    /// Geometric number of bars >= 1 with the given mean.
    pub(super) fn duration(&mut self, mean: f64) -> u64 {
        if mean <= 1.0 {
            return 1;
        }
        let p = 1.0 / mean;
        // Inverse CDF of the geometric distribution on 1, 2, ...
        let n = (self.uniform_pos().ln() / (1.0 - p).ln()).ceil();
        n.clamp(1.0, u64::MAX as f64) as u64
    }
}
