//! A latency histogram with log-spaced buckets (about 1% wide above 100 µs, exact below), cheap
//! to record, small to serialize, and mergeable across shards by adding counts.

use serde::{Deserialize, Serialize};

const EXACT: u64 = 100;
const BUCKETS: usize = 1800;
const GROWTH: f64 = 1.01;

/// Latencies in microseconds.
#[derive(Clone, Debug)]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < EXACT {
        v as usize
    } else {
        let b = EXACT as f64 + ((v as f64 / EXACT as f64).ln() / GROWTH.ln()).floor();
        (b as usize).min(BUCKETS - 1)
    }
}

fn upper(b: usize) -> u64 {
    if (b as u64) < EXACT {
        b as u64
    } else {
        (EXACT as f64 * GROWTH.powi(b as i32 - EXACT as i32 + 1)) as u64
    }
}

impl Hist {
    /// Records one value (µs).
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
    }

    /// The value at quantile `q` (0..=1), in µs (a bucket's upper bound; at most `max`).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(b).min(self.max);
            }
        }
        self.max
    }

    /// The value at quantile `q`, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.quantile(q) as f64 / 1000.0
    }

    /// Largest value, ms.
    pub fn max_ms(&self) -> f64 {
        self.max as f64 / 1000.0
    }
}

/// The serialized form: non-empty buckets only, plus summary percentiles for people.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistJson {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// [bucket, count] pairs.
    pub buckets: Vec<(usize, u64)>,
    pub max_us: u64,
}

impl From<&Hist> for HistJson {
    fn from(h: &Hist) -> Self {
        HistJson {
            count: h.total,
            p50_ms: h.ms(0.5),
            p99_ms: h.ms(0.99),
            p999_ms: h.ms(0.999),
            max_ms: h.max_ms(),
            buckets: h
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(b, c)| (b, *c))
                .collect(),
            max_us: h.max,
        }
    }
}

impl From<&HistJson> for Hist {
    fn from(j: &HistJson) -> Self {
        let mut h = Hist::default();
        for &(b, c) in &j.buckets {
            if b < BUCKETS {
                h.counts[b] += c;
                h.total += c;
            }
        }
        h.max = j.max_us;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut h = Hist::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.011, "{p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.011, "{p99}");
        assert_eq!(h.quantile(1.0), 100_000);
        let j = HistJson::from(&h);
        let back = Hist::from(&j);
        assert_eq!(back.quantile(0.5), h.quantile(0.5));
    }
}
